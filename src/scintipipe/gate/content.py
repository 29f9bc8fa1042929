"""The gate's ``content`` layer: what the pixels show, before any network sees them.

A planar thyroid scintigram is a picture of a patient's neck: a gland (or what is left of
it) in soft tissue that also holds activity (blood pool, salivary glands), with the body's
outline against air. :func:`content_refusal` recognises five kinds of input that are not:

**Syringe, vial or point source** (*skipped*, ``kind="syringe"``; counts images only)
    A syringe or vial imaged in air, or a point source or marker alone, puts nearly all of
    its counts in one compact object; around it there is only the object's own scatter and
    collimator tail and the room background, a tiny fraction of the object's peak. A neck
    always has soft-tissue background: body activity that, relative to the hottest pixel,
    stays well above that level even when one hot nodule suppresses the rest of the gland
    (toxic adenoma), and that holds a large share of the counts when, as after a
    thyroidectomy, the hottest things are small remnant foci. The rule therefore asks for
    all three of:

    - one compact object: the connected region above :data:`OBJECT_LEVEL` of the (smoothed)
      peak that holds the peak is at most :data:`MAX_OBJECT_MM` long (a 10-20 ml syringe's
      liquid column plus the camera's blur) and spans at most :data:`MAX_OBJECT_SPAN_FRACTION`
      of the image's longer side (a syringe has air around it; a neck can fill a pinhole's
      small field), or at most :data:`MAX_OBJECT_FRACTION` of it without a pixel spacing;
    - at most :data:`MAX_OUTSIDE_SHARE` of the counts outside it (beyond a margin of
      :data:`OBJECT_MARGIN_PX` analysis pixels for the blur);
    - the surroundings' :data:`SURROUNDINGS_PERCENTILE`-th percentile below
      :data:`MAX_SURROUNDINGS_LEVEL` of the peak.

    These images are not wrong, only not for classification: they are listed as skipped
    with the reason ``"syringe or point source"`` and offered for the thyroid uptake.

**Flood or uniformity image** (*skipped*, ``kind="flood"``; counts images only)
    A flood fills the detector's field of view with counts uniform to a few per cent
    (NEMA integral uniformity of a working camera is about 2-5 %). The rule asks for the
    pixels above half the typical (median lit) level, with the holes they enclose, to
    cover at least :data:`FLOOD_MIN_COVERAGE` of the image (a rectangular detector in a
    square matrix covers about 0.73, a round one 0.79), and, after smoothing and away
    from the region's edge, at most :data:`FLOOD_MAX_OUTLIERS` of the pixels lie
    more than :data:`FLOOD_TOLERANCE` from the typical level. A neck view fills its frame
    with body but never uniformly: gland, salivary glands, the neck's outline and air.

**Photograph or colour picture** (*refused*; display pictures only)
    Any rendering of a scintigram through a colour lookup table puts every pixel on that
    table's curve of colours; only thin burned-in annotation and the mixtures JPEG and
    noise make between neighbouring colours fall off it, a pixel here and there. A
    photograph's colours fill whole regions off every table the loader knows. A colour
    picture is refused when at least :data:`PHOTO_MIN_OFF_TABLE_REGIONS` of it lies in
    such regions (``meta["picture"]["off_table_region_share"]``, measured by
    :func:`scintipipe.loaders.display.colour_statistics`). A scintigram shown through a
    table the loader does not know is refused with it: it cannot be turned back into
    intensity either, and ``--accept-ood`` classifies it anyway on its luminance.

**Blank picture** (*refused*; pictures that are not counts, DICOM Secondary Captures included)
    A picture in which at least :data:`BLANK_MIN_SHARE` of the pixels have one and the same
    shade, and that shade lies in the upper half of the picture's range, shows a plain
    light field with a few marks: no scintigram. (A scintigram's commonest shade is its dark
    background; in 1,000 simulated display exports the largest share of one bright shade
    was 0.78, in a hot gland saturated by the window.) This rule was added after the
    whole-gate benchmark showed pydicom's colour Secondary Capture test images, 98 % one
    light grey, passing the disease bundle's learned score.

**Text, chart or screenshot** (*refused*; display pictures only)
    Counts are never drawn as typeset lines of text or as long, thin, straight rules.
    A picture is refused when it shows at least :data:`TEXT_MIN_LINES` lines of ink at
    one pitch and height (a page or a screenshot of text; a scintigram export carries a
    few annotation lines per corner at most), or at least :data:`LINE_ART_MIN_LINES`
    horizontal *and* as many vertical thin straight lines across most of the picture,
    away from its edges, on a flat background covering :data:`LINE_ART_MIN_FLAT_SHARE`
    of it (chart axes, table rules). ``meta["picture"]`` carries the measurements
    (:func:`scintipipe.loaders.display.layout_statistics`): restoring a display picture
    inverts a black-on-white page and inpaints its letters, so they are taken from the
    picture as read. A histogram with few grey levels alone is *not* a reason: a
    low-count scintigram exported through a steep window has few levels too.

The two physics rules need counts (``meta["is_counts"]`` true, as for NM Image Storage):
a display export may clip the body background to black with its window, which makes a
toxic adenoma look like a point source on nothing, so display pictures are never skipped
as syringes or floods (the learned ``ood`` layer judges them). The two picture rules need
the loader's measurements of an 8-bit picture and are silent without them.

Every threshold was chosen from the physics above and from simulated data (the
randomised training simulations and generated syringes, floods, photographs and text),
never from the real images in ``../shared/reference-scans``, which only validate them.
The whole layer costs about a millisecond per view: counts images are block-summed to at
most :data:`ANALYSIS_SIDE` pixels a side first, and the picture rules only read metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scintipipe.gate.refusal import Refusal
from scintipipe.order_statistics import kth_smallest

LAYER = "content"

#: counts images are block-summed (counts kept) to at most this many pixels a side
ANALYSIS_SIDE = 128
#: Gaussian smoothing (analysis pixels) against counting noise for the object search: about
#: one 256-matrix pixel pair, below the camera's blur
SMOOTH_SIGMA_PX = 1.0

#: syringe: the object is the connected region above this fraction of the smoothed peak
#: holding the peak (5 %: the camera's blur adds about one FWHM each side, scatter less)
OBJECT_LEVEL = 0.05
#: ... grown by this many analysis pixels (about 5 mm at 2.4 mm) for the blur's wings
OBJECT_MARGIN_PX = 2
#: ... at most this long (mm): a 10-20 ml syringe's liquid column (<= 80 mm) or a vial plus
#: the blur (about 10 mm FWHM at 10 cm, each side)
MAX_OBJECT_MM = 120.0
#: ... or at most this fraction of the image side when the pixel spacing is unknown
MAX_OBJECT_FRACTION = 0.4
#: ... and, with a spacing, at most this fraction of the image's longer side: a syringe or
#: vial is imaged with air around it (the simulated syringes span at most 0.2). An object
#: that spans the field is a body: in a pinhole view's 12-16 cm circle a neck fills the
#: field, and with a faint gland (thyroiditis) a marker source can be the peak, its 5 %
#: region the whole neck, and the dead corners outside the circle "quiet surroundings".
MAX_OBJECT_SPAN_FRACTION = 0.75
#: ... with at most this share of the counts outside it. In air, scatter in the syringe,
#: collimator penetration and the room background hold a few per cent (up to a few tens
#: with 123I's high-energy photons or imaging through the table); a neck after
#: thyroidectomy keeps most counts in the body (>= 0.48 in the simulated 131I remnant scans)
MAX_OUTSIDE_SHARE = 1.0 / 3.0
#: ... and its surroundings this quiet: the given percentile of the smoothed counts outside
#: the object, relative to the peak. A scatter tail in air stays below about 0.1 % of the
#: peak a few cm away (<= 0.1 % in the simulated syringes; a room background of 0.1-0.2
#: counts per pixel under an empty syringe, or a broad 15-30 % scatter halo in a small
#: field, can reach 0.3-1.7 %, and those are left to the other layers); soft tissue around a gland or nodule
#: stays above about 0.6 % (>= 0.63 % in 5,000 simulated uptake4 and disease training
#: scans with a compact hottest object, toxic adenomas included). Half the quietest neck:
#: a toxic adenoma must never be skipped; a syringe that is not falls to the other layers
MAX_SURROUNDINGS_LEVEL = 0.003
SURROUNDINGS_PERCENTILE = 90

#: flood: smoothing (analysis pixels) before judging uniformity; leaves a 1-Mcount flood on
#: a 128 grid with about 3 % noise
FLOOD_SMOOTH_SIGMA_PX = 1.5
#: ... the region at least half the typical level covers at least this share of the image
FLOOD_MIN_COVERAGE = 0.6
#: ... and in it at most FLOOD_MAX_OUTLIERS of the pixels deviate more than FLOOD_TOLERANCE
#: from the typical level (a dead tube or edge packing stay below; simulated neck views
#: that fill their frame have >= 10 % of their pixels out of it)
FLOOD_TOLERANCE = 0.25
FLOOD_MAX_OUTLIERS = 0.05

#: photograph: share of the picture in regions of colours on no known table (3x3 grid
#: points or more). Known-table exports of simulated scans stay below 0.05 even with
#: annotation, noise and JPEG at quality 50; a colour legend bar covers a few per cent;
#: photographs are mostly off-table (grace_hopper.jpg 0.40)
PHOTO_MIN_OFF_TABLE_REGIONS = 0.15

#: text: regular lines of ink (simulated exports with burned-in annotation make <= 5)
TEXT_MIN_LINES = 8
#: line art: thin straight lines in each direction (the two axes of a chart, a table's
#: rules, a window's panes; no simulated export has two of each) ...
LINE_ART_MIN_LINES = 2
#: ... on a flat background covering at least this share of the picture
LINE_ART_MIN_FLAT_SHARE = 0.4

#: blank picture: at least this share of the pixels has one shade ...
BLANK_MIN_SHARE = 0.95
#: ... which lies at least this far up the picture's range (0 darkest, 1 brightest)
BLANK_MIN_LEVEL = 0.5

SYRINGE_REASON = "syringe or point source"
FLOOD_REASON = "flood or uniformity image"
PHOTO_REASON = "a colour photograph or picture, not a scintigram"
TEXT_REASON = "text or line art (lines of text or a chart), not a scintigram"


@dataclass(frozen=True)
class CountsFindings:
    """What :func:`measure_counts` found in a counts image.

    Attributes:
        object_extent_mm: length of the hottest compact object (``None`` without spacing).
        object_extent_fraction: the same as a fraction of the image's longer side.
        outside_share: share of the counts outside the object and its margin.
        surroundings_level: the surroundings' high percentile over the peak.
        flood_coverage: share of the image at least half the typical level, holes filled.
        flood_outliers: share of that region more than :data:`FLOOD_TOLERANCE` off level
            (1.0, unmeasured, when the region covers less than :data:`FLOOD_MIN_COVERAGE`).
    """

    object_extent_mm: float | None
    object_extent_fraction: float
    outside_share: float
    surroundings_level: float
    flood_coverage: float
    flood_outliers: float

    @property
    def compact(self) -> bool:
        """The hottest object is small enough to be a syringe, vial or point source."""
        if self.object_extent_mm is not None:
            return self.object_extent_mm <= MAX_OBJECT_MM and self.object_extent_fraction <= MAX_OBJECT_SPAN_FRACTION
        return self.object_extent_fraction <= MAX_OBJECT_FRACTION

    @property
    def syringe(self) -> bool:
        """One compact object holds nearly all counts and its surroundings are quiet."""
        return self.compact and self.outside_share <= MAX_OUTSIDE_SHARE and self.surroundings_level <= MAX_SURROUNDINGS_LEVEL

    @property
    def flood(self) -> bool:
        """A near-uniform field fills most of the image."""
        return self.flood_coverage >= FLOOD_MIN_COVERAGE and self.flood_outliers <= FLOOD_MAX_OUTLIERS


def content_refusal(pixels: np.ndarray, meta: dict[str, Any]) -> Refusal | None:
    """The ``content`` layer's answer for one view.

    Args:
        pixels: the view's 2-D pixels (counts, or display intensity for pictures).
        meta: the view's metadata (``scan["image"].meta``): ``is_counts`` and ``spacing``
            for counts images, ``picture`` for display pictures.

    Returns:
        ``None`` to let the view through; a skip (``kind`` ``"syringe"`` or ``"flood"``)
        for syringe, point-source and flood images; a refusal for photographs and text.

    Example:
        >>> flood = np.random.default_rng(0).poisson(200.0, (128, 128)).astype(np.float32)
        >>> content_refusal(flood, {"is_counts": True, "spacing": (4.0, 4.0)}).kind
        'flood'
    """
    if meta.get("is_counts") is True:
        findings = measure_counts(pixels, meta.get("spacing"))
        if findings is not None and findings.syringe:
            return Refusal(LAYER, SYRINGE_REASON, skip=True, kind="syringe")
        if findings is not None and findings.flood:
            return Refusal(LAYER, FLOOD_REASON, skip=True, kind="flood")
    if meta.get("is_counts") is not True:
        blank = blank_share(pixels)
        if blank is not None:
            return Refusal(LAYER, f"a blank picture ({blank:.0%} of it one light shade), not a scintigram")
    picture = meta.get("picture")
    if isinstance(picture, dict) and picture:
        return picture_refusal(picture)
    return None


def blank_share(pixels: np.ndarray) -> float | None:
    """The share of the commonest shade when it marks a blank light picture, else ``None``.

    Args:
        pixels: a display picture's intensity (counts images are judged by the flood rule).

    Example:
        >>> field = np.full((64, 64), 244.0)
        >>> field[10, 10] = 20.0
        >>> round(blank_share(field), 3)
        1.0
        >>> blank_share(np.arange(4096.0).reshape(64, 64)) is None
        True
    """
    step = max(1, max(pixels.shape) // ANALYSIS_SIDE)
    shades = np.rint(np.asarray(pixels)[::step, ::step])
    low, high = float(shades.min()), float(shades.max())
    if high <= low:
        return None
    values, counts = np.unique(shades, return_counts=True)
    commonest = int(counts.argmax())
    share = float(counts[commonest]) / shades.size
    level = (float(values[commonest]) - low) / (high - low)
    return share if share >= BLANK_MIN_SHARE and level >= BLANK_MIN_LEVEL else None


def picture_refusal(picture: dict[str, Any]) -> Refusal | None:
    """Refuse photographs and text or line art, from the loader's picture measurements.

    Args:
        picture: ``meta["picture"]`` (see :mod:`scintipipe.loaders.display`).

    Example:
        >>> picture_refusal({"flat_share": 0.8, "text_lines": 18, "long_lines": [0, 0]}).reason
        'text or line art (lines of text or a chart), not a scintigram: 18 regular lines of text'
    """
    regions = picture.get("off_table_region_share")
    if regions is not None and float(regions) >= PHOTO_MIN_OFF_TABLE_REGIONS:
        return Refusal(LAYER, f"{PHOTO_REASON} ({float(regions):.0%} of it in colours on no known scintigraphy colour table)")
    lines = int(picture.get("text_lines") or 0)
    if lines >= TEXT_MIN_LINES:
        return Refusal(LAYER, f"{TEXT_REASON}: {lines} regular lines of text")
    horizontal, vertical = (list(picture.get("long_lines") or []) + [0, 0])[:2]
    if min(int(horizontal), int(vertical)) >= LINE_ART_MIN_LINES and float(picture.get("flat_share") or 0.0) >= LINE_ART_MIN_FLAT_SHARE:
        return Refusal(LAYER, f"{TEXT_REASON}: {horizontal} horizontal and {vertical} vertical ruled lines on a flat background")
    return None


def block_sum(pixels: np.ndarray, side: int = ANALYSIS_SIDE) -> tuple[np.ndarray, int]:
    """Sum ``pixels`` in square blocks so the longer side is at most ``side`` (counts kept).

    Args:
        pixels: 2-D array.
        side: the largest side wanted.

    Returns:
        ``(float32 block sums, block size)``; edge rows and columns that do not fill a
        block are dropped.

    Example:
        >>> block_sum(np.ones((256, 200)))[0].shape, block_sum(np.ones((256, 200)))[1]
        ((128, 100), 2)
    """
    import cv2

    array = np.asarray(pixels, dtype=np.float32)
    factor = max(1, int(np.ceil(max(array.shape) / side)))
    if factor > 1:
        rows, cols = array.shape[0] // factor, array.shape[1] // factor
        # area averaging over whole blocks is the block mean; times the block area, the sum
        array = cv2.resize(np.ascontiguousarray(array[: rows * factor, : cols * factor]), (cols, rows), interpolation=cv2.INTER_AREA) * np.float32(
            factor * factor
        )
    return np.ascontiguousarray(array), factor


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region it encloses (not reachable from the border) filled.

    Example:
        >>> ring = np.zeros((7, 7), bool); ring[1:6, 1:6] = True; ring[3, 3] = False
        >>> bool(fill_holes(ring)[3, 3])
        True
    """
    import cv2

    padded = np.pad(mask.astype(np.uint8), 1)
    reach = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, reach, (0, 0), 2)
    return (padded != 2)[1:-1, 1:-1]


def measure_counts(pixels: np.ndarray, spacing: tuple[float, float] | None = None) -> CountsFindings | None:
    """Measure the hottest object, its surroundings and the field's uniformity.

    Args:
        pixels: 2-D counts (finite, as :func:`scintipipe.scan.make_scan` guarantees).
        spacing: pixel spacing in mm ``(row, column)``, or ``None``.

    Returns:
        The findings, or ``None`` for an image with no counts or too small to judge.
    """
    import cv2

    small, factor = block_sum(pixels)
    small = np.maximum(small, 0)  # a new array: block_sum returns a view of a float32 image of <= ANALYSIS_SIDE pixels
    total = float(small.sum(dtype=np.float64))
    if total <= 0 or min(small.shape) < 8:
        return None
    smooth = cv2.GaussianBlur(small, (0, 0), SMOOTH_SIGMA_PX)
    hottest = int(smooth.argmax())
    peak = float(smooth.flat[hottest])
    if peak <= 0:
        return None

    # the hottest compact object (the region above OBJECT_LEVEL of the peak holding it)
    above = (smooth >= OBJECT_LEVEL * peak).astype(np.uint8)
    seed = (hottest % smooth.shape[1], hottest // smooth.shape[1])
    reach = np.zeros((above.shape[0] + 2, above.shape[1] + 2), np.uint8)
    _, _, _, (_, _, width, height) = cv2.floodFill(above, reach, seed, 2, flags=8)
    size = 2 * OBJECT_MARGIN_PX + 1
    outside = cv2.dilate((above == 2).astype(np.uint8), np.ones((size, size), np.uint8)) == 0
    extent_mm = None
    if spacing is not None:
        extent_mm = float(max(height * factor * float(spacing[0]), width * factor * float(spacing[1])))
    around = smooth[outside]
    if around.size >= 16:
        outside_share = float(small[outside].sum(dtype=np.float64) / total)
        rank = int(SURROUNDINGS_PERCENTILE / 100 * (around.size - 1))
        surroundings = float(kth_smallest(around, rank) / peak)
    else:  # the object fills the image: nothing around it, nothing compact about it
        outside_share, surroundings = 0.0, 1.0

    # the field's uniformity
    field = cv2.GaussianBlur(small, (0, 0), FLOOD_SMOOTH_SIGMA_PX)
    values = field.ravel()
    top = float(kth_smallest(values, int(0.99 * (values.size - 1))))
    lit = values[values > 0.1 * top]
    coverage, outliers = 0.0, 1.0
    if lit.size:
        level = float(kth_smallest(lit, lit.size // 2))
        region = fill_holes(field >= 0.5 * level)
        coverage = float(region.mean())
        if coverage >= FLOOD_MIN_COVERAGE:  # only then does uniformity matter
            inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            if inner.sum() >= 16:
                outliers = float(np.mean(np.abs(field[inner] / level - 1.0) > FLOOD_TOLERANCE))
    return CountsFindings(extent_mm, max(height, width) / max(small.shape), outside_share, surroundings, coverage, outliers)
