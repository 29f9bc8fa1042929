"""benchmarks/training_run_spread.py: comparing training runs of one recipe scan by scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark_helpers import load_benchmark

spread_benchmark = load_benchmark("training_run_spread")


def _sets() -> dict:
    """Two sets, three models: the reference, a run that loses two scans of set A, one that gains one of set B."""
    truth_a = ["focal_increased"] * 4 + ["heterogeneous"] * 6
    truth_b = ["heterogeneous"] * 5
    reference_a = np.array([True] * 9 + [False])
    reference_b = np.array([True, True, True, False, False])
    return {
        "A": {
            "n": 10,
            "truth": truth_a,
            "correct": {
                "seed 0 (shipped)": reference_a,
                "seed 1": np.array([False, False] + [True] * 7 + [False]),
                "seed 2": reference_a.copy(),
            },
            "command": "scintipipe simulate A",
        },
        "B": {
            "n": 5,
            "truth": truth_b,
            "correct": {"seed 0 (shipped)": reference_b, "seed 1": reference_b.copy(), "seed 2": np.array([True, True, True, True, False])},
            "command": "scintipipe simulate B",
        },
    }


def test_differences_are_paired_against_the_reference_per_set_and_pooled() -> None:
    summary = spread_benchmark.summarise(_sets(), "seed 0 (shipped)")
    seed1, seed2 = summary["models"]["seed 1"], summary["models"]["seed 2"]
    assert seed1["sets"]["A"]["difference_points"] == pytest.approx(-20.0)
    assert seed1["sets"]["B"]["difference_points"] == pytest.approx(0.0)
    assert seed1["pooled"]["difference_points"] == pytest.approx(-200 / 15)
    assert seed1["pooled"]["mcnemar"]["only_first_correct"] == 2
    assert seed2["sets"]["B"]["difference_points"] == pytest.approx(20.0)
    assert seed2["pooled"]["mcnemar"]["only_second_correct"] == 1
    assert "pooled" not in summary["models"]["seed 0 (shipped)"]
    assert "difference_points" not in summary["models"]["seed 0 (shipped)"]["sets"]["A"]


def test_sensitivities_count_each_class_of_each_model() -> None:
    summary = spread_benchmark.summarise(_sets(), "seed 0 (shipped)")
    assert summary["models"]["seed 0 (shipped)"]["sets"]["A"]["per_class"] == {"focal_increased": [4, 4], "heterogeneous": [5, 6]}
    assert summary["models"]["seed 1"]["sets"]["A"]["per_class"] == {"focal_increased": [2, 4], "heterogeneous": [5, 6]}
    low, high = summary["models"]["seed 1"]["sets"]["A"]["ci95"]
    assert low < 0.7 < high


def test_spread_is_the_lowest_and_highest_over_the_runs_only() -> None:
    summary = spread_benchmark.summarise(_sets(), "seed 0 (shipped)")
    ranges = spread_benchmark.spread(summary, ["seed 0 (shipped)", "seed 1"])
    assert ranges["A"]["accuracy"] == pytest.approx([70.0, 90.0])
    assert ranges["A"]["focal_increased"] == pytest.approx([50.0, 100.0])
    assert ranges["B"]["accuracy"] == pytest.approx([60.0, 60.0])  # seed 2 is not one of the runs given


def test_report_lists_every_model_its_pooled_difference_and_the_data() -> None:
    summary = spread_benchmark.summarise(_sets(), "seed 0 (shipped)")
    runs = ["seed 0 (shipped)", "seed 1", "seed 2"]
    text = spread_benchmark.render(
        summary, spread_benchmark.spread(summary, runs), runs, "python benchmarks/training_run_spread.py", ["scintipipe simulate A"]
    )
    assert "| seed 1 | 70.0 % " in text and "-13.33 (" in text
    assert "| seed 0 (shipped) | 90.0 % " in text and "| reference |" in text
    assert "B: accuracy 60.0-80.0" in text
    assert "scintipipe simulate A" in text


def test_seeds_must_name_three_sets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        spread_benchmark.main(["--seeds", "1,2"])
    assert "--seeds needs 3 seeds" in capsys.readouterr().err


def test_groups_compare_the_mean_over_each_sides_runs() -> None:
    groups = spread_benchmark.compare_groups(_sets(), ["seed 0 (shipped)", "seed 1"], ["seed 2"])
    a = groups["sets"]["A"]
    assert a["baseline_mean_accuracy"] == pytest.approx(0.8) and a["candidate_mean_accuracy"] == pytest.approx(0.9)
    assert a["difference_points"] == pytest.approx(10.0)
    assert a["difference_ci95_points"][0] <= 10.0 <= a["difference_ci95_points"][1]
    assert a["per_class_mean_sensitivity"]["focal_increased"] == pytest.approx([0.75, 1.0])
    assert groups["pooled"]["n"] == 15
    assert groups["pooled"]["difference_points"] == pytest.approx(100 * (13 / 15 - 22 / 30))


def test_a_candidate_that_is_a_run_of_the_recipe_differs_from_itself_by_nothing() -> None:
    groups = spread_benchmark.compare_groups(_sets(), ["seed 2"], ["seed 2"])
    assert groups["pooled"]["difference_points"] == 0.0
    assert groups["pooled"]["difference_ci95_points"] == [0.0, 0.0]
    lines = spread_benchmark.render_groups(groups)
    assert any(line.startswith("| pooled | 15 |") and "+0.00 (+0.00 to +0.00)" in line for line in lines)


def test_a_run_counts_as_trained_only_when_the_sweep_recorded_its_current_weights(tmp_path: Path) -> None:
    from scintipipe.executors.sweeps import weights_digest

    for seed in (1, 2):
        (tmp_path / f"seed-{seed}/models").mkdir(parents=True)
        (tmp_path / f"seed-{seed}/models/model.pt").write_bytes(b"copied from the template before training")
    assert not spread_benchmark.trained(tmp_path, [1, 2])  # weights present, sweep not finished
    points = [{"values": {"seed": seed}, "bundle": f"seed-{seed}", "weights_sha256": weights_digest(tmp_path / f"seed-{seed}")} for seed in (1, 2)]
    (tmp_path / "sweep.json").write_text(json.dumps({"points": points}))
    assert spread_benchmark.trained(tmp_path, [1, 2])
    assert not spread_benchmark.trained(tmp_path, [1, 2, 3])
    (tmp_path / "seed-2/models/model.pt").write_bytes(b"other weights")
    assert not spread_benchmark.trained(tmp_path, [1, 2])


def test_a_missing_candidate_folder_stops_before_any_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        spread_benchmark.main(["--candidate", str(tmp_path / "seed-0"), "--data", str(tmp_path)])
    assert "no bundle folder there" in capsys.readouterr().err
    assert not (tmp_path / "uptake4-seed-runs").exists()
