"""Pictures scintipipe writes for people (contact sheets, report images) are tagged as such.

A PNG text chunk ``scintipipe-preview`` marks them, and the raster loader skips tagged
files with a note: running ``scintipipe run`` on a simulator or results folder must not
classify its pictures as scans.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

PREVIEW_KEY = "scintipipe-preview"


def save_preview_png(picture: Image.Image | np.ndarray, path: str | Path, kind: str) -> Path:
    """Write a PNG tagged as a scintipipe preview.

    Args:
        picture: a Pillow image or an array (grey ``(H, W)`` or RGB ``(H, W, 3)``, uint8).
        path: the PNG to write.
        kind: what it is (``contact sheet``, ``report image``), stored in the tag.
    """
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture))
    info = PngInfo()
    info.add_text(PREVIEW_KEY, kind)
    image.save(path, format="PNG", pnginfo=info)
    return Path(path)


def preview_kind(image: Image.Image) -> str | None:
    """The tag's value when ``image`` is a scintipipe preview, else ``None``."""
    return (getattr(image, "text", None) or {}).get(PREVIEW_KEY)
