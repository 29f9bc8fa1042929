"""Helpers for the loader tests: where the real reference scans are, and small writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scintipipe.errors import ScanError

REFERENCE_SCANS = Path(__file__).resolve().parents[2] / "shared" / "reference-scans"
SIEMENS = REFERENCE_SCANS / "siemens-thyroid"


def siemens_scan(name: str) -> Path:
    """A file of ``shared/reference-scans/siemens-thyroid``; skips the test when absent."""
    path = SIEMENS / name
    if not path.is_file():
        pytest.skip(f"reference scan {path} is not present")
    return path


def gradient(rows: int = 48, columns: int = 40, maximum: int = 255, dtype: type = np.uint8) -> np.ndarray:
    """A non-constant ``rows x columns`` image whose rows and columns differ (catches transposes)."""
    y, x = np.mgrid[0:rows, 0:columns]
    values = (y * 3 + x * 7) % (maximum + 1)
    return values.astype(dtype)


def colour(rows: int = 48, columns: int = 40, maximum: int = 255, dtype: type = np.uint8) -> np.ndarray:
    """A ``(rows, columns, 3)`` colour image with different red, green and blue planes."""
    base = gradient(rows, columns, maximum, np.int64)
    return np.stack([base, (base * 2) % (maximum + 1), maximum - base], axis=-1).astype(dtype)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma computed independently of the loaders."""
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def pixels(scan: dict) -> np.ndarray:
    """The 2-D pixel array of a scan."""
    return scan["image"][0].numpy()


def expect_scan_error(load, path: Path, match: str) -> ScanError:
    """Assert that ``load(path)`` raises a plain :class:`ScanError` naming ``path``."""
    with pytest.raises(ScanError, match=match) as caught:
        load(path)
    assert caught.value.source == str(path)
    return caught.value
