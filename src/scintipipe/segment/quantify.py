"""Quantities of a segmented neck scan: counts, areas and ratios per region.

Every quantity is a plain float keyed by a self-explaining name (units in the name):

=================================  =====================================================
``<roi>_counts``                   counts in the region (``thyroid`` = both lobes and
                                   isthmus, nodules included)
``<roi>_area_mm2``                 area from the pixel spacing
``background_counts_per_pixel``    mean of the background region
``thyroid_net_counts``             thyroid counts minus background x thyroid pixels
``left_right_ratio``               net left lobe counts over net right lobe counts
``thyroid_to_background_ratio``    mean thyroid counts per pixel over background's
``thyroid_to_salivary_ratio``      mean thyroid counts per pixel over salivary glands'
``hot_nodules`` / ``cold_nodules`` number of each found
=================================  =====================================================

A quantity whose region is missing (no salivary gland or left lobe found, say) is left
out rather than set to ``NaN`` or reported as 0 counts in 0 mm². ``thyroid_net_counts``
is always given (without a background region nothing is subtracted).
"""

from __future__ import annotations

import cv2
import numpy as np

THYROID_PARTS = ("thyroid_right", "thyroid_left", "isthmus")


def quantify(counts: np.ndarray, rois: dict[str, np.ndarray], spacing: tuple[float, float] | None) -> dict[str, float]:
    """Counts, areas and ratios of the regions of :func:`scintipipe.segment.segment_neck`.

    Args:
        counts: the 2-D counts the regions were found on.
        rois: ``{name: bool array}``.
        spacing: pixel spacing ``(row, column)`` in mm; ``None`` leaves areas out.

    Returns:
        ``{name: float}`` (see the module docstring for the names).
    """
    counts = np.asarray(counts, dtype=np.float64)
    pixel_mm2 = spacing[0] * spacing[1] if spacing is not None else None
    empty = np.zeros(counts.shape, bool)
    regions = {name: rois.get(name, empty) for name in (*THYROID_PARTS, "background")}
    regions["thyroid"] = np.logical_or.reduce([regions[name] for name in THYROID_PARTS])
    regions["salivary"] = rois.get("salivary_right", empty) | rois.get("salivary_left", empty)
    out: dict[str, float] = {}
    for name in ("thyroid", *THYROID_PARTS, "salivary"):
        mask = regions[name]
        if not mask.any():  # a region not found is left out, not reported as 0 counts in 0 mm2
            continue
        out[f"{name}_counts"] = float(counts[mask].sum())
        if pixel_mm2 is not None:
            out[f"{name}_area_mm2"] = round(float(mask.sum()) * pixel_mm2, 2)
    out["hot_nodules"] = float(_count_parts(rois.get("nodules_hot", empty)))
    out["cold_nodules"] = float(_count_parts(rois.get("nodules_cold", empty)))
    background = regions["background"]
    per_pixel = float(counts[background].mean()) if background.any() else 0.0
    if background.any():
        out["background_counts_per_pixel"] = per_pixel

    def net(mask: np.ndarray) -> float:
        return float(counts[mask].sum() - per_pixel * mask.sum())

    out["thyroid_net_counts"] = net(regions["thyroid"])
    right, left = net(regions["thyroid_right"]), net(regions["thyroid_left"])
    if right > 0 and left > 0:
        out["left_right_ratio"] = left / right
    thyroid_mean = counts[regions["thyroid"]].mean() if regions["thyroid"].any() else None
    if thyroid_mean is not None and per_pixel > 0:
        out["thyroid_to_background_ratio"] = float(thyroid_mean / per_pixel)
    if thyroid_mean is not None and regions["salivary"].any():
        out["thyroid_to_salivary_ratio"] = float(thyroid_mean / counts[regions["salivary"]].mean())
    return out


def _count_parts(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1 if mask.any() else 0
