"""Tables (Markdown, CSV) and figures (PNG) of evaluation reports."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from scintipipe.evaluation import (
    classification_report,
    format_table,
    plot_confusion_matrix,
    plot_roc_comparison,
    plot_roc_curves,
    write_metrics_csv,
)

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cases() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 120)
    logits = rng.normal(size=(120, 4))
    logits[np.arange(120), truth] += 2.0
    probs = np.exp(logits)
    return truth, probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def report(cases) -> dict:
    return classification_report(*cases, LABELS, n_bootstrap=100)


def test_table_follows_seed_002_layout(report):
    table = format_table({"Internal": report, "External": report})
    lines = table.splitlines()
    assert lines[0].startswith("| Metrics | Dataset | Diffusely increased (%) | Diffusely decreased (%)")
    assert lines[0].endswith("| Macro average (%) | Overall (%) |")
    sensitivity_rows = [line for line in lines if "Sensitivity (Recall)" in line]
    assert len(sensitivity_rows) == 1 and "| Internal |" in sensitivity_rows[0]
    entry = report["per_class"]["focal_increased"]["sensitivity"]
    expected = f"{100 * entry['value']:.2f} ({100 * entry['lower']:.2f}–{100 * entry['upper']:.2f})"
    assert expected in sensitivity_rows[0]
    overall = report["overall"]["accuracy"]
    assert f"{100 * overall['value']:.2f} (" in next(line for line in lines if line.startswith("| Accuracy |"))


def test_transposed_table_has_a_row_per_class_and_macro_and_overall_rows(report):
    table = format_table(report, classes_as_rows=True)
    lines = table.splitlines()
    assert lines[0].startswith("| Class | n | Accuracy (%) |") and lines[0].endswith("| ROC AUC |")
    assert [line.split(" | ")[0][2:] for line in lines[2:]] == [
        "Diffusely increased", "Diffusely decreased", "Focal increased", "Heterogeneous", "Macro average", "Overall",
    ]  # fmt: skip
    auc = report["per_class"]["heterogeneous"]["auc"]
    assert f"{auc['value']:.4f} ({auc['lower']:.4f}–{auc['upper']:.4f})" in lines[5]


def test_csv_has_every_metric_with_its_interval(report, tmp_path):
    path = write_metrics_csv(report, tmp_path / "eval" / "metrics.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 4 * 8 + 7 + 1
    auc = next(r for r in rows if r["class"] == "focal_increased" and r["metric"] == "auc")
    assert float(auc["value"]) == pytest.approx(report["per_class"]["focal_increased"]["auc"]["value"])
    assert float(auc["lower"]) <= float(auc["value"]) <= float(auc["upper"])


def _is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_SIGNATURE


def test_figures_are_non_empty_pngs(cases, report, tmp_path):
    truth, probs = cases
    assert _is_png(plot_confusion_matrix(report["confusion_matrix"]["counts"], LABELS, tmp_path / "cm.png"))
    assert _is_png(plot_roc_curves(truth, probs, LABELS, tmp_path / "roc.png"))
    noisy = probs + np.random.default_rng(1).uniform(0, 0.5, probs.shape)
    assert _is_png(plot_roc_comparison(truth, {"a": probs, "b": noisy}, LABELS, tmp_path / "compare.png"))
    binary_truth = (truth == 2).astype(int)
    assert _is_png(plot_roc_comparison(binary_truth, {"a": probs[:, 2], "b": noisy[:, 2]}, ["rest", "focal"], tmp_path / "binary.png"))
