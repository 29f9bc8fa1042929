"""Limits on the size of one input, checked from its header before any pixel is decoded.

A planar thyroid scintigram is small: 64x64 to 1024x1024 pixels, one to four views, a few
megabytes. A file far beyond that is a mistake or an attack (a 100000x100000 PNG header
over a few kilobytes of data asks for 10 GB), so the loaders refuse it with a
:class:`~scintipipe.errors.ScanError` before decoding, naming the value, the limit and
the environment variable that raises it:

=============================  ==================  ====================================
environment variable           default             what it bounds
=============================  ==================  ====================================
``SCINTIPIPE_MAX_PIXELS``      16777216 (4096²)    pixels in one frame (rows x columns)
``SCINTIPIPE_MAX_FRAMES``      64                  frames (views, pages) in one file
``SCINTIPIPE_MAX_FILE_MB``     512                 bytes read from one file, in MiB
=============================  ==================  ====================================

The variables are read at each check, so a test or a long-running server can change them
without a restart. A value that is not a positive whole number is a
:class:`~scintipipe.errors.ScintipipeError` naming the variable.

Example:
    >>> check_frame_size("big.png", rows=100_000, columns=100_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    scintipipe.errors.ScanError: big.png: image of 100000x100000 pixels (10,000,000,000) exceeds the limit of 16,777,216 pixels per frame; ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scintipipe.errors import ScanError, ScintipipeError

#: pixels in one frame: 4096 x 4096, the largest side :func:`scintipipe.scan.make_scan`
#: accepts, squared (a gamma camera's matrix is at most 1024x1024; 16.7 M float32 pixels
#: are 64 MiB, and the loaders make a few copies)
DEFAULT_MAX_PIXELS = 4096 * 4096
#: frames in one file: planar thyroid studies hold 1-4 views; 64 leaves room for dynamic
#: acquisitions while refusing a header that claims a million frames
DEFAULT_MAX_FRAMES = 64
#: size of one file in MiB: a 64-frame 1024x1024 16-bit study is 128 MiB, so 512 MiB leaves
#: room for uncompressed colour exports while keeping one input's memory bounded
DEFAULT_MAX_FILE_MB = 512

MAX_PIXELS_ENV = "SCINTIPIPE_MAX_PIXELS"
MAX_FRAMES_ENV = "SCINTIPIPE_MAX_FRAMES"
MAX_FILE_MB_ENV = "SCINTIPIPE_MAX_FILE_MB"


@dataclass(frozen=True)
class InputLimits:
    """The limits in force.

    Attributes:
        max_pixels: pixels in one frame.
        max_frames: frames in one file.
        max_file_mb: MiB in one file.
    """

    max_pixels: int
    max_frames: int
    max_file_mb: int

    @property
    def max_file_bytes(self) -> int:
        """``max_file_mb`` in bytes."""
        return self.max_file_mb * 1024 * 1024


def current_limits() -> InputLimits:
    """The limits from the environment variables, or their defaults.

    Raises:
        ScintipipeError: a variable is set to something other than a positive whole number.
    """
    return InputLimits(
        max_pixels=_positive_int(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS),
        max_frames=_positive_int(MAX_FRAMES_ENV, DEFAULT_MAX_FRAMES),
        max_file_mb=_positive_int(MAX_FILE_MB_ENV, DEFAULT_MAX_FILE_MB),
    )


def check_file_size(path: str | Path) -> None:
    """Refuse a file larger than ``SCINTIPIPE_MAX_FILE_MB`` before reading it.

    Raises:
        ScanError: the file is too large.
    """
    try:
        size = Path(path).stat().st_size
    except OSError:
        return  # the loader says what is wrong with a file it cannot open
    limit = current_limits().max_file_mb
    if size > limit * 1024 * 1024:
        raise ScanError(path, f"file of {size / 2**20:,.0f} MiB exceeds the limit of {limit:,} MiB; {_raise_hint(MAX_FILE_MB_ENV)}")


def check_frame_size(source: str | Path, rows: int, columns: int, frames: int = 1) -> None:
    """Refuse an image whose header asks for too many pixels per frame or too many frames.

    Args:
        source: the file, for the message.
        rows: rows of one frame, from the header.
        columns: columns of one frame, from the header.
        frames: frames (views, pages, slices) in the file, from the header.

    Raises:
        ScanError: over :data:`SCINTIPIPE_MAX_PIXELS <MAX_PIXELS_ENV>` or
            :data:`SCINTIPIPE_MAX_FRAMES <MAX_FRAMES_ENV>`.
    """
    limits = current_limits()
    pixels = int(rows) * int(columns)
    if pixels > limits.max_pixels:
        raise ScanError(
            source,
            f"image of {rows}x{columns} pixels ({pixels:,}) exceeds the limit of {limits.max_pixels:,} pixels per frame; {_raise_hint(MAX_PIXELS_ENV)}",
        )
    if int(frames) > limits.max_frames:
        raise ScanError(source, f"{frames:,} frames exceed the limit of {limits.max_frames:,} frames per file; {_raise_hint(MAX_FRAMES_ENV)}")


def _raise_hint(variable: str) -> str:
    return f"set the environment variable {variable} to raise it"


def _positive_int(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ScintipipeError(f"{variable}={text!r} is not a positive whole number (default {default})")
    return value


def check_float32_range(source: str | Path, pixels: np.ndarray) -> None:
    """Refuse finite values that would become infinite as ``float32`` (scans are ``float32``).

    A corrupt scale factor (a NIfTI ``scl_slope`` of 1e38) or a float64 export can hold
    values that pass a finiteness check and overflow when the scan is built.

    Raises:
        ScanError: a value's magnitude exceeds the largest ``float32``.
    """
    values = np.asarray(pixels)
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or not values.size:
        return
    largest = float(np.max(np.abs(values), initial=0.0, where=np.isfinite(values)))
    if largest > float(np.finfo(np.float32).max):
        raise ScanError(source, f"pixel values up to {largest:.3g} exceed the float32 range: the file (or its scale factor) is corrupt")
