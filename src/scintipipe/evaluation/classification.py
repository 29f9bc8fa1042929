"""Per-class (one-vs-rest) and overall classification metrics with confidence intervals.

Proportions (accuracy, sensitivity, specificity, PPV, NPV) get Wilson score intervals,
each class's ROC AUC DeLong's interval, and F1 plus the macro averages a percentile
interval from a bootstrap that resamples within each true class (class sizes fixed).

Where a class has fewer than :data:`~scintipipe.evaluation.intervals.MIN_CLASS_SIZE`
cases that bootstrap degenerates (one focal case resampled a thousand times is still one
case), so that class's F1 and AUC get closed-form intervals instead
(:func:`~scintipipe.evaluation.intervals.f1_interval`,
:func:`~scintipipe.evaluation.intervals.auc_bound_interval`), the macro averages the mean
of the per-class bounds, and ``report["warnings"]`` says which classes are small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata
from sklearn.metrics import confusion_matrix

from scintipipe.evaluation.delong import delong_auc_ci
from scintipipe.evaluation.intervals import (
    MIN_CLASS_SIZE,
    auc_bound_interval,
    f1_interval,
    percentile_interval,
    proportion,
    stratified_bootstrap_indices,
)

#: Metrics of each class, in table order; all but ``f1`` and ``auc`` are proportions.
CLASS_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "auc")

#: Display names, as in Table 2 of the uptake4 study (Zhao et al. 2021).
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity (Recall)",
    "specificity": "Specificity",
    "ppv": "PPV (Precision)",
    "npv": "NPV",
    "f1": "F1 score",
    "auc": "ROC AUC",
}

# numerator and denominator of each proportion from the one-vs-rest counts
_PROPORTIONS = {
    "accuracy": lambda tp, fp, fn, tn: (tp + tn, tp + fp + fn + tn),
    "sensitivity": lambda tp, fp, fn, tn: (tp, tp + fn),
    "specificity": lambda tp, fp, fn, tn: (tn, tn + fp),
    "ppv": lambda tp, fp, fn, tn: (tp, tp + fp),
    "npv": lambda tp, fp, fn, tn: (tn, tn + fn),
}


def encode_labels(y: npt.ArrayLike, labels: Sequence[str]) -> np.ndarray:
    """Class indices for labels given as names (from ``labels``) or as integer indices."""
    values = np.asarray(y)
    if values.dtype.kind in "iub":
        codes = values.astype(int)
    else:
        index = {str(label): i for i, label in enumerate(labels)}
        unknown = sorted({str(v) for v in values} - set(index))
        if unknown:
            raise ValueError(f"labels not in {list(labels)}: {unknown}")
        codes = np.array([index[str(v)] for v in values], dtype=int)
    if codes.size and (codes.min() < 0 or codes.max() >= len(labels)):
        raise ValueError(f"class indices must lie in [0, {len(labels) - 1}]")
    return codes


def probability_matrix(y_prob: Any, n_classes: int) -> np.ndarray:
    """Probabilities as ``(n_cases, n_classes)``; a 1-D input for 2 classes is P(second class)."""
    probs = np.asarray(y_prob, dtype=float)
    if probs.ndim == 1 and n_classes == 2:
        probs = np.column_stack([1.0 - probs, probs])
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise ValueError(f"y_prob must have shape (n_cases, {n_classes}), got {probs.shape}")
    return probs


def one_vs_rest_counts(matrix: np.ndarray) -> np.ndarray:
    """``(n_classes, 4)`` counts TP, FP, FN, TN of each class from a confusion matrix.

    Works on a stack of matrices too (``(..., k, k)`` gives ``(..., k, 4)``).
    Rows of the matrix are true classes, columns predicted classes.
    """
    matrix = np.asarray(matrix)
    tp = np.diagonal(matrix, axis1=-2, axis2=-1)
    fp = matrix.sum(axis=-2) - tp
    fn = matrix.sum(axis=-1) - tp
    tn = matrix.sum(axis=(-2, -1))[..., None] - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=-1)


def _f1(counts: np.ndarray) -> np.ndarray:
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def _class_metric_values(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Point values of every count-based metric; NaN where a denominator is 0."""
    tp, fp, fn, tn = (counts[..., i] for i in range(4))
    values = {name: _ratio(*rule(tp, fp, fn, tn)) for name, rule in _PROPORTIONS.items()}
    values["f1"] = _f1(counts)
    return values


def _auc_of_ranks(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC along the last axis (``scores`` ``(..., n)``, ``positive`` bool ``(..., n)``)."""
    ranks = rankdata(scores, axis=-1)
    m = positive.sum(axis=-1)
    n = positive.shape[-1] - m
    return _ratio((ranks * positive).sum(axis=-1) - m * (m + 1) / 2.0, m * n)


def _mean_over_classes(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (finite) values; NaN where none is."""
    defined = np.isfinite(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))


def _metric(value: float | None, interval: tuple[float, float] | None) -> dict:
    if value is None or not np.isfinite(value):
        return {"value": None, "lower": None, "upper": None}
    return {
        "value": float(value),
        "lower": float(interval[0]) if interval else None,
        "upper": float(interval[1]) if interval else None,
    }


def _bootstrap_replicates(
    truth: np.ndarray, predicted: np.ndarray, probs: np.ndarray, n_classes: int, n_resamples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every class metric over bootstrap resamples stratified by true class.

    Returns:
        ``{metric: (n_resamples, n_classes) array}``, NaN where a metric is undefined.
    """
    indices = stratified_bootstrap_indices(truth, n_resamples, rng)
    cells = (truth[indices] * n_classes + predicted[indices]) + (np.arange(n_resamples)[:, None] * n_classes**2)
    matrices = np.bincount(cells.ravel(), minlength=n_resamples * n_classes**2).reshape(n_resamples, n_classes, n_classes)
    values = _class_metric_values(one_vs_rest_counts(matrices))
    resampled_truth = truth[indices]
    values["auc"] = np.stack([_auc_of_ranks(probs[indices, c], resampled_truth == c) for c in range(n_classes)], axis=-1)
    return values


def small_class_warning(label: str, support: int) -> str:
    """The warning a report carries for a class with fewer than :data:`MIN_CLASS_SIZE` cases."""
    cases = "case" if support == 1 else "cases"
    return f"class {label!r} has {support} {cases} (fewer than {MIN_CLASS_SIZE}): its metrics are unreliable and their intervals wide"


def _mean_of_class_bounds(entries: list[dict]) -> tuple[float, float] | None:
    """Macro interval from the per-class intervals: the mean of the lower bounds to the mean of the upper bounds.

    Conservative (it assumes the classes' errors move together); used when some class is
    too small for the bootstrap.
    """
    bounds = [(e["lower"], e["upper"]) for e in entries if e.get("value") is not None and e.get("lower") is not None]
    if not bounds:
        return None
    lowers, uppers = zip(*bounds, strict=True)
    return float(np.mean(lowers)), float(np.mean(uppers))


def classification_report(
    y_true: npt.ArrayLike,
    y_prob: Any,
    labels: Sequence[str],
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> dict:
    """Per-class and overall metrics with confidence intervals, ready for ``metrics.json``.

    Each class is scored one-vs-rest on the arg-max prediction. With two classes the
    second label is the positive class: ``report["positive_label"]`` names it and its row
    holds the usual binary sensitivity and specificity.

    Args:
        y_true: true class per case, as label names or integer indices into ``labels``.
        y_prob: ``(n_cases, n_classes)`` probabilities in ``labels`` order (for two classes
            also ``(n_cases,)``, the probability of ``labels[1]``).
        labels: class names in output order.
        confidence: two-sided confidence level of every interval.
        n_bootstrap: resamples of the stratified bootstrap (F1 and macro intervals);
            0 leaves those intervals out.
        seed: seed or generator of the bootstrap.

    Returns:
        A JSON-serialisable dict: ``labels``, ``n``, ``confidence``, ``methods``,
        ``overall`` (accuracy), ``per_class`` (label -> support, tp/fp/fn/tn and a
        ``{"value", "lower", "upper"}`` entry per metric of ``CLASS_METRICS``), ``macro``
        (the unweighted mean over classes of each metric) and ``confusion_matrix``
        (rows true, columns predicted), and ``warnings``, one line per class with fewer
        than :data:`MIN_CLASS_SIZE` cases. Undefined values (a zero denominator) are ``None``.
    """
    labels = [str(label) for label in labels]
    n_classes = len(labels)
    if n_classes < 2:
        raise ValueError("need at least two classes")
    truth = encode_labels(y_true, labels)
    probs = probability_matrix(y_prob, n_classes)
    if len(truth) != len(probs):
        raise ValueError(f"{len(truth)} true labels but {len(probs)} probability rows")
    if len(truth) == 0:
        raise ValueError("no cases to evaluate")
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(truth, predicted, labels=list(range(n_classes)))
    counts = one_vs_rest_counts(matrix)
    point = _class_metric_values(counts)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    replicates = _bootstrap_replicates(truth, predicted, probs, n_classes, n_bootstrap, rng) if n_bootstrap > 0 else None

    per_class: dict[str, dict] = {}
    aucs = np.full(n_classes, np.nan)
    small = [label for c, label in enumerate(labels) if int(counts[c][0] + counts[c][2]) < MIN_CLASS_SIZE]
    for c, label in enumerate(labels):
        tp, fp, fn, tn = (int(v) for v in counts[c])
        support = tp + fn
        entry: dict[str, Any] = {"support": support, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        for name, rule in _PROPORTIONS.items():
            entry[name] = proportion(*rule(tp, fp, fn, tn), confidence=confidence)
        if label in small:
            entry["f1"] = {**_metric(point["f1"][c], f1_interval(tp, fp, fn, confidence)), "method": "wilson_jaccard"}
        else:
            entry["f1"] = _metric(point["f1"][c], percentile_interval(replicates["f1"][:, c], confidence) if replicates else None)
        if 0 < support < len(truth):
            entry["auc"] = delong_auc_ci(truth == c, probs[:, c], confidence)
            if min(support, len(truth) - support) < MIN_CLASS_SIZE:
                lower, upper = auc_bound_interval(entry["auc"]["value"], support, len(truth) - support, confidence)
                entry["auc"].update(lower=lower, upper=upper, method="wilson_birnbaum_klose")
            aucs[c] = entry["auc"]["value"]
        else:
            entry["auc"] = _metric(None, None)
        per_class[label] = entry

    macro: dict[str, dict] = {}
    for name in CLASS_METRICS:
        class_values = aucs if name == "auc" else point[name]
        value = float(np.nanmean(class_values)) if np.isfinite(class_values).any() else None
        if small:
            interval = _mean_of_class_bounds([per_class[label][name] for label in labels])
        else:
            interval = percentile_interval(_mean_over_classes(replicates[name]), confidence) if replicates else None
        macro[name] = _metric(value, interval)

    report: dict[str, Any] = {
        "labels": labels,
        "n": int(len(truth)),
        "confidence": confidence,
        "methods": {
            "prediction": "arg-max of the class probabilities",
            "proportions": "Wilson score interval",
            "auc": "one-vs-rest ROC AUC; DeLong interval (normal, clipped to [0, 1])",
            "f1_and_macro": (
                f"percentile interval of {n_bootstrap} bootstrap resamples stratified by true class"
                if n_bootstrap > 0
                else "no interval (n_bootstrap=0)"
            ),
            "macro": "unweighted mean over classes with a defined value",
            "small_classes": (
                f"classes with fewer than {MIN_CLASS_SIZE} cases: F1 by the Wilson interval of the Jaccard index, "
                "AUC by the Wilson interval under the Birnbaum-Klose variance bound, macro averages from the mean "
                "of the per-class bounds (a bootstrap over so few cases collapses)"
            ),
        },
        "warnings": [small_class_warning(label, per_class[label]["support"]) for label in small],
        "overall": {"accuracy": proportion(int(np.trace(matrix)), int(matrix.sum()), confidence)},
        "per_class": per_class,
        "macro": macro,
        "confusion_matrix": {"labels": labels, "rows": "true", "columns": "predicted", "counts": matrix.tolist()},
    }
    if n_classes == 2:
        report["positive_label"] = labels[1]
    return report


def class_summary(report: dict, label: str | None = None) -> dict[str, float | None]:
    """Flat point values of one report: overall accuracy plus one set of class metrics.

    The set is the positive class's for a binary report, the named class's when
    ``label`` is given, else the macro averages. This is the row one split contributes
    to :func:`scintipipe.evaluation.resampling.summarize_splits`.
    """
    if label is None:
        label = report.get("positive_label")
    source = report["per_class"][label] if label is not None else report["macro"]
    summary = {"overall_accuracy": report["overall"]["accuracy"]["value"]}
    summary.update({name: source[name]["value"] for name in CLASS_METRICS})
    return summary
