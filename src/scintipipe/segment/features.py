"""Scale-free features of a segmented neck scan, for classifiers and realism checks.

:func:`scintipipe.segment.quantify` reports counts, areas in mm² and a few ratios. A
classifier that must work on DICOM counts *and* on 8-bit display exports (no counts, no
pixel spacing, any linear display scale) needs quantities that do not change when the
image is multiplied by a constant or resampled to another pixel size. This module derives
them from the same regions (:func:`scintipipe.segment.segment_neck` or any segmenter that
returns the same region names), without changing the segmenter.

Every feature is invariant to a linear intensity scale; none uses millimetres (sizes are
relative to the image, to the body outline or to other regions). Intensity statistics
inside the gland use the image smoothed with a Gaussian of :data:`SMOOTH_FRACTION` of the
image side (about 3 mm on a 280 mm field of view).

======================================  ==============================================
``thyroid_found``                       1 when a gland was found, else 0
``log_thyroid_to_salivary``             log of mean thyroid over mean salivary level
``log_thyroid_to_background``           log of mean thyroid over background level
``log_salivary_to_background``          log of mean salivary over background level
``log_thyroid_peak_to_salivary_peak``   log of the smoothed maxima's ratio
``thyroid_count_fraction``              share of the image's total in the thyroid
``thyroid_net_fraction``                the same, background subtracted
``thyroid_area_fraction``               thyroid pixels over image pixels
``thyroid_to_salivary_area``            thyroid pixels over salivary pixels
``gland_width_to_body``                 gland width over the body width at its rows
``gland_aspect``                        gland height over width
``log_left_right_ratio``                log of net left over net right lobe counts
``lobe_count_asymmetry``                absolute value of the previous
``lobe_area_asymmetry``                 absolute log of left over right lobe area
``lobe_level_asymmetry``                absolute log of the lobes' mean levels' ratio
``isthmus_fraction``                    isthmus share of the thyroid counts
``hot_nodules`` / ``cold_nodules``      candidates found
``hot_nodule_count_fraction``           hot-nodule share of the thyroid counts
``cold_nodule_area_fraction``           cold-defect share of the thyroid area
``thyroid_cv``                          coefficient of variation inside the gland
``thyroid_peak_to_median``              smoothed maximum over median inside the gland
``thyroid_skewness``                    skewness of the smoothed levels in the gland
``thyroid_upper_share``                 share of gland counts above its median level
======================================  ==============================================

A feature whose regions are missing (no salivary gland found, one lobe only) is left
out, as :func:`~scintipipe.segment.quantify` does; a classifier imputes it.
"""

from __future__ import annotations

import math
from itertools import pairwise

import cv2
import numpy as np
from scipy import ndimage

from scintipipe.segment.classical import body_midline

#: Gaussian smoothing for intensity statistics, as a fraction of the image side
SMOOTH_FRACTION = 3.0 / 280.0

#: every feature :func:`region_features` can return, in a fixed order
FEATURE_NAMES = (
    "thyroid_found",
    "log_thyroid_to_salivary",
    "log_thyroid_to_background",
    "log_salivary_to_background",
    "log_thyroid_peak_to_salivary_peak",
    "thyroid_count_fraction",
    "thyroid_net_fraction",
    "thyroid_area_fraction",
    "thyroid_to_salivary_area",
    "gland_width_to_body",
    "gland_aspect",
    "log_left_right_ratio",
    "lobe_count_asymmetry",
    "lobe_area_asymmetry",
    "lobe_level_asymmetry",
    "isthmus_fraction",
    "hot_nodules",
    "cold_nodules",
    "hot_nodule_count_fraction",
    "cold_nodule_area_fraction",
    "thyroid_cv",
    "thyroid_peak_to_median",
    "thyroid_skewness",
    "thyroid_upper_share",
)

_EPS = 1e-9


def smooth_image(image: np.ndarray) -> np.ndarray:
    """The image smoothed with a Gaussian of :data:`SMOOTH_FRACTION` of its side."""
    sigma = (max(0.5, SMOOTH_FRACTION * image.shape[0]), max(0.5, SMOOTH_FRACTION * image.shape[1]))
    return ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), sigma)


def _log_ratio(a: float, b: float) -> float | None:
    if a > _EPS and b > _EPS:
        return math.log(a / b)
    return None


def _parts(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1 if mask.any() else 0


def body_width_at(smooth: np.ndarray, rows: np.ndarray) -> float:
    """Median width (pixels) of the body outline over ``rows`` (pixels above a quarter of
    the 99th percentile, the outline :func:`~scintipipe.segment.classical.body_midline`
    uses)."""
    body = smooth > 0.25 * np.percentile(smooth, 99)
    widths = []
    for row in rows:
        cols = np.nonzero(body[row])[0]
        if cols.size:
            widths.append(cols[-1] - cols[0] + 1)
    return float(np.median(widths)) if widths else float(smooth.shape[1])


def region_features(image: np.ndarray, rois: dict[str, np.ndarray]) -> dict[str, float]:
    """Scale-free features of ``image`` from its regions.

    Args:
        image: the 2-D counts or display values the regions were found on.
        rois: ``{name: bool mask}`` with the names of
            :data:`scintipipe.segment.ROI_NAMES` (missing names count as empty).

    Returns:
        ``{name: float}`` for the names of :data:`FEATURE_NAMES` that are defined.

    Example:
        >>> import numpy as np
        >>> image = np.ones((64, 64)); image[40:50, 20:44] = 10.0
        >>> gland = np.zeros((64, 64), bool); gland[40:50, 20:44] = True
        >>> right, left = gland.copy(), gland.copy(); right[:, 32:] = False; left[:, :32] = False
        >>> background = np.zeros((64, 64), bool); background[55:60, 20:44] = True
        >>> features = region_features(image, {"thyroid_right": right, "thyroid_left": left, "background": background})
        >>> round(math.exp(features["log_thyroid_to_background"]), 1), features["lobe_count_asymmetry"]
        (10.0, 0.0)
    """
    image = np.asarray(image, dtype=np.float64)
    empty = np.zeros(image.shape, bool)
    right = rois.get("thyroid_right", empty)
    left = rois.get("thyroid_left", empty)
    isthmus = rois.get("isthmus", empty)
    thyroid = right | left | isthmus
    salivary = rois.get("salivary_right", empty) | rois.get("salivary_left", empty)
    background = rois.get("background", empty)
    hot = rois.get("nodules_hot", empty) & thyroid
    cold = rois.get("nodules_cold", empty)
    out: dict[str, float] = {"thyroid_found": float(thyroid.any())}
    out["hot_nodules"] = float(_parts(rois.get("nodules_hot", empty)))
    out["cold_nodules"] = float(_parts(cold))
    total = float(image.sum())
    if not thyroid.any() or total <= 0:
        return out
    smooth = smooth_image(image)
    level = float(image[thyroid].mean())
    bg = float(image[background].mean()) if background.any() else None
    sal = float(image[salivary].mean()) if salivary.any() else None

    def put(name: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            out[name] = float(value)

    put("log_thyroid_to_salivary", _log_ratio(level, sal) if sal is not None else None)
    put("log_thyroid_to_background", _log_ratio(level, bg) if bg is not None else None)
    put("log_salivary_to_background", _log_ratio(sal, bg) if sal is not None and bg is not None else None)
    if salivary.any():
        put("log_thyroid_peak_to_salivary_peak", _log_ratio(float(smooth[thyroid].max()), float(smooth[salivary].max())))
        put("thyroid_to_salivary_area", thyroid.sum() / salivary.sum())
    thyroid_counts = float(image[thyroid].sum())
    put("thyroid_count_fraction", thyroid_counts / total)
    net = thyroid_counts - (bg or 0.0) * thyroid.sum()
    put("thyroid_net_fraction", net / total)
    put("thyroid_area_fraction", thyroid.sum() / thyroid.size)
    rows = np.nonzero(thyroid.any(axis=1))[0]
    cols = np.nonzero(thyroid.any(axis=0))[0]
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    put("gland_aspect", height / width)
    put("gland_width_to_body", width / max(1.0, body_width_at(smooth, rows)))
    per_pixel = bg or 0.0
    net_right = float(image[right].sum() - per_pixel * right.sum())
    net_left = float(image[left].sum() - per_pixel * left.sum())
    if net_right > 0 and net_left > 0:
        put("log_left_right_ratio", math.log(net_left / net_right))
        put("lobe_count_asymmetry", abs(math.log(net_left / net_right)))
    if right.any() and left.any():
        put("lobe_area_asymmetry", abs(math.log(left.sum() / right.sum())))
        put("lobe_level_asymmetry", abs(_log_ratio(float(image[left].mean()), float(image[right].mean())) or 0.0))
    put("isthmus_fraction", float(image[isthmus].sum()) / thyroid_counts if thyroid_counts > 0 else None)
    put("hot_nodule_count_fraction", float(image[hot].sum()) / thyroid_counts if thyroid_counts > 0 else None)
    put("cold_nodule_area_fraction", (cold & thyroid).sum() / thyroid.sum())
    values = smooth[thyroid]
    mean, median = float(values.mean()), float(np.median(values))
    if mean > _EPS:
        put("thyroid_cv", float(values.std()) / mean)
    if median > _EPS:
        put("thyroid_peak_to_median", float(values.max()) / median)
    std = float(values.std())
    if std > _EPS:
        put("thyroid_skewness", float(np.mean(((values - mean) / std) ** 3)))
    gland_sum = float(values.sum())
    if gland_sum > _EPS:
        put("thyroid_upper_share", float(values[values > median].sum()) / gland_sum)
    return out


def scan_features(image: np.ndarray, spacing: tuple[float, float] | None = None, rois: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Segment ``image`` (unless ``rois`` are given) and return :func:`region_features`.

    Args:
        image: 2-D counts or display values.
        spacing: pixel spacing ``(row, column)`` in mm for the segmenter's sizes, ``None``
            when unknown (the segmenter then assumes a 280 mm field of view). The
            features themselves never use it.
        rois: regions found already (e.g. by the pipeline's segment stage).
    """
    if rois is None:
        from scintipipe.segment.classical import segment_neck

        rois = segment_neck(np.asarray(image, dtype=np.float32), spacing)
    return region_features(image, rois)


def radial_profile(image: np.ndarray, centre: tuple[float, float], radii: np.ndarray) -> np.ndarray:
    """Mean image value in rings around ``centre``, normalised to the innermost ring.

    Args:
        image: 2-D image.
        centre: ``(row, column)`` of the centre.
        radii: ring edges as fractions of the image side (increasing, first 0).

    Returns:
        One value per ring (``len(radii) - 1``); ``nan`` for rings outside the image.
    """
    rows, cols = np.indices(image.shape)
    distance = np.hypot(rows - centre[0], cols - centre[1]) / max(image.shape)
    means: list[float] = []
    for inner, outer in pairwise(radii):
        ring = (distance >= inner) & (distance < outer)
        means.append(float(image[ring].mean()) if ring.any() else float("nan"))
    values = np.asarray(means)
    return values / values[0] if values[0] > 0 else values


def noise_power_summary(image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> dict[str, float]:
    """Scale-free summary of the noise power spectrum of a region.

    The patch (``box`` = ``(row0, row1, col0, col1)``, default the whole image) is
    normalised by its mean, detrended by a smoothed copy (Gaussian of 3 % of the side) so
    anatomy is mostly removed, Hann-windowed, and its radially averaged power spectrum is
    summarised over normalised frequency (cycles per pixel, 0.5 at Nyquist).

    Returns:
        ``nps_slope`` (log-log slope over 0.05-0.45 cycles/pixel; 0 for white noise,
        negative for correlated noise or smoothing) and ``nps_high_to_low`` (mean power
        in 0.25-0.45 over 0.05-0.15 cycles/pixel; 1 for white noise).
    """
    r0, r1, c0, c1 = box or (0, image.shape[0], 0, image.shape[1])
    patch = np.asarray(image, dtype=np.float64)[r0:r1, c0:c1]
    if patch.size < 64 or patch.mean() <= 0:
        return {}
    patch = patch / patch.mean()
    residual = patch - ndimage.gaussian_filter(patch, 0.03 * max(patch.shape))
    window = np.outer(np.hanning(patch.shape[0]), np.hanning(patch.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(residual * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(patch.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(patch.shape[1]))[None, :]
    radius = np.hypot(fy, fx)
    edges = np.linspace(0.05, 0.45, 9)
    centres, values = [], []
    for low, high in pairwise(edges):
        ring = (radius >= low) & (radius < high)
        if ring.any() and power[ring].mean() > 0:
            centres.append((low + high) / 2)
            values.append(power[ring].mean())
    out: dict[str, float] = {}
    if len(values) >= 3:
        out["nps_slope"] = float(np.polyfit(np.log(centres), np.log(values), 1)[0])
    low_band = power[(radius >= 0.05) & (radius < 0.15)]
    high_band = power[(radius >= 0.25) & (radius < 0.45)]
    if low_band.size and high_band.size and low_band.mean() > 0:
        out["nps_high_to_low"] = float(high_band.mean() / low_band.mean())
    return out


def midline_column(image: np.ndarray) -> float:
    """Column of the body midline (the segmenter's rule) of a smoothed image."""
    return body_midline(smooth_image(image))
