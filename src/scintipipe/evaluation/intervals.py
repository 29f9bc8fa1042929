"""Confidence intervals for proportions and percentile bootstrap intervals.

Small samples: a stratified bootstrap keeps class sizes fixed, so for a class of one or
two cases it resamples the same few cases and its interval collapses to a point. Below
:data:`MIN_CLASS_SIZE` cases, :mod:`scintipipe.evaluation.classification` therefore uses
closed-form intervals instead: :func:`f1_interval` (Wilson on the Jaccard index) and
:func:`auc_bound_interval` (Wilson under the Birnbaum-Klose variance bound).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2.0))


#: a class with fewer cases than this gets closed-form intervals and a warning
MIN_CLASS_SIZE = 10


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: number of successes.
        total: number of trials.
        confidence: two-sided confidence level.

    Returns:
        ``(lower, upper)``, or ``None`` when ``total`` is 0 (the proportion is undefined).
    """
    if total == 0:
        return None
    if not 0 <= successes <= total:
        raise ValueError(f"successes ({successes}) must lie in [0, total={total}]")
    return wilson_rate_interval(successes / total, total, confidence)


def wilson_rate_interval(rate: float, total: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate in [0, 1] observed over ``total`` (possibly effective) trials."""
    z = z_value(confidence)
    p = min(1.0, max(0.0, float(rate)))
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def proportion(successes: int, total: int, confidence: float = 0.95) -> dict:
    """A proportion with its Wilson interval, as a JSON-ready metric entry.

    Returns:
        ``{"value", "lower", "upper", "numerator", "denominator"}``; the first three are
        ``None`` when ``total`` is 0.
    """
    interval = wilson_interval(successes, total, confidence)
    return {
        "value": successes / total if total else None,
        "lower": interval[0] if interval else None,
        "upper": interval[1] if interval else None,
        "numerator": int(successes),
        "denominator": int(total),
    }


def stratified_bootstrap_indices(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples that keep the size of every stratum (e.g. every true class).

    Args:
        strata: one stratum code per case.
        n_resamples: number of resamples.
        rng: random generator.

    Returns:
        An ``(n_resamples, n_cases)`` integer array of case indices.
    """
    strata = np.asarray(strata)
    columns = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        columns.append(members[rng.integers(0, len(members), size=(n_resamples, len(members)))])
    return np.concatenate(columns, axis=1)


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of bootstrap replicates, ignoring undefined (NaN) replicates.

    Returns:
        ``(lower, upper)``, or ``None`` when no replicate is defined.
    """
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    lower, upper = np.percentile(samples, [tail, 100.0 - tail])
    return float(lower), float(upper)


def f1_interval(tp: int, fp: int, fn: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval for F1 that stays honest with few cases.

    F1 = 2J / (1 + J), where J = TP / (TP + FP + FN) is the Jaccard index, a proportion of
    the cases that are predicted or truly in the class. The Wilson interval of J, mapped
    through that increasing function, bounds F1. With one true case predicted right
    (TP 1, FP 0, FN 0) it gives 0.34-1.00, not the point 1.00 a bootstrap gives.

    Returns:
        ``(lower, upper)``, or ``None`` when TP + FP + FN is 0 (F1 undefined).
    """
    interval = wilson_interval(tp, tp + fp + fn, confidence)
    if interval is None:
        return None
    return tuple(2.0 * j / (1.0 + j) for j in interval)  # type: ignore[return-value]


def auc_bound_interval(auc: float, positives: int, negatives: int, confidence: float = 0.95) -> tuple[float, float]:
    """Conservative interval for a ROC AUC from few positives or negatives.

    The variance of the Mann-Whitney AUC is at most ``A (1 - A) / min(m, n)`` (Birnbaum
    and Klose 1957), the variance of a proportion over ``min(m, n)`` trials; this is the
    Wilson interval of that proportion. Unlike DeLong's, it does not collapse to a point
    when the AUC is 1 or when a class has one case.
    """
    return wilson_rate_interval(auc, max(1, min(positives, negatives)), confidence)
