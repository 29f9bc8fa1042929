"""Colour to grey conversion shared by the loaders."""

from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights of R, G and B
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """Return the luminance of RGB(A) pixels (last axis 3 or 4); other arrays unchanged.

    Args:
        pixels: ``(..., 3)`` or ``(..., 4)`` colour (alpha is ignored), or grey.

    Returns:
        ``float32`` luminance with the colour axis removed, or ``pixels`` as they were.
    """
    if pixels.ndim >= 3 and pixels.shape[-1] in (3, 4):
        return (pixels[..., :3].astype(np.float64) @ LUMA_WEIGHTS).astype(np.float32)
    return pixels
