"""Classification report: hand-computed counts, Wilson intervals, binary case, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scintipipe.evaluation import CLASS_METRICS, class_summary, classification_report, wilson_interval

LABELS = ["a", "b", "c"]
# true a a a a b b b c c c
# pred a a a b b b c c a c  -> confusion rows (true) a:[3,1,0] b:[0,2,1] c:[1,0,2]
TRUTH = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c"]
PREDICTED = ["a", "a", "a", "b", "b", "b", "c", "c", "a", "c"]


def _probabilities(predicted: list[str], rng: np.random.Generator) -> np.ndarray:
    """Probabilities whose arg-max is ``predicted`` and that vary across cases (for the AUC)."""
    probs = rng.uniform(0.05, 0.3, size=(len(predicted), len(LABELS)))
    for row, label in enumerate(predicted):
        probs[row, LABELS.index(label)] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def hand_report() -> tuple[dict, np.ndarray]:
    probs = _probabilities(PREDICTED, np.random.default_rng(3))
    return classification_report(TRUTH, probs, LABELS, n_bootstrap=300, seed=1), probs


@pytest.mark.parametrize(
    "successes,total,lower,upper",
    [
        (8, 10, 0.4902, 0.9433),  # the usual textbook example
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998) Stat Med 17:857, Table I, method 3
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(successes, total, lower, upper):
    low, high = wilson_interval(successes, total)
    assert low == pytest.approx(lower, abs=6e-5)
    assert high == pytest.approx(upper, abs=6e-5)


def test_wilson_interval_of_nothing_is_undefined():
    assert wilson_interval(0, 0) is None


def test_confusion_matrix_and_counts_are_the_hand_computed_ones(hand_report):
    report, _ = hand_report
    assert report["confusion_matrix"]["counts"] == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    a = report["per_class"]["a"]
    assert (a["tp"], a["fp"], a["fn"], a["tn"], a["support"]) == (3, 1, 1, 5, 4)
    assert a["accuracy"]["value"] == pytest.approx(8 / 10)
    assert (a["accuracy"]["lower"], a["accuracy"]["upper"]) == pytest.approx((0.4902, 0.9433), abs=6e-5)
    assert a["sensitivity"]["value"] == pytest.approx(3 / 4)
    assert a["specificity"]["value"] == pytest.approx(5 / 6)
    assert a["ppv"]["value"] == pytest.approx(3 / 4)
    assert a["npv"]["value"] == pytest.approx(5 / 6)
    assert a["f1"]["value"] == pytest.approx(0.75)
    b = report["per_class"]["b"]
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (2, 1, 1, 6)
    assert b["specificity"]["value"] == pytest.approx(6 / 7)
    assert b["f1"]["value"] == pytest.approx(2 / 3)
    assert report["overall"]["accuracy"]["value"] == pytest.approx(0.7)
    assert report["macro"]["sensitivity"]["value"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)


def test_auc_equals_sklearn(hand_report):
    report, probs = hand_report
    truth = np.array([LABELS.index(t) for t in TRUTH])
    for c, label in enumerate(LABELS):
        assert report["per_class"][label]["auc"]["value"] == pytest.approx(roc_auc_score(truth == c, probs[:, c]), abs=1e-12)


def _entries(report: dict):
    for entry in report["per_class"].values():
        yield from (entry[m] for m in CLASS_METRICS)
    yield from report["macro"].values()
    yield report["overall"]["accuracy"]


def test_every_interval_contains_its_point_estimate():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), truth] += 1.5
    report = classification_report(truth, logits, ["w", "x", "y", "z"], n_bootstrap=200, seed=0)
    for entry in _entries(report):
        assert entry["lower"] <= entry["value"] <= entry["upper"]
        assert 0.0 <= entry["lower"] and entry["upper"] <= 1.0


def test_report_is_json_and_reproducible_with_a_seed(hand_report):
    report, probs = hand_report
    text = json.dumps(report, allow_nan=False)
    again = classification_report(TRUTH, probs, LABELS, n_bootstrap=300, seed=1)
    assert json.dumps(again, allow_nan=False) == text


def test_binary_case_scores_the_positive_class():
    truth = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    p_positive = np.array([0.1, 0.2, 0.3, 0.6, 0.2, 0.1, 0.9, 0.8, 0.4, 0.7])
    report = classification_report(truth, p_positive, ["absent", "present"], n_bootstrap=100)
    assert report["positive_label"] == "present"
    present = report["per_class"]["present"]
    # predicted present: cases 3, 6, 7, 9 -> TP 3, FP 1, FN 1, TN 5
    assert (present["tp"], present["fp"], present["fn"], present["tn"]) == (3, 1, 1, 5)
    assert present["sensitivity"]["value"] == pytest.approx(3 / 4)
    assert present["specificity"]["value"] == pytest.approx(5 / 6)
    assert present["auc"]["value"] == pytest.approx(roc_auc_score(truth, p_positive))
    two_columns = classification_report(truth, np.column_stack([1 - p_positive, p_positive]), ["absent", "present"], n_bootstrap=100)
    assert two_columns == report
    summary = class_summary(report)
    assert summary["sensitivity"] == pytest.approx(0.75) and summary["overall_accuracy"] == pytest.approx(0.8)


def test_a_class_never_seen_nor_predicted_is_undefined_not_nan():
    truth = ["a", "a", "b", "b"]
    probs = [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]]
    report = classification_report(truth, probs, LABELS, n_bootstrap=50)
    c = report["per_class"]["c"]
    assert c["support"] == 0 and c["sensitivity"]["value"] is None and c["ppv"]["value"] is None
    assert c["auc"]["value"] is None and c["specificity"]["value"] == 1.0
    json.dumps(report, allow_nan=False)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="labels not in"):
        classification_report(["a", "q"], [[0.5, 0.5, 0], [0.5, 0.5, 0]], LABELS)
    with pytest.raises(ValueError, match="shape"):
        classification_report(["a", "b"], [[0.5, 0.5], [0.5, 0.5]], LABELS)
