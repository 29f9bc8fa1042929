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


def test_recorded_commands_name_a_data_folder_outside_the_checkout_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--data`` may lie outside the repository (another disk, a worktree's shared data): no crash, full path."""
    common = load_benchmark("_common")
    inside = common.ROOT / "data" / "u4-rand-train3000"
    outside = tmp_path / "u4-rand-train3000"
    assert common.repo_relative(inside) == "data/u4-rand-train3000"
    assert common.repo_relative(outside) == str(outside.resolve())
    linked = tmp_path / "linked-data"
    linked.mkdir()
    (tmp_path / "checkout").mkdir()
    link = tmp_path / "checkout" / "data"
    link.symlink_to(linked)
    monkeypatch.setattr(common, "ROOT", tmp_path / "checkout")
    assert common.repo_relative(link / "fresh-3103") == "data/fresh-3103"  # a data symlink to another disk keeps its name
    monkeypatch.undo()
    command = common.simulate_command(outside, 10, 71, "randomised", ["--class-mix", "balanced"])
    assert command[command.index("--out") + 1] == str(outside.resolve())
    tests = {key: (f"{key}-set", 10, 303, "randomised", [], key) for key in (*common.GATE_HELD_OUT, *common.GATE_EXTERNAL)}
    gate = common.gate_fit_command("uptake4", tmp_path, [("train-set", 10, 71, "randomised", [])], tests, "mahalanobis_layers", "uptake4", 1)
    assert gate[gate.index("--train") + 1] == str(tmp_path.resolve() / "train-set")
