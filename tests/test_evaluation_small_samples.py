"""Intervals that stay intervals on small samples (issue 16: one focal case in 20 scans)."""

from __future__ import annotations

import numpy as np
import pytest

from scintipipe.evaluation import classification_report, format_table
from scintipipe.evaluation.intervals import MIN_CLASS_SIZE, auc_bound_interval, f1_interval

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


@pytest.fixture
def perfect_with_one_focal_case():
    """20 scans, every one predicted right with confidence, one of them focal increased."""
    truth = [0] * 7 + [1] * 6 + [2] + [3] * 6
    probs = np.full((20, 4), 0.02)
    probs[np.arange(20), truth] = 0.94
    return truth, probs


def _width(entry):
    return entry["upper"] - entry["lower"]


def test_no_interval_collapses_to_a_point_with_one_focal_case(perfect_with_one_focal_case):
    truth, probs = perfect_with_one_focal_case
    report = classification_report(truth, probs, LABELS, seed=0)
    focal = report["per_class"]["focal_increased"]
    assert focal["f1"]["value"] == 1.0 and _width(focal["f1"]) > 0.3
    assert focal["auc"]["value"] == 1.0 and _width(focal["auc"]) > 0.3
    assert focal["auc"]["method"] == "wilson_birnbaum_klose"
    for name in ("f1", "auc", "sensitivity", "accuracy"):
        macro = report["macro"][name]
        assert macro["lower"] < macro["value"] <= macro["upper"], name
    # a bootstrap within classes would have given 100.00-100.00 here
    assert "100.00 (100.00–100.00)" not in format_table(report)


def test_small_classes_are_warned_about_in_the_report_and_the_table(perfect_with_one_focal_case):
    truth, probs = perfect_with_one_focal_case
    report = classification_report(truth, probs, LABELS, seed=0)
    assert len(report["warnings"]) == 4  # 7, 6, 1 and 6 cases: all below 10
    assert any("'focal_increased' has 1 case " in w for w in report["warnings"])
    table = format_table({"External": report})
    assert table.count("> **Warning** (External)") == 4


def test_large_classes_keep_the_bootstrap_and_no_warning():
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1], 40)
    probs = np.column_stack([1 - rng.uniform(size=80) * 0.6 - 0.4 * (truth == 0), np.zeros(80)])
    probs[:, 1] = 1 - probs[:, 0]
    report = classification_report(truth, probs, ["absent", "present"], seed=0)
    assert report["warnings"] == []
    assert "method" not in report["per_class"]["present"]["f1"]
    assert report["per_class"]["present"]["auc"]["method"] == "delong"
    assert "Warning" not in format_table(report)


def test_f1_interval_is_the_wilson_jaccard_bound():
    lower, upper = f1_interval(1, 0, 0)
    assert upper == pytest.approx(1.0) and lower == pytest.approx(0.342, abs=0.002)
    lower, upper = f1_interval(30, 5, 5)  # F1 = 60/70
    assert lower < 60 / 70 < upper
    assert f1_interval(0, 0, 0) is None


def test_auc_bound_interval_narrows_with_the_smaller_group():
    one = auc_bound_interval(1.0, 1, 19)
    many = auc_bound_interval(1.0, MIN_CLASS_SIZE, 19)
    assert one[1] == pytest.approx(1.0) and many[1] == pytest.approx(1.0)
    assert one[0] < many[0] < 1.0
