"""Measurements that compare simulated and real thyroid scans on equal terms.

All measurements take a count (or display) image and regions given as boxes
``(row0, row1, col0, col1)``; the same rules apply to real and simulated scans:

* thyroid: pixels of the Gaussian-smoothed image (sigma 1.5 px) at or above 50 % of the
  smoothed maximum inside the thyroid box (an isocontour ROI, as in clinical software);
* salivary: the same 50 % isocontour inside each parotid box, averaged;
* background: a box 15-35 mm below the thyroid ROI, 40 mm wide, centred on it;
* lobe size: extent of the 30 % isocontour of each lobe (split at the column of least
  activity between the lobes), vertical = length, horizontal = width;
* noise: variance over mean in 6x6-pixel windows of a flat box (1 for Poisson noise),
  and the slope of the radially averaged power spectrum of the thyroid region.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import ndimage

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Regions:
    """Boxes (row0, row1, col0, col1) of one scan."""

    thyroid: Box
    parotids: tuple[Box, ...]
    flat: Box | None = None


#: boxes read off the real Siemens scan in ../shared/reference-scans (256 x 256, 1.2 mm)
SIEMENS_REFERENCE_REGIONS = Regions(thyroid=(100, 165, 100, 170), parotids=((50, 85, 75, 100), (50, 85, 158, 185)), flat=(205, 245, 77, 179))


def flat_box(matrix: int) -> Box:
    """A lower-chest box for noise measures, where it lies on the real Siemens scan."""
    return (int(0.80 * matrix), int(0.96 * matrix), int(0.30 * matrix), int(0.70 * matrix))


def _clip_box(box: Box, shape: tuple[int, int]) -> Box:
    r0, r1, c0, c1 = box
    return (max(0, r0), min(shape[0], r1), max(0, c0), min(shape[1], c1))


def isocontour_roi(image: np.ndarray, box: Box, fraction: float, sigma_px: float = 1.5) -> np.ndarray:
    """Pixels at or above ``fraction`` of the smoothed maximum inside ``box``, connected to it."""
    smooth = ndimage.gaussian_filter(image.astype(float), sigma_px)
    r0, r1, c0, c1 = _clip_box(box, image.shape)
    window = smooth[r0:r1, c0:c1]
    above = window >= fraction * window.max()
    labels, _ = ndimage.label(above)
    peak = np.unravel_index(np.argmax(window), window.shape)
    mask = np.zeros(image.shape, dtype=bool)
    mask[r0:r1, c0:c1] = labels == labels[peak]
    return mask


def thyroid_isocontour(image: np.ndarray, box: Box, fraction: float) -> np.ndarray:
    """Thyroid isocontour ROI keeping both lobes (every component above threshold in the box)."""
    smooth = ndimage.gaussian_filter(image.astype(float), 1.5)
    r0, r1, c0, c1 = _clip_box(box, image.shape)
    window = smooth[r0:r1, c0:c1]
    labels, count = ndimage.label(window >= fraction * window.max())
    if count == 0:
        return np.zeros(image.shape, dtype=bool)
    sizes = ndimage.sum(np.ones_like(window), labels, index=range(1, count + 1))
    keep = [i + 1 for i, size in enumerate(sizes) if size >= 0.15 * max(sizes)]
    mask = np.zeros(image.shape, dtype=bool)
    mask[r0:r1, c0:c1] = np.isin(labels, keep)
    return mask


def lobe_sizes_mm(roi: np.ndarray, image: np.ndarray, pixel_mm: float) -> dict[str, float]:
    """Length and width of the right (image left) and left lobes of a thyroid ROI."""
    rows, cols = np.nonzero(roi)
    if rows.size == 0:
        return {}
    profile = np.where(roi, image, 0).sum(axis=0)
    lo, hi = cols.min(), cols.max()
    third = max(1, (hi - lo) // 3)
    middle = range(lo + third, hi - third + 1)
    split = min(middle, key=lambda c: profile[c]) if len(middle) else (lo + hi) // 2
    out = {}
    for side, part in (("right", roi[:, :split]), ("left", roi[:, split:])):
        r, c = np.nonzero(part)
        if r.size:
            out[f"{side}_length_mm"] = float((r.max() - r.min() + 1) * pixel_mm)
            out[f"{side}_width_mm"] = float((c.max() - c.min() + 1) * pixel_mm)
    return out


def local_variance_to_mean(image: np.ndarray, box: Box, window: int = 6) -> float:
    """Mean of variance/mean over ``window``-sized tiles of a flat region (1 for Poisson)."""
    r0, r1, c0, c1 = _clip_box(box, image.shape)
    region = image[r0:r1, c0:c1].astype(float)
    rows, cols = (region.shape[0] // window) * window, (region.shape[1] // window) * window
    tiles = region[:rows, :cols].reshape(rows // window, window, cols // window, window).transpose(0, 2, 1, 3).reshape(-1, window * window)
    means = tiles.mean(axis=1)
    used = means > 0.5
    return float(np.mean(tiles[used].var(axis=1, ddof=1) / means[used]))


def power_spectrum_slope(
    image: np.ndarray, center: tuple[int, int], size_px: int, pixel_mm: float, band_cycles_per_mm: tuple[float, float] = (0.02, 0.12)
) -> float:
    """Slope of log power versus log spatial frequency around ``center`` (Hann-windowed)."""
    half = size_px // 2
    r, c = center
    patch = image[max(0, r - half) : r + half, max(0, c - half) : c + half].astype(float)
    patch = patch - patch.mean()
    window = np.outer(np.hanning(patch.shape[0]), np.hanning(patch.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(patch * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(patch.shape[0], d=pixel_mm))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(patch.shape[1], d=pixel_mm))[None, :]
    radius = np.hypot(fy, fx)
    edges = np.linspace(band_cycles_per_mm[0], band_cycles_per_mm[1], 12)
    centres, values = [], []
    for low, high in pairwise(edges):
        ring = (radius >= low) & (radius < high)
        if ring.any():
            centres.append((low + high) / 2)
            values.append(power[ring].mean())
    slope, _ = np.polyfit(np.log(centres), np.log(values), 1)
    return float(slope)


def measure_scan(image: np.ndarray, regions: Regions, pixel_mm: float | None) -> dict[str, float]:
    """Every comparison figure of one scan.

    Args:
        image: counts (or display values: then only ratios are meaningful).
        regions: thyroid, parotid and flat boxes.
        pixel_mm: pixel size, ``None`` for display images without one (sizes in pixels).
    """
    image = image.astype(float)
    spacing = pixel_mm or 1.0
    thyroid = thyroid_isocontour(image, regions.thyroid, 0.5)
    outline = thyroid_isocontour(image, regions.thyroid, 0.3)
    rows, cols = np.nonzero(outline)
    below0 = rows.max() + int(round(15 / spacing))
    below1 = rows.max() + int(round(35 / spacing))
    mid = int(round(cols.mean()))
    half = int(round(20 / spacing))
    background_box = _clip_box((below0, below1, mid - half, mid + half), image.shape)
    b = image[background_box[0] : background_box[1], background_box[2] : background_box[3]]
    background = float(b.mean()) if b.size else float("nan")
    salivary_values = [image[isocontour_roi(image, box, 0.5)].mean() for box in regions.parotids]
    salivary = float(np.mean(salivary_values)) if salivary_values else float("nan")
    thyroid_mean = float(image[thyroid].mean())
    out = {
        "total_counts": float(image.sum()),
        "max_counts": float(image.max()),
        "thyroid_mean": thyroid_mean,
        "thyroid_max": float(image[outline].max()),
        "background_mean": background,
        "salivary_mean": salivary,
        "thyroid_to_background": thyroid_mean / background if background > 0 else float("nan"),
        "thyroid_to_salivary": thyroid_mean / salivary if salivary > 0 else float("nan"),
        "thyroid_count_fraction": float(image[outline].sum() / image.sum()),
    }
    out.update(lobe_sizes_mm(outline, image, spacing))
    if regions.flat is not None:
        out["flat_variance_to_mean"] = local_variance_to_mean(image, regions.flat)
    centre = (int(round(rows.mean())), mid)
    out["psd_slope_thyroid"] = power_spectrum_slope(image, centre, int(round(77 / spacing)) // 2 * 2, spacing)
    return out


def regions_from_masks(masks: dict[str, np.ndarray], pixel_mm: float, flat: Box | None = None) -> Regions:
    """Boxes for a simulated scan from its ground-truth masks (thyroid box grown by 10 mm,
    parotid boxes by 5 mm)."""

    def box(mask: np.ndarray, margin_mm: float) -> Box:
        rows, cols = np.nonzero(mask)
        m = int(round(margin_mm / pixel_mm))
        return (int(rows.min()) - m, int(rows.max()) + m + 1, int(cols.min()) - m, int(cols.max()) + m + 1)

    thyroid = masks["thyroid"] | masks.get("nodules", np.zeros_like(masks["thyroid"]))
    parotids = tuple(box(masks[name], 5.0) for name in ("parotid_right", "parotid_left") if masks[name].any())
    return Regions(box(thyroid, 10.0), parotids, flat)
