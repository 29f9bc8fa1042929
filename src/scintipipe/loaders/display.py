"""Turn an 8-bit display picture back into an intensity image a model can read.

Display exports (screen grabs, figure crops, PNG/JPEG exports) are not counts: they may
show the scan through a colour lookup table, with an inverted grey scale (hot is dark),
and with burned-in text, R/L letters, ROI outlines and scale bars. :func:`restore_display`
undoes what it can recognise, conservatively, and says what it did in human-readable
notes (the raster loader stores them in ``scan["image"].meta["notes"]``):

1. **Colour lookup table.** Every pixel colour is matched to the nearest entry of each
   known table (:data:`scintipipe.loaders.grey.DISPLAY_LUTS`, and the grey ramp). The table
   that explains the picture best is accepted when most pixels lie close to it; the
   pixels then take the index of their nearest entry as intensity. Otherwise the luminance
   is used, as before.
2. **Inverted grey scale.** A normal scintigram display is mostly dark with a bright
   compact object, and its counting noise grows with brightness; an inverted one has a
   bright frame (at least as bright as the bulk) and bulk, no bright tail, and noise that
   shrinks with brightness. Only when all of them say "inverted" is it turned back.
3. **Burned-in annotation.** Pixels far from the chosen table (saturated colour on a grey
   picture, white text on a jet picture) and thin saturated white strokes (1-4 pixel lines
   that a morphological opening removes, with dark pixels beside them) are inpainted from
   their surroundings. Wide bright regions, such as a hot thyroid, are never touched.

Only 8-bit pictures are restored; 16-bit images (which may be counts) are only checked
for inversion, and colour ones keep their luminance, as do 8-bit colour pictures on no
known table (nothing else is done to them).

For 8-bit pictures :func:`restore_display` also measures the picture as it was read, for
the input gate's ``content`` layer (:mod:`scintipipe.gate.content`), which judges from
them whether it is a photograph or a page of text rather than a scintigram (restoration
would otherwise hide that: it inverts a black-on-white page and inpaints its letters as
burned-in annotation). The measurements go to ``scan["image"].meta["picture"]``:

``flat_share``
    share of the picture at its most common grey level (a flat background).
``text_lines``
    the most lines of ink, separated by empty rows, at a regular pitch and height, in the
    whole picture or one vertical third of it (:func:`text_lines`).
``long_lines``
    ``[horizontal, vertical]`` thin straight lines of ink spanning most of the picture,
    away from its edges: chart axes, table rules (:func:`long_lines`).
``closest_table``, ``off_table_share``, ``off_table_region_share``, ``saturation``
    colour pictures only: the colour table closest to the picture, the share of it farther
    than :data:`NEAR_DISTANCE` from that table, the share in off-table regions of 3x3
    grid points or more (not thin annotation strokes, not isolated noise or JPEG colour
    mixtures; pixels whose colour may be such a mixture, :func:`chroma_trusted`, never
    count as off), and the mean HSV saturation (:func:`colour_statistics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from scintipipe.loaders.grey import DISPLAY_LUTS, LUMA_WEIGHTS, lookup_table, to_grey

#: colour distance (YCbCr, 0-255 scale) within which a pixel counts as lying on a table
NEAR_DISTANCE = 24.0
#: distances are capped here when scoring tables, so overlays weigh like any far pixel
SCORE_CAP = 40.0
#: share of pixels that must lie on a table for it to be accepted
MIN_NEAR_SHARE = 0.8
#: a pixel farther than this from the accepted table is overlay (annotation)
OVERLAY_DISTANCE = 60.0
#: at most this many pixels are used to choose the table
SCORE_SAMPLE = 20_000
#: JPEG stores colour (chroma) at half the resolution of brightness and decoders blend
#: neighbouring chroma samples, so a pixel's colour is its own only where the brightness
#: around it is nearly flat. Where its 3x3 neighbourhood spans more than a quarter of the
#: 8-bit luminance range (single-pixel counting noise shown through a rainbow table, edges)
#: its colour may be a mixture of its neighbours' table colours, on no table; such pixels
#: neither choose the table nor count as off it. Photographs keep most of their colour
#: regions (smooth at the pixel scale)
CHROMA_TRUST_MAX_LUMA_RANGE = 64.0
#: fewer trusted pixels than this share of a picture, and all of its pixels are used
CHROMA_TRUST_MIN_SHARE = 0.05

#: thin-stroke detection: stroke pixels are at least this bright (0-255) ...
STROKE_MIN_VALUE = 200
#: ... and this much brighter than the morphological opening of the picture
STROKE_MIN_TOPHAT = 100
#: stroke edges (anti-aliasing, JPEG) join the stroke down to this top-hat value
STROKE_EDGE_TOPHAT = 40
#: connected stroke pieces smaller than this (pixels) are left alone (noise) ...
STROKE_MIN_AREA = 3
#: ... and so are pieces not longer than the opening kernel plus this (noise specks are
#: no longer than they are wide; letters and lines are)
STROKE_MIN_EXTRA_LENGTH = 3

#: picture statistics: colours are measured on a grid of at most this many points a side
#: (a 96x96 grid keeps the cost near 1/14 of choosing the table)
COLOUR_GRID = 96
#: a pixel is "ink" when its grey level differs from the most common one by more than this
#: (a quarter of the 8-bit range: text and line art drawn in any visible contrast)
INK_CONTRAST = 64
#: a row of a line of text holds at least this share of ink ...
TEXT_ROW_MIN_INK = 0.05
#: ... rows holding at most this share of ink separate lines ...
TEXT_GAP_MAX_INK = 0.002
#: ... lines are at least this many pixels tall (no smaller text can be read) ...
TEXT_MIN_LINE_PX = 6
#: ... and two consecutive lines are regular when their pitch and height lie within this
#: fraction of the medians (typeset text has one line spacing and one font size)
TEXT_REGULARITY = 0.25
#: a long straight line spans at least this share of the picture's width (or height), ...
LONG_LINE_SHARE = 0.6
#: ... is at most this many pixels thick, ...
LONG_LINE_MAX_PX = 5
#: ... lies at least this share of the side away from the edges (a frame does not count) ...
LONG_LINE_EDGE_MARGIN = 0.03
#: ... and is drawn on background: the row two pixels off one side or the other holds at
#: most this share of ink (a run of noise across a bright region has ink all round it)
LONG_LINE_MAX_NEIGHBOUR_INK = 0.2

#: inversion: the frame and the bulk (medians, 0-1) are at least this bright, the frame no
#: darker than the bulk, ...
INVERTED_MIN_BORDER = 0.5
INVERTED_MIN_MEDIAN = 0.5
#: ... the histogram has no bright tail (skewness at most this) ...
INVERTED_MAX_SKEW = 0.0
#: ... and the local noise falls with brightness (rank correlation at most this)
INVERTED_MAX_NOISE_TREND = -0.3


@dataclass
class RestoredDisplay:
    """What :func:`restore_display` made of a picture.

    Attributes:
        pixels: 2-D ``float32`` intensity (0-255 for 8-bit pictures).
        notes: one human-readable line per correction.
        lookup_table: the colour table mapped back, or ``None``.
        inverted: the grey scale was turned back.
        overlay_pixels: how many pixels were inpainted as annotation.
        picture: measurements of the picture as read, for the input gate (8-bit pictures
            only; see the module documentation).
    """

    pixels: np.ndarray
    notes: list[str] = field(default_factory=list)
    lookup_table: str | None = None
    inverted: bool = False
    overlay_pixels: int = 0
    picture: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """The scan metadata keys this restoration adds (``notes``, the findings, ``picture``)."""
        return {
            "notes": list(self.notes),
            "display_lookup_table": self.lookup_table,
            "display_inverted": self.inverted,
            "display_overlay_pixels": self.overlay_pixels,
            "picture": dict(self.picture),
        }


def restore_display(pixels: np.ndarray) -> RestoredDisplay:
    """Map a display picture back to intensity: colour table, inversion, annotation.

    Args:
        pixels: ``(H, W)`` grey or ``(H, W, 3|4)`` colour pixels as read from the file.

    Returns:
        The intensity image and notes; arrays that are neither are passed through for
        :func:`scintipipe.scan.make_scan` to judge.

    Example:
        >>> grey = np.zeros((64, 64), np.uint8); grey[20:40, 20:40] = 200
        >>> restored = restore_display(lookup_table("hot")[grey])
        >>> restored.lookup_table, float(restored.pixels[30, 30])
        ('hot', 200.0)
    """
    pixels = np.asarray(pixels)
    colour = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    if not (colour or pixels.ndim == 2):
        return RestoredDisplay(pixels)
    eight_bit = pixels.dtype == np.uint8
    result = RestoredDisplay(to_grey(pixels).astype(np.float32, copy=False))
    overlay = np.zeros(pixels.shape[:2], bool)
    if eight_bit:
        result.picture = layout_statistics(result.pixels)
    if colour and eight_bit:
        trusted = chroma_trusted(pixels[..., :3])
        match = match_table(pixels[..., :3], trusted)
        result.picture.update(colour_statistics(pixels[..., :3], match[0], trusted))
        result.pixels, overlay, result.lookup_table, note = colour_to_intensity(pixels[..., :3], match)
        if note:
            result.notes.append(note)
        if note and result.lookup_table is None:  # no known table: not a display we understand
            return result
    elif not colour and pixels.size and np.issubdtype(pixels.dtype, np.number):
        result.pixels = pixels.astype(np.float32, copy=False)
    else:
        return result
    full_scale = (0.0, 255.0) if eight_bit else (float(result.pixels.min()), float(result.pixels.max()))
    if looks_inverted(result.pixels, overlay, full_scale):
        result.pixels = (full_scale[0] + full_scale[1]) - result.pixels
        result.inverted = True
        result.notes.append("inverted grey scale (hot shown dark) turned back")
    if eight_bit:
        strokes = thin_bright_strokes(result.pixels, overlay)
        if overlay.any() or strokes.any():
            result.pixels, result.overlay_pixels = inpaint(result.pixels, overlay | strokes)
            result.notes.append(
                f"burned-in annotation removed: {int(overlay.sum())} coloured overlay and {int(strokes.sum())} thin white stroke pixels "
                f"inpainted ({result.overlay_pixels / overlay.size:.1%} of the picture)"
            )
    return result


#: RGB to JPEG's YCbCr (full range, no offsets): colour distances are measured there, where
#: JPEG keeps the luma and coarsens the chroma
YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)


@cache
def _table(name: str) -> np.ndarray:
    table = lookup_table(name).astype(np.float32) @ YCBCR.T
    table.setflags(write=False)
    return table


def nearest_entry(rgb: np.ndarray, name: str, chunk: int = 1 << 15) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest entry of table ``name`` for each colour.

    Args:
        rgb: ``(N, 3)`` colours 0-255.
        name: ``"gray"`` or a name of :data:`DISPLAY_LUTS`.
        chunk: colours per block (bounds the memory of the ``N x 256`` distances).

    Returns:
        ``(distance, index)``, distance in YCbCr units (0-255 scale).
    """
    table = _table(name)
    squared_table = (table * table).sum(axis=1)
    distance = np.empty(len(rgb), np.float32)
    index = np.empty(len(rgb), np.int64)
    for start in range(0, len(rgb), chunk):
        points = rgb[start : start + chunk].astype(np.float32) @ YCBCR.T
        squared = (points * points).sum(axis=1)[:, None] - 2 * points @ table.T + squared_table[None, :]
        best = squared.argmin(axis=1)
        index[start : start + chunk] = best
        distance[start : start + chunk] = np.sqrt(np.maximum(squared[np.arange(len(points)), best], 0))
    return distance, index


def chroma_trusted(rgb: np.ndarray) -> np.ndarray:
    """Which pixels of an 8-bit RGB picture show their own colour, not a JPEG mixture.

    A pixel is trusted where the luminance of its 3x3 neighbourhood spans at most
    :data:`CHROMA_TRUST_MAX_LUMA_RANGE`. When fewer than :data:`CHROMA_TRUST_MIN_SHARE` of
    the pixels are, every pixel is trusted (nothing better to go on).

    Args:
        rgb: ``(H, W, 3)`` ``uint8``.

    Returns:
        ``(H, W)`` boolean mask.

    Example:
        >>> speckle = np.zeros((8, 8, 3), np.uint8)
        >>> speckle[::2, ::2] = 255
        >>> flat = np.full((8, 8, 3), 90, np.uint8)
        >>> int(chroma_trusted(np.concatenate([speckle, flat], axis=1)).sum())
        56
    """
    import cv2

    luminance = np.ascontiguousarray(rgb[..., :3].astype(np.float32) @ np.asarray(LUMA_WEIGHTS, np.float32))
    window = np.ones((3, 3), np.uint8)
    trusted = (cv2.dilate(luminance, window) - cv2.erode(luminance, window)) <= CHROMA_TRUST_MAX_LUMA_RANGE
    return trusted if trusted.mean() >= CHROMA_TRUST_MIN_SHARE else np.ones(trusted.shape, bool)


def match_table(rgb: np.ndarray, trusted: np.ndarray | None = None) -> tuple[str, float]:
    """The colour table closest to an 8-bit RGB picture, and the share of it near that table.

    The table with the smallest mean (capped) colour distance over a sample of the
    pixels whose colour is their own (:func:`chroma_trusted`) wins.

    Args:
        rgb: ``(H, W, 3)`` ``uint8``.
        trusted: :func:`chroma_trusted`'s mask when the caller already has it.

    Returns:
        ``(table name, share of the sample within NEAR_DISTANCE of it)``; ``"gray"`` is the
        grey ramp.
    """
    trusted = chroma_trusted(rgb) if trusted is None else trusted
    step = max(1, rgb.shape[0] * rgb.shape[1] // SCORE_SAMPLE)
    sample = rgb.reshape(-1, 3)[::step][trusted.reshape(-1)[::step]]
    scores = {}
    for name in ("gray", *DISPLAY_LUTS):
        distance, _ = nearest_entry(sample, name)
        scores[name] = (float(np.minimum(distance, SCORE_CAP).mean()), float(np.mean(distance <= NEAR_DISTANCE)))
    best = min(scores, key=lambda name: scores[name][0])
    return best, scores[best][1]


def colour_to_intensity(rgb: np.ndarray, match: tuple[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, str | None, str | None]:
    """Find the colour table of an 8-bit RGB picture and map it back to intensity.

    The closest table (:func:`match_table`) is accepted when :data:`MIN_NEAR_SHARE` of the
    sample lies within :data:`NEAR_DISTANCE` of it.

    Args:
        rgb: ``(H, W, 3)`` ``uint8``.
        match: :func:`match_table`'s answer when the caller already has it.

    Returns:
        ``(intensity 0-255 float32, overlay mask, table name or None, note or None)``; the
        grey ramp gives the luminance and no note, no table at all the luminance and a note.
    """
    flat = rgb.reshape(-1, 3)
    best, near_share = match_table(rgb) if match is None else match
    luminance = (flat.astype(np.float64) @ LUMA_WEIGHTS).astype(np.float32).reshape(rgb.shape[:2])
    if near_share < MIN_NEAR_SHARE:
        note = f"colour picture on no known colour lookup table (closest '{best}', {near_share:.0%} of pixels near it): luminance used"
        return luminance, np.zeros(rgb.shape[:2], bool), None, note
    packed = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    unique, inverse = np.unique(packed, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    distance, index = nearest_entry(colours, best)
    inverse = inverse.reshape(rgb.shape[:2])
    overlay = (distance > OVERLAY_DISTANCE)[inverse]
    if best == "gray":
        return luminance, overlay, None, None
    note = f"colour lookup table '{best}' mapped back to intensity ({near_share:.0%} of pixels within {NEAR_DISTANCE:g} of it)"
    return index.astype(np.float32)[inverse], overlay, best, note


def colour_statistics(rgb: np.ndarray, table: str, trusted: np.ndarray | None = None) -> dict[str, Any]:
    """How far an 8-bit RGB picture's colours lie from the colour table closest to it.

    Any rendering of a scintigram (one number per pixel) through a colour table puts every
    pixel on that table's curve of colours; only burned-in annotation (thin strokes) and
    the mixtures JPEG and noise make between neighbouring colours fall off it; pixels
    whose colour may be such a mixture (:func:`chroma_trusted`) are not counted as off.
    A photograph's colours fill whole regions off every table. Measured on a grid
    of at most :data:`COLOUR_GRID` points a side; off-table points that survive a 3x3
    morphological opening of the grid form ``off_table_region_share``.

    Args:
        rgb: ``(H, W, 3)`` ``uint8``.
        table: the closest table (``"gray"`` or a name of :data:`DISPLAY_LUTS`).
        trusted: :func:`chroma_trusted`'s mask when the caller already has it.

    Returns:
        ``{"closest_table", "off_table_share", "off_table_region_share", "saturation"}``.

    Example:
        >>> grey = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
        >>> colour_statistics(lookup_table("hot")[grey], "hot")["off_table_region_share"]
        0.0
    """
    import cv2

    step = max(1, int(np.ceil(max(rgb.shape[:2]) / COLOUR_GRID)))
    grid = np.ascontiguousarray(rgb[::step, ::step, :3])
    flat = grid.reshape(-1, 3)
    out: dict[str, Any] = {"closest_table": table, "off_table_share": 0.0, "off_table_region_share": 0.0, "saturation": 0.0}
    if not flat.size:
        return out
    distance, _ = nearest_entry(flat, table)
    trusted = (chroma_trusted(rgb) if trusted is None else trusted)[::step, ::step]
    off = ((distance > NEAR_DISTANCE).reshape(grid.shape[:2]) & trusted).astype(np.uint8)
    regions = cv2.morphologyEx(off, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) if min(off.shape) >= 3 else np.zeros_like(off)
    values = flat.astype(np.float32)
    brightest = values.max(axis=1)
    saturation = np.where(brightest > 0, (brightest - values.min(axis=1)) / np.maximum(brightest, 1.0), 0.0)
    out.update(
        off_table_share=round(float(off.mean()), 4),
        off_table_region_share=round(float(regions.mean()), 4),
        saturation=round(float(saturation.mean()), 4),
    )
    return out


def layout_statistics(grey: np.ndarray) -> dict[str, Any]:
    """Flat background, lines of text and long straight lines of an 8-bit grey picture.

    Ink is every pixel whose grey level differs by more than :data:`INK_CONTRAST` from the
    most common one.

    Args:
        grey: 2-D grey values 0-255 (the picture as read, before any restoration).

    Returns:
        ``{"flat_share", "text_lines", "long_lines": [horizontal, vertical]}``.
    """
    import cv2

    image = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    histogram = cv2.calcHist([image], [0], None, [256], [0, 256]).ravel()
    level = int(histogram.argmax())
    ink = np.abs(image.astype(np.int16) - level) > INK_CONTRAST
    return {"flat_share": round(float(histogram[level] / image.size), 4), "text_lines": text_lines(ink), "long_lines": list(long_lines(ink))}


def text_lines(ink: np.ndarray) -> int:
    """How many lines of text the ink makes, in the whole picture or one vertical third.

    A line is a run of rows holding ink (at least :data:`TEXT_ROW_MIN_INK` of the width in
    one row) between rows that hold almost none; typeset text repeats lines at one pitch
    and one height, so only lines that follow another at the median pitch and height
    (within :data:`TEXT_REGULARITY`) count, plus the first. Counting by thirds finds the
    text of a screenshot beside a panel of buttons. Noise specks and a scintigram's few
    annotation lines do not make many regular lines.

    Args:
        ink: 2-D boolean ink mask.

    Example:
        >>> page = np.zeros((200, 300), bool)
        >>> for top in range(10, 190, 18): page[top:top + 10, 20:280:3] = True
        >>> text_lines(page)
        10
    """
    width = ink.shape[1]
    best = 0
    for columns in (slice(0, width), slice(0, width // 3), slice(width // 3, 2 * width // 3), slice(2 * width // 3, width)):
        share = ink[:, columns].mean(axis=1) if ink[:, columns].size else np.zeros(ink.shape[0])
        edges = np.diff(np.concatenate([[0], (share > TEXT_GAP_MAX_INK).astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        kept = [(a, b) for a, b in zip(starts, ends, strict=True) if share[a:b].max() >= TEXT_ROW_MIN_INK]
        if len(kept) < 3:
            continue
        tops = np.array([a for a, _ in kept])
        heights = np.array([b - a for a, b in kept])
        pitch, height = float(np.median(np.diff(tops))), float(np.median(heights))
        if height < TEXT_MIN_LINE_PX:
            continue
        regular = (np.abs(np.diff(tops) - pitch) <= TEXT_REGULARITY * pitch) & (np.abs(heights[1:] - height) <= TEXT_REGULARITY * height)
        if regular.any():
            best = max(best, int(regular.sum()) + 1)
    return best


def long_lines(ink: np.ndarray) -> tuple[int, int]:
    """Thin straight lines of ink across most of the picture: ``(horizontal, vertical)``.

    A line spans at least :data:`LONG_LINE_SHARE` of the picture's width (height) without a
    break, is at most :data:`LONG_LINE_MAX_PX` thick, lies at least
    :data:`LONG_LINE_EDGE_MARGIN` of the side away from the picture's edges (a frame round
    a picture is not line art) and has background along at least one side (at most
    :data:`LONG_LINE_MAX_NEIGHBOUR_INK` ink in the row two pixels off it). Chart axes, grid
    lines and table rules are such lines; counts are never drawn as them.

    Args:
        ink: 2-D boolean ink mask.

    Example:
        >>> chart = np.zeros((100, 100), bool); chart[10, 10:90] = chart[90, 10:90] = True
        >>> long_lines(chart)
        (2, 0)
    """
    import cv2

    def rows_with_lines(mask: np.ndarray) -> int:
        rows, cols = mask.shape
        span = max(2, int(np.ceil(LONG_LINE_SHARE * cols)))
        if span > cols:
            return 0
        share = mask.mean(axis=1)
        candidates = np.flatnonzero(share >= LONG_LINE_SHARE)  # a long run needs that much ink
        if not candidates.size:
            return 0
        long_rows = np.zeros(rows, bool)
        runs = cv2.erode(mask[candidates].astype(np.uint8), np.ones((1, span), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        long_rows[candidates] = runs.any(axis=1)
        edges = np.diff(np.concatenate([[0], long_rows.astype(np.int8), [0]]))
        margin = max(LONG_LINE_EDGE_MARGIN * rows, 2)
        return sum(
            1
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
            if b - a <= LONG_LINE_MAX_PX and a >= margin and b + 1 < rows - margin and min(share[a - 2], share[b + 1]) <= LONG_LINE_MAX_NEIGHBOUR_INK
        )

    return rows_with_lines(ink), rows_with_lines(np.ascontiguousarray(ink.T))


def looks_inverted(intensity: np.ndarray, ignore: np.ndarray, full_scale: tuple[float, float]) -> bool:
    """Whether a grey picture shows hot as dark.

    Five signs must agree: the picture's frame and its bulk (medians) are bright, the frame
    at least as bright as the bulk (low-count surroundings), the histogram has no long
    bright tail (skewness at most :data:`INVERTED_MAX_SKEW`), and the
    noise falls as the picture gets brighter. Counting noise grows with the counts, and
    every display gamma of 0.5 or more keeps it from falling with them, so on a normal
    display the local spread rises with the local mean; on an inverted one it falls.

    Args:
        intensity: 2-D grey values.
        ignore: pixels to leave out (annotation).
        full_scale: the values of black and white (``(0, 255)`` for 8-bit pictures).
    """
    low, high = full_scale
    if high <= low:
        return False
    values = ((intensity.astype(np.float64) - low) / (high - low)).astype(np.float32)
    rows, cols = values.shape
    width = max(2, int(round(0.05 * min(rows, cols))))
    frame = np.zeros(values.shape, bool)
    frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
    inside, border = values[~ignore], values[frame & ~ignore]
    if inside.size < 64 or border.size < 16 or float(inside.std()) == 0:
        return False
    skew = float(np.mean(((inside - inside.mean()) / inside.std()) ** 3))
    frame_median, bulk_median = float(np.median(border)), float(np.median(inside))
    if frame_median < INVERTED_MIN_BORDER or bulk_median < INVERTED_MIN_MEDIAN or frame_median < bulk_median or skew > INVERTED_MAX_SKEW:
        return False
    return noise_trend(values, ignore) <= INVERTED_MAX_NOISE_TREND


def noise_trend(values: np.ndarray, ignore: np.ndarray) -> float:
    """Rank correlation of local spread with local mean (windows of 1/16 of the picture).

    Windows touching ``ignore`` pixels or nearly black or white ones (clipped by the
    display window) are left out; too few windows give 0.

    Args:
        values: 2-D grey values scaled to 0-1.
        ignore: pixels to leave out.
    """
    import cv2
    from scipy.stats import spearmanr

    size = max(3, int(round(min(values.shape) / 16)) | 1)
    mean = cv2.blur(values, (size, size))
    spread = np.sqrt(np.maximum(cv2.blur(values * values, (size, size)) - mean * mean, 0))
    touched = cv2.blur(ignore.astype(np.float32), (size, size)) > 0
    step = max(1, size // 2)
    mean, spread, touched = mean[::step, ::step].ravel(), spread[::step, ::step].ravel(), touched[::step, ::step].ravel()
    keep = (mean > 0.03) & (mean < 0.97) & ~touched
    if keep.sum() < 10 or np.ptp(mean[keep]) == 0 or np.ptp(spread[keep]) == 0:
        return 0.0
    return float(spearmanr(mean[keep], spread[keep])[0])


def thin_bright_strokes(intensity: np.ndarray, ignore: np.ndarray) -> np.ndarray:
    """Mask of thin saturated white lines and letters (burned-in text, outlines, bars).

    A pixel belongs to a stroke when it is bright, much brighter than the morphological
    opening of the picture (so the bright structure is at most a few pixels wide and has
    darker pixels on both sides) and part of a piece of at least :data:`STROKE_MIN_AREA`
    pixels that is longer than the opening kernel (a letter or a line, not a speck of
    noise). A hot gland, many pixels wide, survives the opening and is not touched.

    Args:
        intensity: 2-D grey values 0-255.
        ignore: pixels already known to be overlay.
    """
    import cv2

    image = np.clip(np.round(intensity), 0, 255).astype(np.uint8)
    half = max(1, int(round(max(image.shape) / 300)))
    kernel = np.ones((2 * half + 1, 2 * half + 1), np.uint8)
    tophat = cv2.morphologyEx(image, cv2.MORPH_TOPHAT, kernel)
    seed = (image >= STROKE_MIN_VALUE) & (tophat >= STROKE_MIN_TOPHAT) & ~ignore
    if not seed.any():
        return seed
    grown = cv2.dilate(seed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & (tophat >= STROKE_EDGE_TOPHAT)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown.astype(np.uint8), connectivity=8)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (stats[:, cv2.CC_STAT_AREA] >= STROKE_MIN_AREA) & (extent >= kernel.shape[0] + STROKE_MIN_EXTRA_LENGTH)
    keep[0] = False
    return keep[labels]


def inpaint(intensity: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Fill ``mask`` (grown by one pixel for edge halos) from its surroundings.

    Args:
        intensity: 2-D values 0-255.
        mask: pixels to replace.

    Returns:
        ``(float32 intensity with the masked pixels replaced, number of pixels replaced)``.
    """
    import cv2

    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    image = np.clip(np.round(intensity), 0, 255).astype(np.uint8)
    filled = cv2.inpaint(image, grown, 3, cv2.INPAINT_TELEA)
    out = intensity.astype(np.float32, copy=True)
    replace = grown.astype(bool)
    out[replace] = filled[replace]
    return out, int(replace.sum())
