"""benchmarks/full_run_speed.py: its timing plugin times every stage of a real full run, and its table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark_helpers import load_benchmark
from cli_helpers import simulate
from scintipipe.builtin.stage_timing import STAGE_OF_HOOK


@pytest.mark.slow
def test_a_full_run_times_every_stage(tmp_path: Path) -> None:
    bench = load_benchmark("full_run_speed")
    data = simulate(tmp_path / "scans", n=2, seed=3, center="a")
    threads = torch.get_num_threads()
    try:
        result = bench.child(data, "classical", "0", STAGE_OF_HOOK)
    finally:
        torch.set_num_threads(threads)  # the child sets one thread, as the benchmark's runs have
    assert result["classified"] == 2 and result["failed"] == 0
    assert set(result["stage_seconds"]) >= {"load", "gate", "preprocess", "segment", "explain", "report"}
    assert all(seconds > 0 for stage, seconds in result["stage_seconds"].items() if stage != "classify")
    assert sum(result["stage_seconds"].values()) <= result["seconds"] * 1.05


def test_the_table_gives_each_stage_per_scan_and_the_ratio() -> None:
    bench = load_benchmark("full_run_speed")

    def run(seconds: float, stages: dict[str, float]) -> dict:
        return {"classified": 10, "seconds": seconds, "stage_seconds": stages}

    report = {
        "command": "python benchmarks/full_run_speed.py",
        "n": 10,
        "rounds": 2,
        "baseline_rev": "0" * 40,
        "load_average": (0.5, 0.5, 0.5),
        "segmenters": {
            "learned": {
                "baseline": run(4.0, {"load": 0.02, "segment": 0.2, "report": 3.0}),
                "current": run(3.0, {"load": 0.01, "segment": 0.2, "explain": 0.03, "report": 2.5}),
                "current_default_workers": run(2.0, {}),
            }
        },
    }
    text = bench.markdown(report)
    assert "| load | 2.0 | 1.0 | 0.50 |" in text
    assert "| segment | 20.0 | 20.0 | 1.00 |" in text
    assert "| explain | - | 3.0 | - |" in text  # a stage the baseline did not time
    assert "| **whole run** | 400.0 | 300.0 | **0.75** |" in text
    assert "took 2.0 s (0.50 x the baseline" in text
