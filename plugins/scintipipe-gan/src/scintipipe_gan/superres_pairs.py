"""Training pairs for the SRGAN stage, made by the simulator in memory: one phantom, two acquisitions.

For each pair the uptake4 simulator draws one phantom and acquires it at the centre's count
preset (``case.counts``: Poisson counts on the centre's matrix). The pair is:

* **high**: those counts through the task bundle's own preprocessing (for uptake4: 2.2 mm
  grid, 96 x 96 neck window, square-root normalisation), mapped to ``[-1, 1]``
  (:func:`scintipipe_gan.data.to_gan`) at the bundle's input size;
* **low**: the same counts **Poisson-thinned** to ``count_fraction`` of them (each count
  kept with that probability, a binomial draw per pixel: exactly a Poisson acquisition of
  the same phantom at ``count_fraction`` of the time), through the same preprocessing,
  shifted by the whole pixels that best align it with ``high`` (the neck-window centre is an
  intensity centroid, which thinning noise can move by a pixel), then **block-averaged** to
  ``low_size`` (``to_gan``'s area resize: 96 to 64 is 1.5 x 1.5 pixels of 2.2 mm, i.e. a
  3.3 mm matrix).

So the SR stage learns low count and low matrix together, as the DCGAN's 64-pixel images need
it. ``count_fraction`` 1 gives matrix-only pairs. Labels are drawn balanced (they are not
used in training; they only make every pattern appear). The pairs' phantoms are drawn from
their own seed and are not any labelled training scan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from scintipipe_gan.data import DEFAULT_INPUT_MAX, to_gan

#: largest whole-pixel shift searched when aligning ``low`` with ``high``
MAX_SHIFT = 3


@dataclass
class SuperResPairs:
    """Aligned low/high images of the same phantoms, both in ``[-1, 1]``.

    Attributes:
        low: ``(N, C, low_size, low_size)``.
        high: ``(N, C, H, W)``, the bundle's input size.
        labels: the pattern each phantom was drawn with.
        shifts: whole-pixel ``(rows, cols)`` shift applied to each low image before resizing.
    """

    low: torch.Tensor
    high: torch.Tensor
    labels: list[str]
    shifts: list[tuple[int, int]]


def thin_counts(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Binomial thinning: keep each count with probability ``fraction`` (a Poisson image stays Poisson)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"count fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return counts.astype(np.float32)
    return rng.binomial(np.asarray(counts, dtype=np.int64), fraction).astype(np.float32)


def best_shift(moving: torch.Tensor, fixed: torch.Tensor, max_shift: int = MAX_SHIFT) -> tuple[int, int]:
    """The whole-pixel roll of ``moving`` ``(C, H, W)`` that best correlates with ``fixed``."""
    best, best_score = (0, 0), -float("inf")
    f = fixed.flatten() - fixed.mean()
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            m = torch.roll(moving, (dy, dx), dims=(-2, -1)).flatten()
            score = float(((m - m.mean()) * f).sum())
            if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(dy) + abs(dx) < abs(best[0]) + abs(best[1])):
                best, best_score = (dy, dx), score
    return best


def _uptake4_case(rng: np.random.Generator, center: Any, label: str) -> Any:
    """One simulated uptake4 case (the same draws as the built-in simulator)."""
    from scintipipe.api import draw_uptake4_findings, simulate_patient_view

    return simulate_patient_view(rng, center, label, lambda rng, nuisance: draw_uptake4_findings(rng, nuisance, label))


def simulate_pairs(
    bundle: Any,
    n: int,
    low_size: int = 64,
    count_fraction: float = 0.25,
    center: str = "a",
    seed: int = 0,
    input_max: float = DEFAULT_INPUT_MAX,
    log: Callable[[str], None] | None = None,
) -> SuperResPairs:
    """Simulate ``n`` low/high pairs (see the module docstring).

    Args:
        bundle: the task bundle whose preprocessing makes both images (task ``uptake4``).
        n: number of pairs.
        low_size: side of the low image (the DCGAN's image size).
        count_fraction: share of the counts the low image keeps (1: matrix only).
        center: simulator centre of the acquisitions.
        seed: the phantoms and the thinning; same seed, same pairs.
        input_max: upper clip of the bundle inputs (as the DCGAN uses it).
        log: progress messages (every 64 pairs).

    Raises:
        ValueError: a bundle of another task than uptake4 (the only simulator wired here).
    """
    from scintipipe.api import assign_labels, case_rng, get_center, make_scan

    if bundle.task != "uptake4":
        raise ValueError(f"the SRGAN pairs are simulated for task uptake4 only; bundle {bundle.name!r} solves {bundle.task!r}")
    profile = get_center(center)
    transform = bundle.scan_transform
    labels = assign_labels(list(bundle.labels), {label: 1.0 for label in bundle.labels}, n, seed)
    high_size = int(bundle.input_shape[-1])
    lows, highs, shifts = [], [], []
    for index, label in enumerate(labels):
        case = _uptake4_case(case_rng(seed, index), profile, label)
        thinning = case_rng(seed, index, stream=7)
        spacing = (case.pixel_mm, case.pixel_mm)
        pair = []
        for name, counts in (("high", case.counts.astype(np.float32)), ("low", thin_counts(case.counts, count_fraction, thinning))):
            scan = make_scan(counts, f"srgan-pair-{seed}-{index}-{name}", spacing=spacing)
            pair.append(torch.as_tensor(np.asarray(transform(scan)["image"]), dtype=torch.float32))
        high, low = pair
        shift = best_shift(low, high)
        low = torch.roll(low, shift, dims=(-2, -1))
        highs.append(to_gan(high[None], high_size, input_max)[0])
        lows.append(to_gan(low[None], low_size, input_max)[0])
        shifts.append(shift)
        if log is not None and (index + 1) % 64 == 0:
            log(f"simulated {index + 1}/{n} SRGAN pairs")
    return SuperResPairs(torch.stack(lows), torch.stack(highs), list(labels), shifts)
