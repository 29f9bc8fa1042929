"""Paired and unpaired comparisons: McNemar, Mann-Whitney U, Cohen's kappa."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest, chi2, mannwhitneyu
from sklearn.metrics import cohen_kappa_score

#: Below this many discordant pairs McNemar's test uses the exact binomial distribution.
EXACT_MCNEMAR_BELOW = 25


def mcnemar_test(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """McNemar's test of two paired accuracies (two classifiers on the same cases).

    Exact two-sided binomial test on the discordant pairs when there are fewer than
    ``EXACT_MCNEMAR_BELOW`` of them, else the chi-square test with continuity correction.

    Args:
        correct_a: per case, whether classifier A was right.
        correct_b: per case, whether classifier B was right (same cases, same order).

    Returns:
        ``n``, ``accuracy_a``, ``accuracy_b``, ``a_only_correct`` and ``b_only_correct``
        (the discordant counts), ``method`` ("exact" or "chi2"), ``statistic`` (the smaller
        discordant count for the exact test, chi-square otherwise) and ``p_value``.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("correct_a and correct_b must be 1-D and of the same length")
    if a.size == 0:
        raise ValueError("no cases to compare")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    discordant = a_only + b_only
    if discordant == 0:
        method, statistic, p_value = "exact", 0.0, 1.0
    elif discordant < EXACT_MCNEMAR_BELOW:
        method, statistic = "exact", float(min(a_only, b_only))
        p_value = float(binomtest(a_only, discordant, 0.5).pvalue)
    else:
        method = "chi2"
        statistic = (abs(a_only - b_only) - 1.0) ** 2 / discordant
        p_value = float(chi2.sf(statistic, df=1))
    return {
        "n": int(a.size),
        "accuracy_a": float(a.mean()),
        "accuracy_b": float(b.mean()),
        "a_only_correct": a_only,
        "b_only_correct": b_only,
        "method": method,
        "statistic": float(statistic),
        "p_value": min(1.0, p_value),
    }


def mcnemar_from_predictions(y_true: npt.ArrayLike, predicted_a: npt.ArrayLike, predicted_b: npt.ArrayLike) -> dict:
    """:func:`mcnemar_test` on two sets of predicted labels against the truth."""
    truth = np.asarray(y_true)
    return mcnemar_test(np.asarray(predicted_a) == truth, np.asarray(predicted_b) == truth)


def mann_whitney(values_a: Sequence[float], values_b: Sequence[float]) -> dict:
    """Two-sided Mann-Whitney U test of one metric between two models' repeated splits.

    Returns:
        ``u`` (statistic of A), ``p_value``, and ``n``, ``mean``, ``sd`` (ddof 1) and
        ``median`` of each side (``*_a``, ``*_b``).
    """
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    result = mannwhitneyu(a, b, alternative="two-sided")
    summary: dict[str, Any] = {"u": float(result.statistic), "p_value": float(result.pvalue)}
    for side, values in (("a", a), ("b", b)):
        summary[f"n_{side}"] = int(values.size)
        summary[f"mean_{side}"] = float(values.mean())
        summary[f"sd_{side}"] = float(values.std(ddof=1)) if values.size > 1 else None
        summary[f"median_{side}"] = float(np.median(values))
    return summary


def cohen_kappa(labels_a: Sequence[Any], labels_b: Sequence[Any], weights: str | None = None) -> dict:
    """Cohen's kappa between two readers' calls on the same cases (``sklearn``).

    Args:
        labels_a: reader A's label per case.
        labels_b: reader B's label per case, same cases and order.
        weights: ``None``, ``"linear"`` or ``"quadratic"`` (for ordered classes).

    Returns:
        ``kappa``, ``n`` and ``observed_agreement``.
    """
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("both readers need the same, non-empty list of cases")
    kappa = cohen_kappa_score(a, b, weights=weights)
    return {
        "kappa": float(kappa) if np.isfinite(kappa) else None,
        "n": int(a.size),
        "observed_agreement": float((a == b).mean()),
    }
