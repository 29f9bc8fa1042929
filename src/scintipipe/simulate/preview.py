"""PNG previews: a display rendering of one scan and a labelled contact sheet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from scintipipe.previews import save_preview_png

TILE = 160
CAPTION = 14


def display_image(counts: np.ndarray, percentile: float = 99.8) -> np.ndarray:
    """Linear display window from zero to a high percentile, as 8-bit grey."""
    image = counts.astype(np.float32)
    top = float(np.percentile(image, percentile)) or float(image.max()) or 1.0
    return (255 * np.clip(image / top, 0, 1)).astype(np.uint8)


def contact_sheet(images: Sequence[np.ndarray], captions: Sequence[str], path: Path, columns: int = 8) -> Path:
    """Tile scans with captions into one PNG.

    Args:
        images: count images (any size; each is resized to a square tile).
        captions: one short text per image.
        path: PNG to write.
        columns: tiles per row.
    """
    rows = max(1, -(-len(images) // columns))
    sheet = Image.new("L", (columns * TILE, rows * (TILE + CAPTION)), 0)
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(zip(images, captions, strict=True)):
        tile = Image.fromarray(display_image(image)).resize((TILE, TILE), Image.Resampling.BILINEAR)
        x = (index % columns) * TILE
        y = (index // columns) * (TILE + CAPTION)
        sheet.paste(tile, (x, y))
        draw.text((x + 2, y + TILE + 1), caption[:26], fill=255)
    return save_preview_png(sheet, path, "contact sheet")
