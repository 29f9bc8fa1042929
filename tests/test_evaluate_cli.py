"""`scintipipe evaluate` held-out mode: files written, paired comparisons, reader comparison.

The bundle is the shape-only test bundle (random weights): model figures are only checked
for consistency; reader figures are checked against hand counts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli_helpers import evaluate_splits
from dicom_factory import write_labelled_set
from scintipipe.cli import cli
from scintipipe.testing import write_small_recipe

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_labelled_set(tmp_path_factory.mktemp("labelled"), LABELS)
    # two readers: 'a' right on every file but s00 and s01, 'b' always says heterogeneous
    with (folder / "readers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "reader", "label"])
        for i in range(12):
            truth = LABELS[i % 4]
            writer.writerow([f"s{i:02d}.dcm", "a", truth if i > 1 else LABELS[(i + 1) % 4]])
            writer.writerow([f"s{i:02d}.dcm", "b", "heterogeneous"])
    return folder


def test_evaluate_writes_table_figures_and_reader_comparison(tiny_bundle: Path, labelled: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--bundle",
            str(tiny_bundle),
            "--labels",
            str(labelled / "labels.csv"),
            "--readers",
            str(labelled / "readers.csv"),
            "--out",
            str(out),
            str(labelled),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("metrics.json", "table.md", "metrics.csv", "confusion.png", "roc.png", "predictions.csv", "readers.md", "readers.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 12 and sum(map(sum, metrics["confusion_matrix"]["counts"])) == 12
    assert "Sensitivity (Recall)" in (out / "table.md").read_text()
    readers = json.loads((out / "readers.json").read_text())
    assert readers["readers"]["a"]["accuracy"]["value"] == pytest.approx(10 / 12)
    assert readers["readers"]["b"]["accuracy"]["value"] == pytest.approx(3 / 12)
    assert readers["model"]["n"] == 12
    (kappa,) = readers["kappa"]
    assert kappa["reader_a"] == "a" and kappa["reader_b"] == "b"


def test_evaluate_compares_two_bundles_pairwise(tiny_bundle: Path, labelled: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli, ["evaluate", "-b", str(tiny_bundle), "-b", str(tiny_bundle), "--labels", str(labelled / "labels.csv"), "--out", str(out), str(labelled)]
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads((out / "evaluation.json").read_text())
    (comparison,) = evaluation["comparisons"]
    assert comparison["n"] == 12
    assert comparison["mcnemar"]["p_value"] == pytest.approx(1.0)  # the same model twice
    assert all(d["p_value"] == pytest.approx(1.0) for d in comparison["delong"].values())
    assert (out / "roc_comparison.png").stat().st_size > 0


def test_unknown_label_in_csv_is_a_usage_error(tiny_bundle: Path, labelled: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\ns00.dcm,graves\n")
    result = CliRunner().invoke(cli, ["evaluate", "-b", str(tiny_bundle), "--labels", str(bad), "--out", str(tmp_path / "e"), str(labelled)])
    assert result.exit_code == 2 and "unknown labels ['graves']" in result.output


def test_repeated_splits_compare_two_recipes_on_the_same_test_files(tiny_bundle: Path, labelled: Path, tmp_path: Path) -> None:
    a, b = write_small_recipe(tmp_path, "small", [4, 8]), write_small_recipe(tmp_path, "wider", [8, 16])
    out = tmp_path / "splits"
    evaluate_splits(tiny_bundle, [a, b], labelled, out)
    experiment = json.loads((out / "experiment.json").read_text())
    assert experiment["splits"] == 2 and set(experiment["summary"]) == {"small", "wider"}
    for k in range(2):
        files_a = sorted(experiment["split_predictions"]["small"][k]["sources"])
        files_b = sorted(experiment["split_predictions"]["wider"][k]["sources"])
        assert files_a == files_b and len(files_a) >= 4
        probs = np.asarray(experiment["split_predictions"]["small"][k]["probabilities"])
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
        (comparison,) = experiment["per_split_comparisons"][k]
        assert comparison["n"] == len(files_a) and "mcnemar" in comparison
    assert "small vs wider" in experiment["mann_whitney"]
    assert "±" in (out / "summary.md").read_text()


def test_threads_option_sets_pytorch_threads(tiny_bundle: Path, labelled: Path, tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "-b",
                str(tiny_bundle),
                "--labels",
                str(labelled / "labels.csv"),
                "--out",
                str(tmp_path / "e"),
                "--threads",
                "1",
                str(labelled),
            ],
        )
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
