"""DeLong's nonparametric AUC variance, its confidence interval and the paired test.

The fast algorithm of Sun and Xu (2014, IEEE Signal Processing Letters 21:1389) gets the
structural components of DeLong, DeLong and Clarke-Pearson (1988, Biometrics 44:837) from
mid-ranks, in O(n log n) per model instead of O(m n). Ties count one half, as in the
Mann-Whitney statistic, so the AUC equals ``sklearn.metrics.roc_auc_score``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.stats import norm, rankdata

from scintipipe.evaluation.intervals import z_value


def _binary_truth(y_true: npt.ArrayLike) -> np.ndarray:
    truth = np.asarray(y_true)
    if truth.dtype == bool:
        truth = truth.astype(int)
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 (negative/positive) values")
    if truth.min() == truth.max():
        raise ValueError("DeLong needs both classes in y_true (at least one positive and one negative)")
    return truth.astype(bool)


def delong_covariance(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several scores on the same cases and DeLong's covariance matrix of them.

    Args:
        y_true: 0/1 truth per case (1 = positive).
        scores: ``(n_models, n_cases)`` or ``(n_cases,)``; higher means more likely positive.

    Returns:
        ``(aucs, covariance)``: shapes ``(n_models,)`` and ``(n_models, n_models)``.
    """
    positive = _binary_truth(y_true)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != positive.size:
        raise ValueError(f"scores shape {scores.shape} does not match {positive.size} cases")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    pos, neg = scores[:, positive], scores[:, ~positive]
    m, n = pos.shape[1], neg.shape[1]
    rank_pos = rankdata(pos, axis=1)
    rank_neg = rankdata(neg, axis=1)
    rank_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    # Structural components: share of negatives below each positive, of positives above each negative.
    v_pos = (rank_all[:, :m] - rank_pos) / n
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m
    cov_pos = np.atleast_2d(np.cov(v_pos)) if m > 1 else np.zeros((len(scores), len(scores)))
    cov_neg = np.atleast_2d(np.cov(v_neg)) if n > 1 else np.zeros((len(scores), len(scores)))
    return aucs, cov_pos / m + cov_neg / n


def delong_auc_ci(y_true: npt.ArrayLike, scores: npt.ArrayLike, confidence: float = 0.95) -> dict:
    """AUC with DeLong's standard error and normal confidence interval (clipped to [0, 1]).

    Args:
        y_true: 0/1 truth per case.
        scores: one score per case; higher means more likely positive.
        confidence: two-sided confidence level.

    Returns:
        ``{"value", "lower", "upper", "se", "method"}``.
    """
    aucs, covariance = delong_covariance(y_true, np.asarray(scores, dtype=float))
    auc, se = float(aucs[0]), math.sqrt(max(float(covariance[0, 0]), 0.0))
    half_width = z_value(confidence) * se
    return {"value": auc, "lower": max(0.0, auc - half_width), "upper": min(1.0, auc + half_width), "se": se, "method": "delong"}


def delong_test(y_true: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike, confidence: float = 0.95) -> dict:
    """DeLong's test of two correlated AUCs (two models scored on the same cases).

    Args:
        y_true: 0/1 truth per case.
        scores_a: model A's score per case.
        scores_b: model B's score per case, same cases and order.
        confidence: level of the interval of the difference.

    Returns:
        ``auc_a``, ``auc_b``, ``difference`` (A - B), ``se``, ``lower`` and ``upper`` (interval
        of the difference), ``z`` and two-sided ``p_value``. When the difference has zero
        variance (e.g. identical rankings) ``z`` is 0 and ``p_value`` 1 if the AUCs are equal.
    """
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scores_a {a.shape} and scores_b {b.shape} does not match (same cases needed)")
    aucs, covariance = delong_covariance(y_true, np.vstack([a, b]))
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1])
    se = math.sqrt(max(variance, 0.0))
    if se > 1e-12:
        z = difference / se
        p_value = float(2.0 * norm.sf(abs(z)))
    else:
        z, p_value = 0.0, 1.0 if abs(difference) < 1e-12 else 0.0
    half_width = z_value(confidence) * se
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "se": se,
        "lower": difference - half_width,
        "upper": difference + half_width,
        "z": float(z),
        "p_value": p_value,
        "confidence": confidence,
        "method": "delong (paired)",
    }
