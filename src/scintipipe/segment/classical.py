"""Classical (training-free) segmentation of an anterior neck scintigram.

The method, in the order it runs (all sizes in mm, converted with the pixel spacing):

1. Smooth the counts (Gaussian, sigma 3 mm) and take a white top-hat with a 45 mm disc:
   what is left are structures narrower than the disc above the body background
   (thyroid lobes, salivary glands, mouth, nodules).
2. Threshold the top-hat and label connected components. The thyroid is the lowest
   significant structure close to the body midline and at least 12 mm wide somewhere
   (everything the neck holds above it is salivary glands and mouth; the oesophagus
   below it is thinner); lobes that came apart join it when they sit at the same height
   within 45 mm of the midline.
3. Refine the gland with OpenCV GrabCut seeded from that component (sure foreground above
   70 % of the gland's median level, probable foreground above 40 %, sure background
   beyond a 15 mm margin), as in the remnant study's preprocessing.
4. Split the gland at the column of least counts between the lobes' peaks (image left is
   the patient's right on an anterior view); the isthmus is the band around that column.
5. Nodules: hot candidates are spots above twice their lobe's median level; cold ones
   are holes and notches (inside the lobe's convex hull) the gland leaves.
6. Salivary glands: top-hat components above the thyroid and off the midline.
7. Background: a ring 5-15 mm from the gland, lateral and inferior to it (never towards
   the salivary glands), free of any other structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from scintipipe.transforms.unknown_scale import DEFAULT_FOV_MM

#: names of the regions :func:`segment_neck` returns, in display order
ROI_NAMES = (
    "thyroid_right",
    "thyroid_left",
    "isthmus",
    "nodules_hot",
    "nodules_cold",
    "salivary_right",
    "salivary_left",
    "background",
)

SMOOTH_MM = 3.0
TOPHAT_MM = 45.0
MIN_STRUCTURE_MM2 = 40.0
MIDLINE_MM = 30.0
GLAND_HALF_WIDTH_MM = 45.0
GRABCUT_MARGIN_MM = 15.0
GRABCUT_SEED = 12345
OPENING_MM = 3.0
SEED_FRACTION = 0.2
MIN_WIDTH_MM = 12.0
ISTHMUS_HALF_WIDTH_MM = 5.0
HOT_NODULE_FACTOR = 2.0
MIN_NODULE_MM2 = 30.0
SALIVARY_REACH_MM = 150.0
BACKGROUND_RING_MM = (5.0, 15.0)


@dataclass
class NeckImage:
    """A scan with the derived images every step needs.

    Attributes:
        counts: the counts, float.
        spacing: pixel spacing ``(row, column)`` in mm.
        smooth: Gaussian-smoothed counts.
        tophat: structures narrower than :data:`TOPHAT_MM` above the background.
        midline: column of the body midline.
    """

    counts: np.ndarray
    spacing: tuple[float, float]
    smooth: np.ndarray
    tophat: np.ndarray
    midline: float

    @property
    def pixel_area_mm2(self) -> float:
        """Area of one pixel."""
        return self.spacing[0] * self.spacing[1]

    def px(self, mm: float, axis: int = 1) -> float:
        """Millimetres to pixels along ``axis`` (0 rows, 1 columns)."""
        return mm / self.spacing[axis]

    def disc(self, diameter_mm: float) -> np.ndarray:
        """An elliptical structuring element of the given physical diameter."""
        size = (max(3, int(round(self.px(diameter_mm, 1))) | 1), max(3, int(round(self.px(diameter_mm, 0))) | 1))
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, size)


def prepare(counts: np.ndarray, spacing: tuple[float, float] | None) -> NeckImage:
    """Smooth, top-hat and find the midline of a scan.

    Args:
        counts: 2-D counts.
        spacing: pixel spacing ``(row, column)`` in mm; ``None`` assumes a 280 mm field of view.
    """
    counts = np.asarray(counts, dtype=np.float32)
    if spacing is None:
        spacing = (DEFAULT_FOV_MM / counts.shape[0], DEFAULT_FOV_MM / counts.shape[1])
    spacing = (float(spacing[0]), float(spacing[1]))
    smooth = ndimage.gaussian_filter(counts, (SMOOTH_MM / spacing[0], SMOOTH_MM / spacing[1]))
    image = NeckImage(counts, spacing, smooth, np.zeros_like(smooth), 0.0)
    opened = cv2.morphologyEx(smooth, cv2.MORPH_OPEN, image.disc(TOPHAT_MM))
    image.tophat = np.clip(smooth - opened, 0, None)
    image.midline = body_midline(smooth)
    return image


def body_midline(smooth: np.ndarray) -> float:
    """Column of the body midline: the centre of the body outline, averaged over rows."""
    body = smooth > 0.25 * np.percentile(smooth, 99)
    rows = [np.nonzero(row)[0] for row in body if row.any()]
    if not rows:
        return smooth.shape[1] / 2
    centres = [(cols[0] + cols[-1]) / 2 for cols in rows]
    return float(np.median(centres))


def components(mask: np.ndarray, image: NeckImage, min_mm2: float = MIN_STRUCTURE_MM2) -> list[np.ndarray]:
    """Connected components of ``mask`` at least ``min_mm2`` large, as boolean masks."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = []
    for label in range(1, n):
        part = labels == label
        if part.sum() * image.pixel_area_mm2 >= min_mm2:
            out.append(part)
    return out


def structure_mask(image: NeckImage, fraction: float = 0.2) -> np.ndarray:
    """Pixels of significant top-hat structures: above ``fraction`` of the neck's peak and
    above the Poisson noise of the smoothed background."""
    noise = np.sqrt(np.clip(image.smooth - image.tophat, 1.0, None)) / (2 * np.sqrt(np.pi) * SMOOTH_MM / np.mean(image.spacing))
    return (image.tophat > fraction * image.tophat.max()) & (image.tophat > 4 * noise)


def find_thyroid_seed(image: NeckImage) -> np.ndarray:
    """The component(s) the thyroid starts from: the lowest structure near the midline,
    with any structure beside it at the same height (the other lobe).

    Only structures at least :data:`MIN_WIDTH_MM` wide somewhere can be the lowest, so
    the oesophagus (a thin vertical line below the gland) does not pass for a thyroid.

    Returns:
        A boolean mask, empty when no structure is near the midline.
    """
    structures = structure_mask(image, SEED_FRACTION)
    wide = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(round(image.px(MIN_WIDTH_MM)))), 1))
    broad = cv2.morphologyEx(structures.astype(np.uint8), cv2.MORPH_OPEN, wide).astype(bool)
    parts = components(structures, image)
    near = [p for p in components(broad, image) if abs(_centroid(p)[1] - image.midline) <= image.px(MIDLINE_MM) or _spans(p, image.midline)]
    if not near:
        return np.zeros(image.counts.shape, bool)
    lowest_broad = max(near, key=lambda p: _centroid(p)[0])
    lowest = next(p for p in parts if (p & lowest_broad).any())
    half = image.px(GLAND_HALF_WIDTH_MM)
    top, bottom = _row_range(lowest)
    seed = lowest.copy()
    for part in parts:
        if part is lowest:
            continue
        ptop, pbottom = _row_range(part)
        cols = np.nonzero(part.any(axis=0))[0]
        beside = abs(cols.mean() - image.midline) <= half and min(bottom, pbottom) - max(top, ptop) > 0.3 * min(bottom - top, pbottom - ptop)
        if beside:
            seed |= part
    return seed


def gland_level(image: NeckImage, seed: np.ndarray) -> float:
    """Top-hat level of the gland's parenchyma: the median over the structure around
    ``seed`` (a hot nodule raises the peak but hardly the median)."""
    window = cv2.dilate(seed.astype(np.uint8), image.disc(2 * GRABCUT_MARGIN_MM)).astype(bool)
    values = image.tophat[window]
    return float(np.median(values[values > 0.1 * values.max()]))


def grabcut_gland(image: NeckImage, seed: np.ndarray) -> np.ndarray:
    """Refine the gland around ``seed`` with GrabCut on the windowed top-hat."""
    if not seed.any():
        return seed
    level = gland_level(image, seed)
    if level <= 0:
        return seed
    relative = image.tophat / level
    window = cv2.dilate(seed.astype(np.uint8), image.disc(2 * GRABCUT_MARGIN_MM)).astype(bool)
    mask = np.full(seed.shape, cv2.GC_BGD, np.uint8)
    mask[window] = cv2.GC_PR_BGD
    mask[window & (relative > 0.4)] = cv2.GC_PR_FGD
    mask[window & (relative > 0.7)] = cv2.GC_FGD
    if not (mask == cv2.GC_FGD).any():
        mask[seed] = cv2.GC_FGD
    display = np.clip(255 * relative / 2.0, 0, 255).astype(np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut initialises its colour models with OpenCV's per-thread random generator, which
    # carries on from call to call: seed it so a scan always gets the same regions.
    cv2.setRNGSeed(GRABCUT_SEED)
    try:
        cv2.grabCut(cv2.merge([display] * 3), mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]  # OpenCV's stub wants a rect; GC_INIT_WITH_MASK takes None
    except cv2.error:
        return seed
    gland = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    gland = cv2.morphologyEx(gland.astype(np.uint8), cv2.MORPH_OPEN, image.disc(OPENING_MM)).astype(bool)
    kept = [p for p in components(gland, image, MIN_NODULE_MM2) if (p & seed).any()]
    return np.logical_or.reduce(kept) if kept else seed


def split_lobes(image: NeckImage, gland: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right lobe, left lobe and isthmus of ``gland`` (right = image left, anterior view).

    The split is the column of least counts between the two lobes' peaks when the
    profile has a real valley there (below 70 % of the lower peak), else the midline.
    The isthmus is the gland within a narrow band around the split, in the rows where the
    gland bridges from one lobe to the other.
    """
    empty = np.zeros_like(gland)
    if not gland.any():
        return empty, empty, empty
    profile = np.where(gland, image.smooth, 0).sum(axis=0)
    cols = np.nonzero(profile)[0]
    middle = int(round(np.clip(image.midline, cols[0], cols[-1])))
    right_peak = cols[0] + int(np.argmax(profile[cols[0] : middle + 1]))
    left_peak = middle + int(np.argmax(profile[middle : cols[-1] + 1]))
    split, two_lobes = middle, False
    if left_peak - right_peak > image.px(10.0):
        valley = right_peak + int(np.argmin(profile[right_peak : left_peak + 1]))
        if profile[valley] < 0.7 * min(profile[right_peak], profile[left_peak]):
            split, two_lobes = valley, True
    if not two_lobes:  # one hump: a single visible lobe (or a nodule) goes to its side
        peak = int(np.argmax(profile))
        if abs(peak - image.midline) > image.px(8.0):
            split = cols[-1] + 1 if peak < image.midline else cols[0]
    columns = np.arange(gland.shape[1])[None, :]
    half = image.px(ISTHMUS_HALF_WIDTH_MM)
    isthmus = empty
    if two_lobes:
        band = np.abs(columns - split) <= half
        beside_right = gland & (columns < split - half)
        beside_left = gland & (columns > split + half)
        bridges = gland[:, split] & beside_right.any(axis=1) & beside_left.any(axis=1)
        isthmus = gland & band & bridges[:, None]
        isthmus = cv2.morphologyEx(isthmus.astype(np.uint8), cv2.MORPH_CLOSE, image.disc(4.0)).astype(bool) & gland & band
    right = gland & (columns < split) & ~isthmus
    left = gland & (columns >= split) & ~isthmus
    return right, left, isthmus


def hot_nodules(image: NeckImage, lobes: list[np.ndarray]) -> np.ndarray:
    """Hot-nodule candidates: spots above :data:`HOT_NODULE_FACTOR` times their lobe's
    median level and smaller than half the lobe, each grown to a quarter of its height
    above that level (the blurred edge of a projected sphere).

    A small, compact lobe much hotter than its partner can pass this test with its own
    centre (the real Siemens scan's left lobe does): treat the result as a candidate for
    the reader, not a diagnosis.
    """
    hot = np.zeros(image.counts.shape, bool)
    for lobe in lobes:
        if not lobe.any():
            continue
        parenchyma = float(np.median(image.smooth[lobe]))
        for part in components(lobe & (image.smooth > HOT_NODULE_FACTOR * parenchyma), image, MIN_NODULE_MM2):
            peak = float(image.smooth[part].max())
            grown = lobe & (image.smooth > parenchyma + 0.25 * (peak - parenchyma))
            spot = next((p for p in _labelled(grown) if (p & part).any()), part)
            if spot.sum() < 0.5 * lobe.sum():
                hot |= spot
    return hot


def cold_nodules(image: NeckImage, lobes: list[np.ndarray]) -> np.ndarray:
    """Holes and notches each lobe leaves inside its convex hull, where counts are low."""
    cold = np.zeros(image.counts.shape, bool)
    for lobe in lobes:
        if not lobe.any():
            continue
        level = np.median(image.smooth[lobe])
        contours, _ = cv2.findContours(lobe.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = np.zeros(lobe.shape, np.uint8)
        cv2.fillPoly(hull, [cv2.convexHull(np.vstack(contours))], 1)
        inner = cv2.erode(hull, image.disc(4.0)).astype(bool)
        cold |= inner & ~lobe & (image.smooth < 0.6 * level)
    parts = components(cold, image, MIN_NODULE_MM2)
    return np.logical_or.reduce(parts) if parts else cold


def salivary_glands(image: NeckImage, gland: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and left salivary glands (parotid and submandibular): structures above the
    thyroid and off the midline, each cut at 40 % of its own peak."""
    empty = np.zeros(image.counts.shape, bool)
    rows = np.arange(image.counts.shape[0])[:, None]
    columns = np.arange(image.counts.shape[1])[None, :]
    top = _row_range(gland)[0] if gland.any() else image.counts.shape[0]
    region = (rows < top - image.px(5.0, 0)) & (rows > top - image.px(SALIVARY_REACH_MM, 0))
    region = region & (np.abs(columns - image.midline) > image.px(18.0))  # not the mouth
    tophat = np.where(region, image.tophat, 0)
    if tophat.max() <= 0:
        return empty, empty
    candidate = (tophat > 0.15 * tophat.max()) & structure_mask(image, 0.0)
    right, left = empty.copy(), empty.copy()
    for part in components(candidate, image, 2 * MIN_STRUCTURE_MM2):
        core = part & (tophat > 0.4 * tophat[part].max())
        if _centroid(part)[1] < image.midline:
            right |= core
        else:
            left |= core
    return right, left


def ring(image: NeckImage, region: np.ndarray, inner_mm: float, outer_mm: float) -> np.ndarray:
    """Pixels between ``inner_mm`` and ``outer_mm`` from ``region``."""
    outer = cv2.dilate(region.astype(np.uint8), image.disc(2 * outer_mm)).astype(bool)
    inner = cv2.dilate(region.astype(np.uint8), image.disc(2 * inner_mm)).astype(bool)
    return outer & ~inner


def background_region(image: NeckImage, gland: np.ndarray, others: np.ndarray) -> np.ndarray:
    """A ring lateral and inferior to the gland, away from every other structure."""
    if not gland.any():
        return np.zeros_like(gland)
    rows = np.arange(gland.shape[0])[:, None]
    centre_row = _centroid(gland)[0]
    busy = cv2.dilate((others | structure_mask(image)).astype(np.uint8), image.disc(6.0)).astype(bool)
    band = ring(image, gland, *BACKGROUND_RING_MM) & (rows >= centre_row)
    free = band & ~busy
    return free if free.sum() >= 0.25 * band.sum() else band


def segment_neck(counts: np.ndarray, spacing: tuple[float, float] | None) -> dict[str, np.ndarray]:
    """Segment the thyroid, its nodules, the salivary glands and a background region.

    Args:
        counts: 2-D counts of an anterior neck view (rows head to feet).
        spacing: pixel spacing ``(row, column)`` in mm, ``None`` when unknown.

    Returns:
        ``{name: bool array}`` for every name in :data:`ROI_NAMES` (empty when absent).
        The lobes include the nodules inside them.
    """
    image = prepare(counts, spacing)
    gland = grabcut_gland(image, find_thyroid_seed(image))
    right, left, isthmus = split_lobes(image, gland)
    cold = cold_nodules(image, [right, left])
    right, left = _with_nodules(right, cold), _with_nodules(left, cold)
    gland = right | left | isthmus
    salivary_right, salivary_left = salivary_glands(image, gland)
    rois = {
        "thyroid_right": right,
        "thyroid_left": left,
        "isthmus": isthmus,
        "nodules_hot": hot_nodules(image, [right, left, isthmus]),
        "nodules_cold": cold,
        "salivary_right": salivary_right,
        "salivary_left": salivary_left,
    }
    rois["background"] = background_region(image, gland, salivary_right | salivary_left)
    return rois


def _with_nodules(lobe: np.ndarray, cold: np.ndarray) -> np.ndarray:
    if not lobe.any():
        return lobe
    touching = [p for p in _labelled(cold) if (cv2.dilate(p.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & lobe).any()]
    return lobe | np.logical_or.reduce(touching) if touching else lobe


def _labelled(mask: np.ndarray) -> list[np.ndarray]:
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n)]


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(rows.mean()), float(cols.mean())


def _row_range(mask: np.ndarray) -> tuple[int, int]:
    rows = np.nonzero(mask.any(axis=1))[0]
    return int(rows[0]), int(rows[-1])


def _spans(mask: np.ndarray, column: float) -> bool:
    cols = np.nonzero(mask.any(axis=0))[0]
    return bool(cols[0] <= column <= cols[-1])
