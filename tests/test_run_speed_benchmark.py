"""benchmarks/run_speed.py: the figures it derives from its runs (marginal rates, start-up against the bare import)."""

from __future__ import annotations

import pytest

from benchmark_helpers import load_benchmark


def size(n: int, seconds: float, process_seconds: float) -> dict:
    return {
        "n": n,
        "classified": n,
        "seconds": seconds,
        "process_seconds": process_seconds,
        "peak_rss_mb": 500.0 + n / 1000,
        "worker_peak_rss_mb": 390.0,
        "workers": 2,
        "worker_kind": "processes",
        "torch_threads": 1,
        "stage_share": {"load": 0.6, "gate": 0.4},
        "stage_seconds": {"load": 6.0, "gate": 4.0},
        "stage_calls": {"load": n, "gate": n},
    }


def test_the_steadier_marginal_rate_and_the_start_up_ratio() -> None:
    bench = load_benchmark("run_speed")
    report = {
        "command": "python benchmarks/run_speed.py",
        "cpu_count": 2,
        "load_average": (0.5, 0.5, 0.5),
        "ceilings": {
            "network_scans_per_s": 1500.0,
            "network_channels_last_scans_per_s": 2000.0,
            "decode_files_per_s": 1000.0,
            "ideal_scans_per_s": 600.0,
            "bare_import_seconds": 10.0,
        },
        "sizes": [size(200, 2.0, 14.0), size(2000, 11.0, 23.0), size(20000, 101.0, 113.0)],
    }
    report.update(bench.marginal_large(report))
    assert report["marginal_large_scans_per_s"] == pytest.approx(18000 / 90)
    assert report["marginal_large_over_ideal"] == pytest.approx(200 / 600)
    text = bench.markdown(report)
    assert "Between 2000 and 20000 scans: 200.0 scans/s, 33.3 % of the ideal" in text
    assert '- bare `python -c "import torch, monai"`: 10.0 s' in text
    assert "- 2000 scans: 12.0 s, 1.20 x the bare import" in text
