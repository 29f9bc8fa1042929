"""Shrink oversized display pictures at load time, so later stages never see them.

An 8-bit PNG/JPEG/TIFF export is a picture of a scan, not counts, and has no pixel
spacing: a 4000x4000 screen grab holds no more of the thyroid than a 1024x1024 one, but
costs segmentation minutes and gigabytes. :func:`shrink_display_picture` scales such a
picture down with area interpolation (each new pixel the mean of the pixels it covers) so
that its longer side is :data:`MAX_DISPLAY_SIDE`, before display restoration. Images that
may be counts (16-bit and float exports, DICOM) are never resampled; their size is bounded
by :mod:`scintipipe.loaders.limits` instead.
"""

from __future__ import annotations

import numpy as np

#: longest side of a display picture after loading: 1024 px is the largest matrix a gamma
#: camera acquires, so a bigger picture is an upscaled rendering with nothing more to show
MAX_DISPLAY_SIDE = 1024


def shrink_display_picture(pixels: np.ndarray, max_side: int = MAX_DISPLAY_SIDE) -> tuple[np.ndarray, str | None]:
    """Scale an 8-bit picture down (area interpolation) so its longer side is ``max_side``.

    Args:
        pixels: ``(H, W)`` grey or ``(H, W, 3|4)`` colour pixels as read from the file.
        max_side: the longest side to keep.

    Returns:
        ``(pixels, note)``: the picture unchanged and ``None`` when it is small enough or
        not an 8-bit picture, else the smaller ``uint8`` picture and a note saying what
        was done.

    Example:
        >>> small, note = shrink_display_picture(np.zeros((4000, 2000), np.uint8))
        >>> small.shape, note
        ((1024, 512), 'display picture of 4000x2000 pixels scaled down to 1024x512 (area interpolation)')
    """
    import cv2

    shape = pixels.shape
    is_picture = pixels.ndim == 2 or (pixels.ndim == 3 and shape[-1] in (3, 4))
    if pixels.dtype != np.uint8 or not is_picture or max(shape[:2]) <= max_side:
        return pixels, None
    scale = max_side / max(shape[:2])
    rows, columns = (max(1, round(side * scale)) for side in shape[:2])
    small = cv2.resize(np.ascontiguousarray(pixels), (columns, rows), interpolation=cv2.INTER_AREA)
    note = f"display picture of {shape[0]}x{shape[1]} pixels scaled down to {rows}x{columns} (area interpolation)"
    return small, note
