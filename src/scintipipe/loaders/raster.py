"""Load PNG, JPEG and TIFF exports (grey or colour, 8 or 16 bit) into scans.

Display exports hold no counts and no pixel spacing: ``is_counts=False``, ``spacing=None``.
8-bit pictures are restored by :func:`scintipipe.loaders.display.restore_display`
(colour lookup tables mapped back, inverted grey scales turned back, burned-in annotation
inpainted); what it did is listed in ``scan["image"].meta["notes"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.errors import NotAnImage, ScanError
from scintipipe.loaders.display import restore_display
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
        ScanError: the file is not a readable image, holds several pages or frames, or
            its pixels are rejected by :func:`scintipipe.scan.make_scan`.
    """
    path = Path(path)
    with path.open("rb") as handle:
        is_tiff = handle.read(4) in _TIFF_MAGIC
    pixels, image_format = _read_tiff(path) if is_tiff else _read_with_pillow(path)
    restored = restore_display(pixels)
    return [make_scan(restored.pixels, str(path), spacing=None, modality=None, is_counts=False, image_format=image_format, **restored.meta())]


def _read_with_pillow(path: Path) -> tuple[np.ndarray, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image_format = image.format or "unknown"
            kind = preview_kind(image)
            if kind is not None:
                raise NotAnImage(path, f"a scintipipe {kind} (a picture for people), not a scan")
            if getattr(image, "n_frames", 1) > 1:
                raise ScanError(path, f"{image_format} with {image.n_frames} frames: expected a single image")
            if image.mode in ("P", "PA", "LA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGBA" if image.mode in ("PA", "LA") else "RGB")
            pixels = np.asarray(image)
    except ScanError:  # NotAnImage included
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ScanError(path, f"not a readable PNG/JPEG/TIFF image: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ScanError(path, f"truncated or corrupt image file: {exc}") from exc
    return pixels, image_format


def _read_tiff(path: Path) -> tuple[np.ndarray, str]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) > 1:
                raise ScanError(path, f"TIFF with {len(tif.pages)} pages: expected a single image")
            pixels = tif.asarray()
    except ScanError:  # NotAnImage included
        raise
    except Exception as exc:  # noqa: BLE001  (tifffile raises many kinds on corrupt files)
        raise ScanError(path, f"truncated or corrupt TIFF file: {type(exc).__name__}: {exc}") from exc
    return pixels, "TIFF"
