"""Colour to grey conversion shared by the loaders, and the display colour lookup tables.

Workstations and papers often show scintigrams through a colour lookup table (LUT): a
ramp of 256 colours indexed by the display value. :func:`lookup_table` gives the tables
scintipipe knows (matplotlib colour maps and single-colour ramps from black), used both by
the simulator's display exports and by :mod:`scintipipe.loaders.display` to map colour
pixels back to intensity.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: ITU-R BT.601 luma weights of R, G and B
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

#: matplotlib colour maps seen on workstations and in figures
MATPLOTLIB_LUTS = ("hot", "afmhot", "gist_heat", "jet", "turbo", "viridis", "inferno", "magma", "plasma", "nipy_spectral")

#: single-colour ramps from black (``ramp_<colour>``): the end colour in RGB
#: (no red ramp: it is the first third of ``hot``)
RAMP_LUTS = {"ramp_green": (0, 255, 0), "ramp_blue": (0, 128, 255), "ramp_cyan": (0, 255, 255)}

#: every colour lookup table the display loader recognises ("gray" is the plain grey ramp)
DISPLAY_LUTS = (*MATPLOTLIB_LUTS, *RAMP_LUTS)


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


@cache
def lookup_table(name: str) -> np.ndarray:
    """The 256-entry colour table ``name`` as a read-only ``(256, 3)`` ``uint8`` array.

    Args:
        name: ``"gray"``, one of :data:`MATPLOTLIB_LUTS` or one of :data:`RAMP_LUTS`.

    Raises:
        KeyError: an unknown name.

    Example:
        >>> lookup_table("hot")[255].tolist(), lookup_table("gray")[7].tolist()
        ([255, 255, 255], [7, 7, 7])
    """
    ramp = np.arange(256, dtype=np.float64) / 255.0
    if name == "gray":
        table = np.repeat(ramp[:, None], 3, axis=1) * 255
    elif name in RAMP_LUTS:
        table = ramp[:, None] * np.asarray(RAMP_LUTS[name], dtype=np.float64)[None, :]
    elif name in MATPLOTLIB_LUTS:
        import matplotlib

        table = np.asarray(matplotlib.colormaps[name].resampled(256)(np.arange(256)))[:, :3] * 255
    else:
        raise KeyError(f"unknown colour lookup table {name!r}; known: gray, {', '.join(DISPLAY_LUTS)}")
    table = np.clip(np.round(table), 0, 255).astype(np.uint8)
    table.setflags(write=False)
    return table
