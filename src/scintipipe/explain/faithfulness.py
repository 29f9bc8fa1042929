"""Does a saliency map point at the evidence? Measures of an explanation's faithfulness.

Four measures, all on the network input grid (the preprocessed image):

* **pointing game** (:func:`pointing_game_hit`): the map's peak falls inside a slightly
  dilated target mask (the hot nodule for a focal class, the thyroid for a whole-gland
  class);
* **in-mask saliency share** (:func:`energy_share`, the "energy-based pointing game"): the
  fraction of the map's positive mass that lies inside the thyroid;
* **peak on the border** (:func:`peak_on_border`): the peak lies within a few pixels of the
  map's edge (an artefact: there is no thyroid evidence at the edge of the neck window);
* **deletion and insertion** (:func:`deletion_insertion`): the most salient pixels are
  progressively replaced by a baseline (deletion) or restored onto the baseline
  (insertion) while the target-class probability is tracked; a faithful map makes the
  probability fall fast (low deletion AUC) and rise fast (high insertion AUC).

Masks drawn on the scan (simulator truth, a reader's outline) are brought onto the input
grid by :func:`preprocess_masks`, which replays the bundle's geometric scan transforms
(``ResampleToSpacing``, then ``CropNeckRegion`` at the centre recorded in the image's
metadata) and thresholds at 0.5.

``benchmarks/explain_faithfulness.py`` runs these over simulated scans for every method
and Grad-CAM layer and recommends a default.

Example:
    >>> import numpy as np
    >>> heat = np.zeros((32, 32), np.float32); heat[10, 12] = 1.0
    >>> mask = np.zeros((32, 32), bool); mask[9:12, 11:14] = True
    >>> pointing_game_hit(heat, mask), peak_on_border(heat)
    (True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

from scintipipe.transforms.scintigram import CropNeckRegion, NormalizeCounts, ResampleToSpacing

#: array transforms that change only intensities (skipped when preprocessing a mask)
INTENSITY_ONLY: tuple[type, ...] = (NormalizeCounts,)


# ---- masks onto the input grid ----------------------------------------------------------


def _array_transforms(transforms: Any) -> list[Any]:
    """The array transforms inside a Compose / list of (dictionary) transforms."""
    items = getattr(transforms, "transforms", transforms)
    if not isinstance(items, (list, tuple)):
        items = [items]
    return [getattr(t, "transform", t) for t in items]


def crop_at(image: torch.Tensor, centre: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """Crop ``(C, H, W)`` to ``size`` around ``centre`` (row, col), zero-padded at the edges,
    exactly as :class:`~scintipipe.transforms.scintigram.CropNeckRegion` does."""
    h, w = int(size[0]), int(size[1])
    top, left = int(centre[0]) - h // 2, int(centre[1]) - w // 2
    out = torch.zeros((image.shape[0], h, w), dtype=image.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + h, image.shape[-2]), min(left + w, image.shape[-1])
    if src_bottom > src_top and src_right > src_left:
        out[:, src_top - top : src_bottom - top, src_left - left : src_right - left] = image[:, src_top:src_bottom, src_left:src_right]
    return out


def preprocess_masks(
    masks: Mapping[str, np.ndarray],
    scan_image: Any,
    input_meta: Mapping[str, Any],
    transforms: Any,
    intensity_only: tuple[type, ...] = INTENSITY_ONLY,
) -> dict[str, np.ndarray]:
    """Bring boolean masks on the scan grid onto the network input grid.

    The bundle's geometric transforms are replayed on each mask (as a float image):
    ``ResampleToSpacing`` with the scan's spacing (area averaging when shrinking, bilinear
    when enlarging), ``CropNeckRegion`` at the ``crop_centre`` recorded in ``input_meta``
    (not recomputed from the mask), MONAI ``Resize``/``Resized`` as configured; intensity
    transforms are skipped. The result is thresholded at 0.5.

    Args:
        masks: name to boolean ``(rows, cols)`` array on the scan's pixel grid.
        scan_image: the scan's image (``MetaTensor (1, rows, cols)`` with ``spacing`` in
            its metadata, as :func:`scintipipe.scan.make_scan` builds it).
        input_meta: metadata of the preprocessed input (``crop_centre``).
        transforms: the bundle's ``scan_transform`` (a ``Compose``) or a list of transforms.
        intensity_only: transform classes that leave the geometry alone.

    Returns:
        name to boolean ``(H, W)`` array on the input grid.

    Raises:
        ValueError: a transform that is neither known geometry nor intensity-only, or a
            crop without a recorded ``crop_centre``.
    """
    scan_meta = dict(getattr(scan_image, "meta", {}) or {})
    steps = _array_transforms(transforms)
    out: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        x: Any = MetaTensor(torch.as_tensor(np.asarray(mask, dtype=np.float32))[None], meta={"spacing": scan_meta.get("spacing")})
        for step in steps:
            if isinstance(step, ResampleToSpacing):
                x = step(x)
            elif isinstance(step, CropNeckRegion):
                centre = input_meta.get("crop_centre")
                if centre is None:
                    raise ValueError("the input carries no crop_centre: preprocess the image first")
                x = MetaTensor(crop_at(torch.as_tensor(x).float(), centre, step.size), meta=dict(getattr(x, "meta", {})))
            elif isinstance(step, intensity_only):
                continue
            elif type(step).__name__ == "Resize":
                x = step(torch.as_tensor(x).float())
            else:
                raise ValueError(f"cannot replay {type(step).__name__} on a mask; pass it in intensity_only if it leaves the geometry alone")
        out[name] = np.asarray(torch.as_tensor(x)[0].float().numpy() >= 0.5)
    return out


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by ``px`` pixels (8-connected); ``px <= 0`` returns it unchanged."""
    mask = np.asarray(mask, dtype=bool)
    if px <= 0 or not mask.any():
        return mask
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=int(px))


# ---- map-only measures --------------------------------------------------------------------


def saliency_peak(saliency: np.ndarray) -> tuple[int, int]:
    """Row and column of the map's maximum.

    When several pixels share the maximum (a flat, upsampled or clipped plateau), the one
    nearest their centroid, so a tie does not default to the top-left corner.
    """
    s = np.asarray(saliency, dtype=np.float64)
    top = s.max()
    rows, cols = np.nonzero(s >= top - 1e-6 * max(abs(top), 1e-12))
    if len(rows) == 1:
        return int(rows[0]), int(cols[0])
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[k]), int(cols[k])


def pointing_game_hit(saliency: np.ndarray, mask: np.ndarray, tolerance_px: int = 2) -> bool:
    """True when the map's peak lies inside ``mask`` dilated by ``tolerance_px``.

    Args:
        saliency: ``(H, W)`` map.
        mask: boolean ``(H, W)`` target on the same grid.
        tolerance_px: dilation of the mask (resampling and the map's resolution blur
            boundaries by a pixel or two).
    """
    row, col = saliency_peak(saliency)
    return bool(dilate(mask, tolerance_px)[row, col])


def energy_share(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's positive mass inside ``mask`` (``nan`` for an all-zero map)."""
    s = np.clip(np.asarray(saliency, dtype=np.float64), 0.0, None)
    total = s.sum()
    return float(s[np.asarray(mask, bool)].sum() / total) if total > 0 else float("nan")


def peak_on_border(saliency: np.ndarray, border_px: int = 2) -> bool:
    """True when the map's peak lies within ``border_px`` pixels of its edge."""
    row, col = saliency_peak(saliency)
    h, w = np.asarray(saliency).shape
    return bool(min(row, col, h - 1 - row, w - 1 - col) < border_px)


def fraction_above_half(saliency: np.ndarray) -> float:
    """Fraction of pixels whose value is above half the map's maximum (a diffuse map: high)."""
    s = np.asarray(saliency, dtype=np.float64)
    top = s.max()
    return float((s > 0.5 * top).mean()) if top > 0 else 0.0


# ---- deletion and insertion -------------------------------------------------------------


def baseline_images(inputs: torch.Tensor, kind: str = "blur", sigma_px: float = 8.0) -> torch.Tensor:
    """What removed pixels are replaced with: ``"blur"`` (a Gaussian blur of the input,
    ``sigma_px``) or ``"zero"``."""
    if kind == "zero":
        return torch.zeros_like(inputs)
    if kind != "blur":
        raise ValueError(f"unknown baseline {kind!r}; choose blur or zero")
    a = inputs.detach().cpu().numpy()
    blurred = ndimage.gaussian_filter(a, sigma=(0, 0, sigma_px, sigma_px), mode="nearest")
    return torch.as_tensor(blurred, dtype=inputs.dtype, device=inputs.device)


def curve_auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled at evenly spaced fractions 0..1 (trapezoid rule), per row."""
    curve = np.atleast_2d(np.asarray(curve, dtype=np.float64))
    trapezoid = np.trapezoid if hasattr(np, "trapezoid") else np.trapz  # type: ignore[attr-defined]  # NumPy < 2.0 has only trapz
    return trapezoid(curve, dx=1.0 / (curve.shape[-1] - 1), axis=-1)


def deletion_insertion(
    network: torch.nn.Module,
    inputs: torch.Tensor,
    class_indices: Sequence[int],
    saliency: np.ndarray,
    steps: int = 16,
    baseline: str = "blur",
    sigma_px: float = 8.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of the target-class probability.

    At step ``k`` of ``steps`` the ``k / steps`` most salient pixels (ties broken at random)
    are replaced by the baseline (deletion) or, starting from the baseline, restored to the
    input (insertion). All ``2 * (steps + 1)`` images of a case go through the network in
    one batch.

    Args:
        network: the classifier, in eval mode; its outputs are logits.
        inputs: ``(batch, channels, H, W)`` on the network's device.
        class_indices: the class explained for each input.
        saliency: ``(batch, H, W)`` maps.
        steps: number of removal steps (16 is enough for an AUC to 0.01).
        baseline: ``"blur"`` or ``"zero"`` (see :func:`baseline_images`).
        sigma_px: blur of the blurred baseline.
        seed: seed of the tie-breaking jitter.

    Returns:
        ``deletion`` and ``insertion``: ``(batch, steps + 1)`` probabilities;
        ``deletion_auc`` and ``insertion_auc``: ``(batch,)``.
    """
    rng = np.random.default_rng(seed)
    base = baseline_images(inputs, baseline, sigma_px)
    batch, _, h, w = inputs.shape
    n = h * w
    counts = np.round(np.linspace(0, n, steps + 1)).astype(int)
    deletion = np.zeros((batch, steps + 1))
    insertion = np.zeros((batch, steps + 1))
    with torch.no_grad():
        for i in range(batch):
            s = np.asarray(saliency[i], dtype=np.float64).ravel()
            order = np.argsort(-(s + rng.uniform(0, 1e-9, n) * max(float(np.abs(s).max()), 1e-12)), kind="stable")
            rank = np.empty(n, dtype=np.int64)
            rank[order] = np.arange(n)
            rank_t = torch.as_tensor(rank.reshape(h, w), device=inputs.device)
            keep = torch.stack([rank_t < c for c in counts.tolist()])[:, None]  # (steps+1, 1, H, W): the top-c pixels
            x, b = inputs[i : i + 1], base[i : i + 1]
            deleted = torch.where(keep, b, x)
            inserted = torch.where(keep, x, b)
            probs = torch.softmax(network(torch.cat([deleted, inserted]).float()), dim=1)[:, int(class_indices[i])].cpu().numpy()
            deletion[i], insertion[i] = probs[: steps + 1], probs[steps + 1 :]
    return {"deletion": deletion, "insertion": insertion, "deletion_auc": curve_auc(deletion), "insertion_auc": curve_auc(insertion)}


# ---- summaries ----------------------------------------------------------------------------


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The Wilson 95 % interval of a proportion (:func:`scintipipe.evaluation.intervals.wilson_interval`), ``(nan, nan)`` for ``n == 0``."""
    from scintipipe.evaluation.intervals import wilson_interval as wilson

    interval = wilson(successes, n)
    return interval if interval is not None else (float("nan"), float("nan"))


def case_measures(
    saliency: np.ndarray, target_mask: np.ndarray, thyroid_mask: np.ndarray, tolerance_px: int = 2, border_px: int = 2
) -> dict[str, Any]:
    """The map-only measures of one case.

    Args:
        saliency: ``(H, W)`` map.
        target_mask: where the evidence is (the nodule for a focal class, else the thyroid).
        thyroid_mask: the thyroid (for the in-thyroid share).
        tolerance_px: pointing-game dilation.
        border_px: width of the border band.
    """
    return {
        "hit": pointing_game_hit(saliency, target_mask, tolerance_px),
        "thyroid_share": energy_share(saliency, thyroid_mask),
        "border_peak": peak_on_border(saliency, border_px),
        "fraction_above_half": fraction_above_half(saliency),
    }


def summarise(rows: Iterable[Mapping[str, Any]], focal_classes: Iterable[str]) -> dict[str, Any]:
    """Aggregate per-case rows (``label``, ``hit``, ``thyroid_share``, ``border_peak``,
    optional ``deletion_auc``/``insertion_auc``/``ms``) into the figures of one method.

    The pointing game is reported separately for focal classes (target: the nodule) and
    for the other classes (target: the gland), with Wilson 95 % intervals.
    """
    rows = list(rows)
    focal = set(focal_classes)

    def rate(selected: list[Mapping[str, Any]]) -> dict[str, Any]:
        k, n = sum(bool(r["hit"]) for r in selected), len(selected)
        low, high = wilson_interval(k, n)
        return {"hits": k, "n": n, "rate": k / n if n else float("nan"), "ci95": [low, high]}

    def mean(key: str) -> float:
        values = [float(r[key]) for r in rows if key in r and r[key] is not None and np.isfinite(r[key])]
        return float(np.mean(values)) if values else float("nan")

    return {
        "pointing_focal": rate([r for r in rows if r["label"] in focal]),
        "pointing_gland": rate([r for r in rows if r["label"] not in focal]),
        "per_class_pointing": {label: rate([r for r in rows if r["label"] == label]) for label in sorted({r["label"] for r in rows})},
        "thyroid_share": mean("thyroid_share"),
        "border_peak_fraction": float(np.mean([bool(r["border_peak"]) for r in rows])) if rows else float("nan"),
        "fraction_above_half": mean("fraction_above_half"),
        "deletion_auc": mean("deletion_auc"),
        "insertion_auc": mean("insertion_auc"),
        "ms_per_case": mean("ms"),
        "n": len(rows),
    }


def recommend(
    summaries: Mapping[str, Mapping[str, Any]], target: float = 0.9, max_ms: float = 250.0, max_border: float = 0.1, auc_margin: float = 0.05
) -> dict[str, Any]:
    """Pick the default explanation from measured summaries.

    Keys of ``summaries`` are ``"method"`` or ``"method@layer"``; ``"random"`` (a random
    map) is the reference and ``"gradcam-monai@..."`` (the old behaviour) is never chosen.
    A candidate must be faithful: its deletion AUC at least ``auc_margin`` below the random
    map's and its insertion AUC that much above (when ``random`` was measured), and at most
    ``max_border`` of its peaks on the border. Among the faithful ones that cost at most
    ``max_ms`` per case, those reaching ``target`` on the focal pointing game come first,
    and of those the cheapest wins (the explain stage runs on every case: a method that
    meets the target at a fraction of the cost is the better default; the costlier one
    stays a ``--explain-method`` away). When none reaches the target, the best by (focal
    pointing, gland pointing, in-thyroid share, insertion - deletion AUC) is named.
    When no candidate is faithful, the best affordable one is named with
    ``meets_target`` false.

    Returns:
        ``{"key", "method", "layer", "meets_target", "faithful", "reason"}``.
    """

    def score(item: tuple[str, Mapping[str, Any]]) -> tuple[float, ...]:
        s = item[1]
        auc = (s.get("insertion_auc") or 0.0) - (s.get("deletion_auc") or 0.0)
        return (round(s["pointing_focal"]["rate"], 2), round(s["pointing_gland"]["rate"], 2), round(s["thyroid_share"], 2), auc)

    reference = summaries.get("random")

    def faithful(s: Mapping[str, Any]) -> bool:
        if s.get("border_peak_fraction", 0.0) > max_border:
            return False
        if reference is None:
            return True
        return s["deletion_auc"] <= reference["deletion_auc"] - auc_margin and s["insertion_auc"] >= reference["insertion_auc"] + auc_margin

    eligible = {k: v for k, v in summaries.items() if not k.startswith(("random", "gradcam-monai"))}
    affordable = {k: v for k, v in eligible.items() if np.isfinite(v.get("ms_per_case", np.nan)) and v["ms_per_case"] <= max_ms} or eligible
    good = {k: v for k, v in affordable.items() if faithful(v)}
    reaching = {k: v for k, v in good.items() if v["pointing_focal"]["rate"] >= target}
    if reaching:
        key, best = min(reaching.items(), key=lambda item: (item[1]["ms_per_case"], tuple(-v for v in score(item))))
    else:
        key, best = max((good or affordable).items(), key=score)
    method, _, layer = key.partition("@")
    reason = (
        f"focal pointing {best['pointing_focal']['rate']:.0%} (target {target:.0%}), gland pointing {best['pointing_gland']['rate']:.0%}, "
        f"in-thyroid share {best['thyroid_share']:.2f}, deletion/insertion AUC {best['deletion_auc']:.2f}/{best['insertion_auc']:.2f}, "
        f"peak on border {best['border_peak_fraction']:.0%}, {best['ms_per_case']:.0f} ms per case"
    )
    return {"key": key, "method": method, "layer": layer or None, "meets_target": bool(reaching), "faithful": key in good, "reason": reason}
