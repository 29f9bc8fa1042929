"""The built-in loaders: DICOM, PNG/JPEG/TIFF exports, NIfTI and MetaImage/NRRD.

The ``load_scans`` hook implementations in :mod:`scintipipe.builtin` delegate here;
:func:`read_scans` uses the same loaders without the plugin manager (for MONAI
transforms such as :class:`scintipipe.transforms.io.LoadScan`).

Example:
    >>> from scintipipe.loaders import iter_input_files, read_scans
    >>> for path in iter_input_files(["scans/"]):  # doctest: +SKIP
    ...     for scan in read_scans(path):
    ...         print(scan["source"], scan["image"].meta["view"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe.errors import ScanError
from scintipipe.loaders.files import iter_input_files
from scintipipe.loaders.limits import check_file_size
from scintipipe.loaders.sniff import file_kind

__all__ = ["iter_input_files", "read_scans", "load_with_kind", "file_kind"]

UNRECOGNISED = "not a recognised image format (DICOM, PNG, JPEG, TIFF, NIfTI, MetaImage or NRRD)"


def reject_empty(path: str | Path) -> None:
    """Raise :class:`ScanError` for a file of 0 bytes (say so, not that a format marker is missing)."""
    try:
        empty = Path(path).stat().st_size == 0
    except OSError:
        return
    if empty:
        raise ScanError(path, "empty file (0 bytes)")


def load_with_kind(path: str | Path, kind: str) -> list[dict[str, Any]]:
    """Load ``path`` with the loader of ``kind`` (``"dicom"``, ``"raster"``, ``"volume"``).

    Raises:
        ScanError: the file is empty, over an input limit (:mod:`scintipipe.loaders.limits`)
            or bad for its kind.
    """
    reject_empty(path)
    check_file_size(path)
    if kind == "dicom":
        from scintipipe.loaders.dicom import load_dicom

        return load_dicom(path)
    if kind == "raster":
        from scintipipe.loaders.raster import load_raster

        return load_raster(path)
    if kind == "volume":
        from scintipipe.loaders.volume import load_volume

        return load_volume(path)
    raise ValueError(f"unknown loader kind {kind!r}")


def read_scans(path: str | Path) -> list[dict[str, Any]]:
    """Read any file the built-in loaders know into scans, choosing by content.

    Args:
        path: a DICOM, PNG, JPEG, TIFF, NIfTI, MetaImage or NRRD file.

    Raises:
        ScanError: the file does not exist, is of no known kind, is over an input limit
            (:mod:`scintipipe.loaders.limits`), or is bad.
        NotAnImage: a DICOM file that holds no image.
    """
    path = Path(path)
    if not path.is_file():
        raise ScanError(path, "is a folder, not a file" if path.is_dir() else "no such file")
    reject_empty(path)
    check_file_size(path)
    kind = file_kind(path)
    if kind is None:
        raise ScanError(path, UNRECOGNISED)
    return load_with_kind(path, kind)
