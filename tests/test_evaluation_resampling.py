"""Stratified k-fold and repeated splits, and their mean ± SD summaries and comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from scintipipe.evaluation import (
    class_summary,
    classification_report,
    compare_split_metrics,
    repeated_stratified_splits,
    stratified_kfold_splits,
    summarize_splits,
)
from scintipipe.evaluation.tables import format_split_summary

# the remnant study's class mix: 346 with residual tissue, 100 without
LABELS = np.array([1] * 346 + [0] * 100)


def test_kfold_tests_every_case_once_and_keeps_the_class_mix():
    folds = list(stratified_kfold_splits(LABELS, n_splits=5, seed=0))
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(LABELS.size))
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert abs(LABELS[test].mean() - LABELS.mean()) < 0.02


def test_repeated_splits_are_three_to_one_stratified_distinct_and_seeded():
    splits = list(repeated_stratified_splits(LABELS, n_repeats=10, test_size=0.25, seed=7))
    assert len(splits) == 10
    for train, test in splits:
        assert test.size == pytest.approx(LABELS.size / 4, abs=1)
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == LABELS.size
        assert abs(LABELS[test].mean() - LABELS.mean()) < 0.02
    assert not np.array_equal(np.sort(splits[0][1]), np.sort(splits[1][1]))
    again = list(repeated_stratified_splits(LABELS, n_repeats=10, test_size=0.25, seed=7))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))


def test_summary_gives_mean_and_sample_sd():
    rows = [{"accuracy": 0.9, "auc": 0.95}, {"accuracy": 0.8, "auc": None}, {"accuracy": 0.85, "auc": 0.97}]
    summary = summarize_splits(rows)
    assert summary["accuracy"]["mean"] == pytest.approx(0.85)
    assert summary["accuracy"]["sd"] == pytest.approx(np.std([0.9, 0.8, 0.85], ddof=1))
    assert summary["auc"]["n"] == 2 and summary["auc"]["mean"] == pytest.approx(0.96)
    table = format_split_summary({"resnet18": summary})
    assert "85.00 ± 5.00" in table and "0.9600 ± 0.0141" in table


def test_split_experiment_end_to_end_separates_a_good_from_a_poor_model():
    rng = np.random.default_rng(0)
    signal = LABELS + rng.normal(0, 0.5, LABELS.size)
    good = 1 / (1 + np.exp(-4 * (signal - 0.5)))
    poor = 1 / (1 + np.exp(-(0.3 * signal + rng.normal(0, 1, LABELS.size))))
    rows = {"good": [], "poor": []}
    for _, test in repeated_stratified_splits(LABELS, n_repeats=10, seed=1):
        for name, probs in (("good", good), ("poor", poor)):
            report = classification_report(LABELS[test], probs[test], ["absent", "present"], n_bootstrap=0)
            rows[name].append(class_summary(report))
    comparison = compare_split_metrics(rows["good"], rows["poor"])
    assert set(comparison) >= {"overall_accuracy", "sensitivity", "specificity", "ppv", "f1", "auc"}
    assert comparison["auc"]["p_value"] < 0.001 and comparison["auc"]["mean_a"] > comparison["auc"]["mean_b"]
