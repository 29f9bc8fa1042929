"""Turn a simulated counts image into a display export, as workstations and papers make them.

Real images that reach the pipeline are often not counts but 8-bit pictures: a screen grab
of a workstation, a figure crop from a paper, a PNG/JPEG export. They are framed around
the neck in many ways, windowed, gamma-corrected, quantised, resampled, sometimes inverted
(hot is dark) or shown through a colour lookup table, compressed, and carry burned-in text,
R/L letters, ROI outlines and scale bars. :func:`display_export` reproduces that chain.

Every step is drawn by :func:`sample_export_options` from the random generator alone,
never from the case or its label, so nothing in the export tells the class apart except
the scan itself; :attr:`DisplayExport.record` lists everything that was done and drawn so
an audit can check it. :func:`render_display_export` applies given options (tests fix
some of them with :func:`dataclasses.replace`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scintipipe.loaders.grey import DISPLAY_LUTS, lookup_table

#: OpenCV interpolation of each resampling method
RESAMPLING = {"bilinear": 1, "nearest": 0, "area": 3}  # cv2.INTER_LINEAR, INTER_NEAREST, INTER_AREA

#: the picture's sides: the longer one is drawn from 128-1024, the shorter kept at 128 or more
MIN_SIDE_PX, MAX_SIDE_PX = 128, 1024

#: the upper window level never falls below this percentile of the framed picture: at most
#: a tenth of it saturates (nobody exports a picture that is white all over)
MAX_SATURATED_PERCENTILE = 90

#: saturated annotation colours (RGB)
OVERLAY_COLOURS = ((255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0))

TEXT_POOL = (
    "ANT",
    "ANTERIOR",
    "THYROID",
    "Tc99m 5 min",
    "Tc-99m 185 MBq",
    "20 min p.i.",
    "LEHR",
    "STATIC",
    "DOE^JANE",
    "SMITH J",
    "PATIENT {n}",
    "ID {n}",
    "{date}",
    "{date} {time}",
    "Total: {k}k cts",
    "{k} kcts",
    "Time: {s} s",
)

#: probabilities of the optional steps (class-independent)
P_SMOOTH, P_LOWER_LEVEL, P_COLOUR, P_INVERT, P_ANNOTATE, P_JPEG, P_HEAD = 0.4, 0.25, 0.2, 0.15, 0.4, 0.5, 0.5


@dataclass(frozen=True)
class Annotation:
    """What is burned into the picture; positions are fractions of the picture size.

    Attributes:
        colour: RGB of every stroke (white, black on inverted displays, or saturated).
        texts: ``(text, corner)`` lines; corner is ``tl``, ``tr``, ``bl`` or ``br``.
        font_fraction: font size as a fraction of the picture's longer side.
        line_width: stroke width of lines in pixels.
        rl_letters: draw ``R`` at the left and ``L`` at the right edge (anterior view).
        roi: ``"lobes"`` (outlines of the lobe masks), ``"rectangles"`` (boxes around the
            lobes) or ``None``.
        background_roi: a rectangle below the gland, as for background subtraction.
        scale_bar: a 50 mm bar with end ticks and a ``5 cm`` label.
    """

    colour: tuple[int, int, int]
    texts: tuple[tuple[str, str], ...] = ()
    font_fraction: float = 0.035
    line_width: int = 1
    rl_letters: bool = False
    roi: str | None = None
    background_roi: bool = False
    scale_bar: bool = False


@dataclass(frozen=True)
class ExportOptions:
    """Every choice of one display export.

    Attributes:
        head_included: the window reaches up over the salivary glands.
        top_mm: window top, mm above the thyroid centre.
        bottom_mm: window bottom, mm below the thyroid centre.
        aspect: window width / height.
        centre_shift: horizontal offset of the window centre from the thyroid, in widths.
        long_side_px: the picture's longer side in pixels (128-1024; raised when the
            shorter side would fall below 128).
        smooth_sigma_px: Gaussian display smoothing in detector pixels (0: none).
        upper_fraction: upper window level as a fraction of the image maximum (raised to
            the framed picture's 90th percentile when lower).
        lower_fraction: lower window level as a fraction of the upper level.
        gamma: display gamma applied to the windowed values.
        resample: ``bilinear``, ``nearest`` or ``area``.
        colormap: a colour lookup table name (see :data:`DISPLAY_LUTS`) or ``None`` (grey).
        invert: grey scale inverted (hot is dark); never together with a colour map.
        annotation: what is burned in, or ``None``.
        image_format: ``png`` or ``jpeg``.
        jpeg_quality: JPEG quality (50-95) when ``image_format`` is ``jpeg``.
    """

    head_included: bool
    top_mm: float
    bottom_mm: float
    aspect: float
    centre_shift: float
    long_side_px: int
    smooth_sigma_px: float
    upper_fraction: float
    lower_fraction: float
    gamma: float
    resample: str
    colormap: str | None
    invert: bool
    annotation: Annotation | None
    image_format: str
    jpeg_quality: int


@dataclass
class DisplayExport:
    """A rendered display export.

    Attributes:
        image: the pixels a reader of the file gets (``uint8``, ``(H, W)`` grey or
            ``(H, W, 3)`` RGB), i.e. after compression.
        masks: the case's masks in the picture's geometry (nearest neighbour).
        record: JSON-ready account of every step and everything drawn.
        grey: the 8-bit grey display before inversion, colour, annotation and compression.
        clean: the display after inversion or colour, before annotation and compression.
        data: the encoded file.
        suffix: ``.png`` or ``.jpg``.
    """

    image: np.ndarray
    masks: dict[str, np.ndarray]
    record: dict[str, Any]
    grey: np.ndarray
    clean: np.ndarray
    data: bytes
    suffix: str


def sample_export_options(rng: np.random.Generator) -> ExportOptions:
    """Draw every choice of a display export from ``rng`` (and from nothing else).

    Args:
        rng: the random generator.
    """
    head = bool(rng.random() < P_HEAD)
    top = float(rng.uniform(120, 160) if head else rng.uniform(50, 100))  # keeps the submandibular glands, the reference for uptake, in most frames
    bottom = float(rng.uniform(35, 110))
    aspect = float(rng.uniform(0.7, 1.4))
    shift = float(rng.uniform(-0.1, 0.1))
    long_side = int(rng.integers(128, 1025))
    sigma = float(rng.uniform(0.5, 1.5)) if rng.random() < P_SMOOTH else 0.0
    upper = float(rng.uniform(0.4, 1.0))
    lower = float(rng.uniform(0.02, 0.15)) if rng.random() < P_LOWER_LEVEL else 0.0
    gamma = float(rng.uniform(0.5, 1.5))
    resample = str(rng.choice(list(RESAMPLING)))
    colormap = str(rng.choice(DISPLAY_LUTS)) if rng.random() < P_COLOUR else None
    invert = colormap is None and bool(rng.random() < P_INVERT)
    annotation = _sample_annotation(rng, invert) if rng.random() < P_ANNOTATE else None
    jpeg = bool(rng.random() < P_JPEG)
    quality = int(rng.integers(50, 96))
    return ExportOptions(
        head,
        top,
        bottom,
        aspect,
        shift,
        long_side,
        sigma,
        upper,
        lower,
        gamma,
        resample,
        colormap,
        invert,
        annotation,
        "jpeg" if jpeg else "png",
        quality if jpeg else 0,
    )


def _sample_annotation(rng: np.random.Generator, inverted: bool) -> Annotation:
    colour: tuple[int, int, int]
    if rng.random() < 0.5:
        colour = (0, 0, 0) if inverted else (255, 255, 255)
    else:
        red, green, blue = (int(c) for c in OVERLAY_COLOURS[int(rng.integers(len(OVERLAY_COLOURS)))])
        colour = (red, green, blue)
    texts: list[tuple[str, str]] = []
    if rng.random() < 0.7:
        for _ in range(int(rng.integers(1, 4))):
            template = TEXT_POOL[int(rng.integers(len(TEXT_POOL)))]
            text = template.format(
                n=int(rng.integers(1000, 99999)),
                date=f"2024-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
                time=f"{int(rng.integers(7, 18)):02d}:{int(rng.integers(0, 60)):02d}",
                k=int(rng.integers(50, 500)),
                s=int(rng.integers(60, 600)),
            )
            texts.append((text, str(rng.choice(["tl", "tr", "bl", "br"]))))
    roi_draw = rng.random()
    return Annotation(
        colour=colour,
        texts=tuple(texts),
        font_fraction=float(rng.uniform(0.025, 0.06)),
        line_width=int(rng.integers(1, 3)),
        rl_letters=bool(rng.random() < 0.5),
        roi="lobes" if roi_draw < 0.25 else "rectangles" if roi_draw < 0.4 else None,
        background_roi=bool(rng.random() < 0.15),
        scale_bar=bool(rng.random() < 0.3),
    )


def display_export(counts: np.ndarray, masks: Mapping[str, np.ndarray], rng: np.random.Generator, pixel_mm: float) -> DisplayExport:
    """Render a randomly drawn display export of a counts image.

    Args:
        counts: detector counts, head up, patient's right on the left.
        masks: structure masks on the detector grid (``thyroid`` is used for framing).
        rng: the random generator (the only source of the export's choices).
        pixel_mm: detector pixel size in mm.

    Example:
        >>> import numpy as np
        >>> counts = np.random.default_rng(0).poisson(3, (128, 128)).astype(np.uint16)
        >>> thyroid = np.zeros((128, 128), bool); thyroid[70:90, 50:78] = True
        >>> export = display_export(counts, {"thyroid": thyroid}, np.random.default_rng(1), 2.2)
        >>> export.image.dtype, max(export.image.shape[:2]) >= 128
        (dtype('uint8'), True)
    """
    return render_display_export(counts, masks, pixel_mm, sample_export_options(rng))


def render_display_export(counts: np.ndarray, masks: Mapping[str, np.ndarray], pixel_mm: float, options: ExportOptions) -> DisplayExport:
    """Apply ``options`` to ``counts`` and ``masks``: frame, window, render, annotate, encode.

    Args:
        counts: detector counts.
        masks: structure masks on the detector grid.
        pixel_mm: detector pixel size in mm.
        options: the choices (from :func:`sample_export_options`).
    """
    import cv2

    box, out_shape = _frame(np.asarray(counts).shape, masks.get("thyroid"), pixel_mm, options)
    image = np.asarray(counts, dtype=np.float32)
    if options.smooth_sigma_px > 0:
        from scipy.ndimage import gaussian_filter

        image = gaussian_filter(image, options.smooth_sigma_px)
    cropped = _crop(image, box, 0.0)
    top = max(float(image.max()) * options.upper_fraction, float(np.percentile(cropped, MAX_SATURATED_PERCENTILE))) or 1.0
    low = top * options.lower_fraction
    values = np.clip((cropped - low) / (top - low), 0.0, 1.0) ** options.gamma
    quantised = np.round(values * 255).astype(np.uint8)
    size = (out_shape[1], out_shape[0])
    grey = cv2.resize(quantised, size, interpolation=RESAMPLING[options.resample])
    out_masks = {
        name: cv2.resize(_crop(np.asarray(mask, np.uint8), box, 0), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        for name, mask in masks.items()
    }
    if options.colormap is not None:
        clean = lookup_table(options.colormap)[grey]
    else:
        clean = 255 - grey if options.invert else grey.copy()
    drawn: list[dict[str, Any]] = []
    picture = clean if options.annotation is None else _annotate(clean, out_masks, options.annotation, box, out_shape, pixel_mm, drawn)
    data, suffix = _encode(picture, options)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as decoded:
        pixels = np.asarray(decoded)
    crop_mm = ((box[1] - box[0]) * pixel_mm, (box[3] - box[2]) * pixel_mm)
    record = {
        "options": _jsonable(asdict(options)),
        "crop_box_detector_px": list(box),
        "crop_mm": [round(v, 2) for v in crop_mm],
        "shape": list(pixels.shape),
        "pixel_mm": round(crop_mm[0] / out_shape[0], 5),
        "format": options.image_format,
        "drawn": drawn,
    }
    return DisplayExport(pixels, out_masks, record, grey, clean, data, suffix)


def _frame(
    shape: tuple[int, ...], thyroid: np.ndarray | None, pixel_mm: float, options: ExportOptions
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Crop box (row0, row1, col0, col1) on the detector grid and the picture's (rows, cols)."""
    if thyroid is not None and np.any(thyroid):
        thyroid_rows, thyroid_cols = np.nonzero(thyroid)
        centre_row, centre_col = float(thyroid_rows.mean()), float(thyroid_cols.mean())
    else:
        centre_row, centre_col = shape[0] * 0.55, shape[1] / 2
    height = (options.top_mm + options.bottom_mm) / pixel_mm
    width = height * options.aspect
    row0 = int(round(centre_row - options.top_mm / pixel_mm))
    row1 = row0 + max(8, int(round(height)))
    col0 = int(round(centre_col + options.centre_shift * width - width / 2))
    col1 = col0 + max(8, int(round(width)))
    rows, cols = row1 - row0, col1 - col0
    scale = min(max(options.long_side_px / max(rows, cols), MIN_SIDE_PX / min(rows, cols)), MAX_SIDE_PX / max(rows, cols))
    out_shape = (int(round(rows * scale)), int(round(cols * scale)))
    return (row0, row1, col0, col1), out_shape


def _crop(array: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    """``array[row0:row1, col0:col1]``, padded with ``fill`` where the box leaves the field."""
    row0, row1, col0, col1 = box
    out = np.full((row1 - row0, col1 - col0), fill, dtype=array.dtype)
    r0, r1 = max(row0, 0), min(row1, array.shape[0])
    c0, c1 = max(col0, 0), min(col1, array.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = array[r0:r1, c0:c1]
    return out


def _annotate(
    clean: np.ndarray,
    masks: Mapping[str, np.ndarray],
    spec: Annotation,
    box: tuple[int, int, int, int],
    out_shape: tuple[int, int],
    pixel_mm: float,
    drawn: list[dict[str, Any]],
) -> np.ndarray:
    """Burn ``spec`` into a copy of ``clean``; append each item drawn to ``drawn``."""
    from PIL import Image, ImageDraw, ImageFont

    grey_ink = spec.colour[0] == spec.colour[1] == spec.colour[2]
    ink: int | tuple[int, int, int]
    if clean.ndim == 2 and grey_ink:
        picture, ink = Image.fromarray(clean, "L"), spec.colour[0]
    else:
        picture = Image.fromarray(clean if clean.ndim == 3 else np.repeat(clean[..., None], 3, axis=2), "RGB")
        ink = spec.colour
    draw = ImageDraw.Draw(picture)
    rows, cols = out_shape
    font_px = max(8, int(round(spec.font_fraction * max(rows, cols))))
    font = ImageFont.load_default(size=font_px)
    margin = max(2, font_px // 3)
    lines: dict[str, int] = {}
    for text, corner in spec.texts:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        k = lines.get(corner, 0)
        lines[corner] = k + 1
        x = margin if corner[1] == "l" else cols - margin - (right - left)
        y = margin + k * (font_px + 2) if corner[0] == "t" else rows - margin - (k + 1) * (font_px + 2)
        draw.text((x, y), text, fill=ink, font=font)
        drawn.append({"kind": "text", "text": text, "xy": [int(x), int(y)], "font_px": font_px, "colour": list(spec.colour)})
    if spec.rl_letters:
        for letter, x in (("R", margin), ("L", cols - margin - font_px // 2)):
            draw.text((x, rows // 2), letter, fill=ink, font=font)
            drawn.append({"kind": "letter", "text": letter, "xy": [int(x), rows // 2], "font_px": font_px, "colour": list(spec.colour)})
    scale = rows / (box[1] - box[0])  # picture pixels per detector pixel
    if spec.roi is not None:
        _draw_lobe_rois(draw, masks, spec, ink, drawn)
    if spec.background_roi and np.any(masks.get("thyroid", False)):
        r, c = np.nonzero(masks["thyroid"])
        half = 10 / pixel_mm * scale
        y0 = r.max() + 8 / pixel_mm * scale
        xy = [int(c.mean() - half), int(y0), int(c.mean() + half), int(y0 + half)]
        draw.rectangle(xy, outline=ink, width=spec.line_width)
        drawn.append({"kind": "background_roi", "xy": xy, "colour": list(spec.colour)})
    if spec.scale_bar:
        length = 50 / pixel_mm * scale
        x0, y0 = cols - margin - length, rows - margin - 2 * font_px - 4
        draw.line([(x0, y0), (x0 + length, y0)], fill=ink, width=spec.line_width + 1)
        for x in (x0, x0 + length):
            draw.line([(x, y0 - font_px // 3), (x, y0 + font_px // 3)], fill=ink, width=spec.line_width)
        draw.text((x0, y0 + 2), "5 cm", fill=ink, font=font)
        drawn.append({"kind": "scale_bar", "xy": [int(x0), int(y0), int(x0 + length), int(y0)], "colour": list(spec.colour)})
    return np.asarray(picture)


def _draw_lobe_rois(draw: Any, masks: Mapping[str, np.ndarray], spec: Annotation, ink: Any, drawn: list[dict[str, Any]]) -> None:
    import cv2

    for name in ("thyroid_right", "thyroid_left"):
        mask = masks.get(name)
        if mask is None or not np.any(mask):
            continue
        if spec.roi == "rectangles":
            r, c = np.nonzero(mask)
            pad = 3 + spec.line_width
            xy = [int(c.min() - pad), int(r.min() - pad), int(c.max() + pad), int(r.max() + pad)]
            draw.rectangle(xy, outline=ink, width=spec.line_width)
            drawn.append({"kind": "roi_rectangle", "structure": name, "xy": xy, "colour": list(spec.colour)})
            continue
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            points = [tuple(int(v) for v in p[0]) for p in contour]
            if len(points) > 2:
                draw.line([*points, points[0]], fill=ink, width=spec.line_width)
        drawn.append({"kind": "roi_outline", "structure": name, "points": int(sum(len(c) for c in contours)), "colour": list(spec.colour)})


def _encode(picture: np.ndarray, options: ExportOptions) -> tuple[bytes, str]:
    """PNG or JPEG bytes of ``picture`` (no preview tag: an export is a scan to load)."""
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(picture, "L" if picture.ndim == 2 else "RGB")
    if options.image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=options.jpeg_quality)
        return buffer.getvalue(), ".jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 5)
    return value
