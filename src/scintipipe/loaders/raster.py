"""Load PNG, JPEG and TIFF exports (grey or colour, 8 or 16 bit) into scans.

Display exports hold no counts and no pixel spacing: ``is_counts=False``, ``spacing=None``.
8-bit pictures are restored by :func:`scintipipe.loaders.display.restore_display`
(colour lookup tables mapped back, inverted grey scales turned back, burned-in annotation
inpainted); what it did is listed in ``scan["image"].meta["notes"]``. 8-bit pictures
larger than :data:`~scintipipe.loaders.display_size.MAX_DISPLAY_SIDE` are first scaled
down (:mod:`scintipipe.loaders.display_size`; the note and ``display_downscaled_from``
say so).

The size in the file's header is checked against :mod:`scintipipe.loaders.limits` before
any pixel is decoded.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.errors import NotAnImage, ScanError
from scintipipe.loaders.display import restore_display
from scintipipe.loaders.display_size import shrink_display_picture
from scintipipe.loaders.limits import MAX_PIXELS_ENV, check_float32_range, check_frame_size, current_limits
from scintipipe.previews import preview_kind
from scintipipe.scan import make_scan

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def load_raster(path: str | Path) -> list[dict[str, Any]]:
    """Read a PNG, JPEG or TIFF image into one scan, restored to display intensity.

    Colour pictures on a known colour lookup table become that table's intensity, other
    colour pictures their luminance; see :mod:`scintipipe.loaders.display`.

    Args:
        path: the file.

    Raises:
        ScanError: the file is not a readable image, is over an input limit, holds
            several pages or frames, or its pixels are rejected by
            :func:`scintipipe.scan.make_scan`.
    """
    path = Path(path)
    with path.open("rb") as handle:
        is_tiff = handle.read(4) in _TIFF_MAGIC
    pixels, image_format = _read_tiff(path) if is_tiff else _read_with_pillow(path)
    check_float32_range(path, pixels)
    original_shape = list(pixels.shape[:2])
    pixels, shrink_note = shrink_display_picture(pixels)
    restored = restore_display(pixels)
    meta = restored.meta()
    if shrink_note:
        meta["notes"].insert(0, shrink_note)
        meta["display_downscaled_from"] = original_shape
    return [make_scan(restored.pixels, str(path), spacing=None, modality=None, is_counts=False, image_format=image_format, **meta)]


def _read_with_pillow(path: Path) -> tuple[np.ndarray, str]:
    from PIL import Image, UnidentifiedImageError

    allow_pillow_to_decode(current_limits().max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            with Image.open(path) as image:  # lazy: reads the header, decodes nothing yet
                image_format = image.format or "unknown"
                kind = preview_kind(image)
                if kind is not None:
                    raise NotAnImage(path, f"a scintipipe {kind} (a picture for people), not a scan")
                columns, rows = image.size
                n_frames = getattr(image, "n_frames", 1)
                check_frame_size(path, rows, columns, n_frames)
                if n_frames > 1:
                    raise ScanError(path, f"{image_format} with {n_frames} frames: expected a single image")
                picture: Image.Image = image
                if image.mode in ("P", "PA", "LA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                    picture = image.convert("RGBA" if image.mode in ("PA", "LA") else "RGB")
                pixels = np.asarray(picture)
    except ScanError:  # NotAnImage included
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses on opening, before our check
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(claimed.group(1)):,} pixels" if claimed else "more pixels than Pillow decodes"
        limit = current_limits().max_pixels
        raise ScanError(
            path, f"image of {size} exceeds the limit of {limit:,} pixels per frame; set the environment variable {MAX_PIXELS_ENV} to raise it"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ScanError(path, f"not a readable PNG/JPEG/TIFF image: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ScanError(path, f"truncated or corrupt image file: {exc}") from exc
    return pixels, image_format


def _read_tiff(path: Path) -> tuple[np.ndarray, str]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            page = tif.pages.first
            check_frame_size(path, page.imagelength, page.imagewidth, n_pages * max(1, page.imagedepth))
            if n_pages > 1:
                raise ScanError(path, f"TIFF with {n_pages} pages: expected a single image")
            pixels = tif.asarray()
    except ScanError:  # NotAnImage included
        raise
    except Exception as exc:
        raise ScanError(path, f"truncated or corrupt TIFF file: {type(exc).__name__}: {exc}") from exc
    return pixels, "TIFF"


def allow_pillow_to_decode(max_pixels: int) -> None:
    """Raise Pillow's decompression-bomb limit to ``max_pixels`` when the input limit is higher.

    Pillow refuses, on opening, an image of more than twice ``Image.MAX_IMAGE_PIXELS``
    (about 179 M by default); the input limit (:mod:`scintipipe.loaders.limits`) is checked
    just after opening and is lower unless someone raised it. The global is only ever
    raised, never lowered, so other users of Pillow in the process are not affected.
    """
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
