"""Confidence intervals for proportions and percentile bootstrap intervals."""

from __future__ import annotations

import math
import numpy as np
from scipy.stats import norm


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2.0))


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
    z = z_value(confidence)
    p = successes / total
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

