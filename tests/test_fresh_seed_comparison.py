"""benchmarks/fresh_seed_comparison.py: the paired comparison assembled from per-scan correctness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark_helpers import load_benchmark

comparison = load_benchmark("fresh_seed_comparison")


def test_run_pairs_the_two_bundles_per_set_per_class_and_pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    sets = {
        "A": {
            "n": 4,
            "truth": ["focal_increased", "focal_increased", "heterogeneous", "heterogeneous"],
            "correct": {"baseline": np.array([True, False, True, True]), "candidate": np.array([True, True, True, False])},
            "command": "scintipipe simulate A",
        },
        "B": {
            "n": 2,
            "truth": ["heterogeneous", "heterogeneous"],
            "correct": {"baseline": np.array([False, False]), "candidate": np.array([True, True])},
            "command": "scintipipe simulate B",
        },
    }
    seen = {}

    def fake_evaluate(models, seeds, data, work, threads):
        seen.update(models)
        return sets

    monkeypatch.setattr(comparison, "evaluate_models", fake_evaluate)
    results = comparison.run("uptake4", "my-bundle/", [1, 2, 3], Path("data"), Path("work"), 1)
    assert seen == {"baseline": "uptake4", "candidate": "my-bundle/"}
    assert results["sets"]["A"]["difference_points"] == pytest.approx(0.0)
    assert results["sets"]["A"]["per_class"] == {
        "focal_increased": {"n": 2, "baseline": 1, "candidate": 2},
        "heterogeneous": {"n": 2, "baseline": 2, "candidate": 1},
    }
    assert results["sets"]["B"]["difference_points"] == pytest.approx(100.0)
    assert results["pooled"]["difference_points"] == pytest.approx(100 * 2 / 6)
    assert results["pooled"]["mcnemar"]["only_second_correct"] == 3 and results["pooled"]["mcnemar"]["only_first_correct"] == 1
    assert results["sets"]["B"]["command"] == "scintipipe simulate B"


def test_a_bundle_folder_that_is_not_there_is_named_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert comparison.missing_bundle_folder("uptake4") is None  # a registered name, resolved by scintipipe
    (tmp_path / "b/configs").mkdir(parents=True)
    assert comparison.missing_bundle_folder(str(tmp_path / "b")) is None
    missing = str(tmp_path / "nowhere")
    assert "no bundle folder there" in comparison.missing_bundle_folder(missing)
    with pytest.raises(SystemExit):
        comparison.main(["--candidate", missing])
    assert f"--candidate {missing}: no bundle folder there" in capsys.readouterr().err
