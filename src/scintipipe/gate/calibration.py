"""Temperature scaling and expected calibration error (Guo et al. 2017).

A bundle's ``configs/gate.json`` carries a ``temperature``; the classify stage divides the
logits by it before the softmax. ``scintipipe gate fit`` fits it on held-out simulated
scans (never on training data, never on real images) and reports the expected
calibration error before and after on a second held-out half.

The ECE here is the usual top-label one: predictions are binned by their confidence (the
largest probability) into 15 equal-width bins and the gap between confidence and accuracy
is averaged with the bins' weights. MONAI's ``monai.metrics.CalibrationErrorMetric`` is a
class-wise (per channel, one-vs-rest) ECE made for segmentation maps, a different quantity,
so it is not used here.

Example:
    >>> import torch
    >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> targets = torch.tensor([0, 1, 1, 0])
    >>> fit_temperature(logits, targets) > 1   # overconfident: the temperature softens
    True
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: bins of :func:`expected_calibration_error`
N_BINS = 15


def nll(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``targets`` under ``softmax(logits / temperature)``."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    return float(torch.nn.functional.cross_entropy(logits / temperature, torch.as_tensor(targets, dtype=torch.long)))


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, max_iter: int = 200, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the NLL of held-out ``logits`` (LBFGS on log T).

    Args:
        logits: ``(N, K)`` logits of held-out views.
        targets: ``(N,)`` integer labels.
        max_iter: LBFGS iterations.
        bounds: the temperature is clipped to this range.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64).detach()
    targets = torch.as_tensor(targets, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    value = float(log_t.detach().exp())
    if not math.isfinite(value):
        return 1.0
    return float(min(max(value, bounds[0]), bounds[1]))


def expected_calibration_error(probs: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, n_bins: int = N_BINS) -> float:
    """Top-label ECE: ``sum_b |B_b|/N * |accuracy(B_b) - confidence(B_b)|`` over equal-width bins.

    Args:
        probs: ``(N, K)`` probabilities.
        targets: ``(N,)`` integer labels.
        n_bins: equal-width confidence bins on [0, 1] (the first bin includes 0, each bin
            its upper edge).
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if len(probs) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(probs))


def ece_bootstrap_sd(
    probs: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, n_bins: int = N_BINS, n_boot: int = 1000, seed: int = 0
) -> float:
    """Bootstrap standard deviation of :func:`expected_calibration_error` (resampling views).

    A standard deviation, not a percentile interval: binned ECE is biased upward on small
    samples (and more so on bootstrap resamples, which repeat views), so percentile
    intervals can lie wholly above the estimate.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    n = len(probs)
    values = [expected_calibration_error(probs[idx], targets[idx], n_bins) for idx in (rng.integers(0, n, n) for _ in range(n_boot))]
    return float(np.std(values, ddof=1))


def nll_change_interval(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """NLL at ``temperature`` minus NLL at 1, with a paired percentile bootstrap interval (resampling views).

    Returns:
        ``(change, lower, upper)``; negative is better.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    targets = torch.as_tensor(targets, dtype=torch.long)
    per_view = torch.nn.functional.cross_entropy(logits / temperature, targets, reduction="none") - torch.nn.functional.cross_entropy(
        logits, targets, reduction="none"
    )
    diff = per_view.numpy()
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_boot)]
    alpha = (1 - level) / 2
    return float(diff.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def softmax(logits: torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` as a float64 array."""
    return torch.as_tensor(logits, dtype=torch.float64).div(temperature).softmax(dim=1).numpy()
