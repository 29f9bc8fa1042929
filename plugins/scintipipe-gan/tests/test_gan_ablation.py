"""``benchmarks/gan_ablation.py`` at its smallest: every arm trains, is scored, and is compared."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gan_ablation.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="benchmarks/ is not next to the plugin (an installed plugin without the repository)")
def test_the_ablation_runs_every_arm_with_its_statistics(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gan_ablation", SCRIPT)
    assert spec and spec.loader
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    args = ["--sizes", "5", "--seeds", "1", "--epochs", "1", "--gan-steps", "60", "--gan-image-size", "32", "--sr-steps", "2"]
    args += [
        "--n-external",
        "8",
        "--min-diversity",
        "0",
        "--check-per-class",
        "4",
        "--tiny",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "gan_ablation"),
    ]
    results = ablation.main(args)
    assert {row["arm"] for row in results["summary"].values()} == set(ablation.ARMS)
    table = (tmp_path / "gan_ablation.md").read_text()
    for arm in ablation.ARMS:
        assert f"| 5 | {arm} |" in table
    for comparison in results["comparisons"]:
        assert comparison["seeds"] == 1, comparison  # no arm refused or failed
        assert "p_value" in comparison["mcnemar_pooled"] and comparison["per_seed"][0]["delong"]
    assert "McNemar" in table and "DeLong" in table
    saved = json.loads((tmp_path / "gan_ablation.json").read_text())
    assert saved["fingerprint"] == results["fingerprint"]
    cached = sorted(p.name for p in (tmp_path / "work" / "cache").glob("*.json"))
    assert len(cached) == len(ablation.ARMS)
    again = ablation.main(args)  # a rerun reads the cache and trains nothing
    assert again["summary"] == results["summary"] and again["seconds"] < results["seconds"]
