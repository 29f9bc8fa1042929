"""DeLong AUC variance and paired test: sklearn, brute force, bootstrap and pROC references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from scintipipe.evaluation import delong_auc_ci, delong_covariance, delong_test

# pROC's aSAH data set (Turck et al. 2010, Intensive Care Med 36:107; 113 patients,
# outcome "Poor" = 1, 41 of them): the example of pROC's own documentation.
ASAH_OUTCOME = [
    0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0,
    0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0,
    0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0,
    0,
]  # fmt: skip
ASAH_S100B = [
    0.13, 0.14, 0.1, 0.04, 0.13, 0.1, 0.47, 0.16, 0.18, 0.1, 0.12, 0.1, 0.44, 0.71,
    0.04, 0.08, 0.49, 0.04, 0.07, 0.33, 0.09, 0.09, 0.07, 0.11, 0.07, 0.17, 0.07, 0.11,
    0.13, 0.19, 0.05, 0.16, 0.41, 0.14, 0.34, 0.35, 0.48, 0.09, 0.96, 0.25, 0.5, 0.46,
    0.16, 0.07, 0.43, 0.45, 0.11, 0.08, 0.09, 0.86, 0.52, 0.08, 0.06, 0.13, 2.07, 0.1,
    0.14, 0.15, 0.07, 0.06, 0.77, 0.05, 0.09, 0.3, 0.03, 0.09, 0.04, 0.23, 0.7, 0.09,
    0.27, 0.71, 0.08, 0.26, 0.08, 0.16, 0.09, 0.13, 0.1, 0.08, 0.11, 0.33, 0.11, 0.28,
    0.07, 0.1, 0.32, 0.22, 0.07, 0.05, 0.24, 0.38, 0.1, 0.15, 0.08, 0.14, 0.1, 0.07,
    0.04, 0.19, 0.56, 0.14, 0.58, 0.32, 0.82, 0.74, 0.15, 0.47, 0.17, 0.44, 0.15, 0.5,
    0.48,
]  # fmt: skip
ASAH_WFNS = [
    1, 1, 1, 1, 3, 2, 5, 4, 1, 2, 5, 2, 5, 5, 1, 2, 5, 2, 2, 5, 2, 1, 1, 1, 1, 2, 1, 2,
    1, 1, 3, 4, 2, 1, 4, 5, 4, 1, 4, 2, 5, 5, 1, 1, 2, 4, 1, 1, 2, 5, 5, 2, 1, 2, 5, 1,
    2, 2, 2, 1, 5, 1, 1, 2, 5, 2, 1, 4, 5, 2, 4, 4, 1, 4, 1, 2, 1, 4, 2, 1, 2, 3, 2, 4,
    2, 1, 4, 5, 1, 1, 5, 4, 2, 2, 1, 1, 1, 3, 1, 2, 5, 2, 2, 5, 5, 5, 2, 4, 4, 5, 1, 1,
    1,
]  # fmt: skip


def _binormal(n: int, separation: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.integers(0, 2, n)
    return truth, rng.normal(size=n) + separation * truth


def _brute_force_delong(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988 from the O(m n) pairwise kernel (1 if greater, 1/2 if tied), no ranks."""
    pos, neg = scores[:, truth == 1], scores[:, truth == 0]
    kernel = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v_pos, v_neg = kernel.mean(axis=2), kernel.mean(axis=1)
    return v_pos.mean(axis=1), np.cov(v_pos) / pos.shape[1] + np.cov(v_neg) / neg.shape[1]


def test_asah_matches_the_proc_documentation():
    """pROC: auc 0.7314, ci.auc 0.6301-0.8326 (DeLong) for s100b; wfns 0.8237;
    roc.test(s100b, wfns): Z = -2.209, p-value = 0.02718."""
    truth = np.array(ASAH_OUTCOME)
    assert (truth.size, truth.sum()) == (113, 41)
    s100b = delong_auc_ci(truth, ASAH_S100B)
    assert s100b["value"] == pytest.approx(0.7314, abs=5e-5)
    assert (s100b["lower"], s100b["upper"]) == pytest.approx((0.6301, 0.8326), abs=5e-5)
    test = delong_test(truth, ASAH_S100B, ASAH_WFNS)
    assert test["auc_b"] == pytest.approx(0.8237, abs=5e-5)
    assert test["z"] == pytest.approx(-2.209, abs=5e-4)
    assert test["p_value"] == pytest.approx(0.02718, abs=5e-6)
    assert test["lower"] < test["difference"] < test["upper"] < 0


def test_auc_equals_sklearn_and_fast_delong_equals_brute_force_with_ties():
    rng = np.random.default_rng(0)
    truth, a = _binormal(157, 0.8, rng)
    scores = np.vstack([np.round(a, 1), np.round(0.6 * a + rng.normal(size=157), 1), np.round(rng.normal(size=157))])
    aucs, covariance = delong_covariance(truth, scores)
    for auc, row in zip(aucs, scores, strict=True):
        assert auc == pytest.approx(roc_auc_score(truth, row), abs=1e-12)
    reference_aucs, reference_covariance = _brute_force_delong(truth, scores)
    np.testing.assert_allclose(aucs, reference_aucs, atol=1e-12)
    np.testing.assert_allclose(covariance, reference_covariance, rtol=1e-9, atol=1e-15)


def test_delong_variance_is_close_to_a_bootstrap_variance():
    rng = np.random.default_rng(1)
    truth, scores = _binormal(400, 1.0, rng)
    variance = delong_covariance(truth, scores)[1][0, 0]
    pos, neg = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    resamples = 4000
    rows = np.concatenate([rng.choice(pos, (resamples, pos.size)), rng.choice(neg, (resamples, neg.size))], axis=1)
    ranks = rankdata(scores[rows], axis=1)  # Mann-Whitney AUC of each resample, positives first
    replicates = (ranks[:, : pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size)
    assert replicates[0] == pytest.approx(roc_auc_score(truth[rows[0]], scores[rows[0]]))
    assert variance == pytest.approx(np.var(replicates, ddof=1), rel=0.1)


def test_identical_models_give_p_one_and_clearly_different_ones_a_small_p():
    rng = np.random.default_rng(2)
    truth, strong = _binormal(300, 2.0, rng)
    same = delong_test(truth, strong, strong)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0 and same["z"] == 0.0
    # a monotone transform ranks the cases identically
    assert delong_test(truth, strong, np.exp(strong))["p_value"] == 1.0
    weak = 0.2 * strong + rng.normal(size=300)
    different = delong_test(truth, strong, weak)
    assert different["difference"] > 0.1 and different["p_value"] < 1e-6
    assert different["lower"] > 0


def test_perfect_separation_has_zero_width_interval():
    result = delong_auc_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (result["value"], result["lower"], result["upper"], result["se"]) == (1.0, 1.0, 1.0, 0.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        delong_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        delong_auc_ci([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="does not match"):
        delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
