"""Tell the kind of an image file from its first bytes, then from its extension.

Content wins over the name: a DICOM file called ``scan.png`` is DICOM, and a DICOM file
that is also a TIFF (DICOM-TIFF dual personality) is DICOM. The extension decides only
when the content matches no known kind, so that a text file renamed ``.dcm`` reaches the
DICOM loader, which says clearly that it is not DICOM.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Literal

FileKind = Literal["dicom", "raster", "volume"]

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")

RASTER_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
)
_FIRST_DICOM_GROUPS = (0x0002, 0x0008)
_HEAD_BYTES = 132


#: the kinds of the files sniffed last, by path and identity (see :func:`file_kind`)
_RECENT: OrderedDict[tuple[str, int, int, int, int], FileKind | None] = OrderedDict()
_RECENT_SIZE = 64
_RECENT_LOCK = threading.Lock()


def file_kind(path: str | Path) -> FileKind | None:
    """Return ``"dicom"``, ``"raster"``, ``"volume"`` or ``None`` for a file.

    Every loader plugin asks this of every file it is offered, so the answer for the
    last few files is remembered, keyed by the path and the file's inode, size and
    modification and change times: a file is opened once to sniff it, not once per loader.

    Args:
        path: the file; only its first 132 bytes are read (a preamble-less DICOM
            candidate is parsed up to its pixel data to confirm).
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (os.fspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _RECENT_LOCK:
        if key in _RECENT:
            return _RECENT[key]
    kind = _sniff(Path(path))
    with _RECENT_LOCK:
        _RECENT[key] = kind
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    return kind


def _sniff(path: Path) -> FileKind | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return None
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(RASTER_MAGIC):
        return "raster"
    if _starts_like_dicom_without_preamble(head) and _parses_as_dicom(path):
        return "dicom"
    name = path.name.lower()
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if name.endswith(RASTER_SUFFIXES):
        return "raster"
    if name.endswith(VOLUME_SUFFIXES):
        return "volume"
    return None


def _starts_like_dicom_without_preamble(head: bytes) -> bool:
    if len(head) < 8:
        return False
    little = int.from_bytes(head[0:2], "little")
    big = int.from_bytes(head[0:2], "big")
    return little in _FIRST_DICOM_GROUPS or big in _FIRST_DICOM_GROUPS


def _parses_as_dicom(path: Path) -> bool:
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001  (any parse failure means "not DICOM")
        return False
    keys = ("SOPClassUID", "Modality", "StudyInstanceUID", "SpecificCharacterSet")
    return any(key in ds for key in keys)
