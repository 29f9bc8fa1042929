"""Expand the command line's files and folders into the list of files to load."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from scintipipe.errors import ScanError

#: headers whose pixel data lives in a companion file named inside the header
DETACHED_HEADER_SUFFIXES = (".mhd", ".nhdr")
_DATA_FILE_LINE = re.compile(r"^\s*(?:ElementDataFile\s*=|data ?file\s*:)\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def iter_input_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into the files to load.

    Folders are walked recursively in sorted order; hidden files and folders (name starting
    with ``.``) are skipped, and so are the pixel files that a MetaImage ``.mhd`` or NRRD
    ``.nhdr`` header in the same folder names (the header is what gets loaded). Files named
    explicitly are always kept.

    Args:
        paths: files and folders, in the order given.

    Returns:
        The files, each once, in the order found.

    Raises:
        ScanError: a path does not exist.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(_walk(path))
        elif path.exists():
            found.append(path)
        else:
            raise ScanError(path, "does not exist (no such file or folder)")
    return list(dict.fromkeys(found))


def _walk(folder: Path) -> list[Path]:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file()]
    companions = {data for header in files if header.suffix.lower() in DETACHED_HEADER_SUFFIXES for data in detached_data_files(header)}
    out = [p for p in files if p not in companions]
    for sub in (p for p in entries if p.is_dir()):
        out.extend(_walk(sub))
    return out


def detached_data_files(header: Path) -> list[Path]:
    """The pixel files a ``.mhd``/``.nhdr`` header names (empty when the data is inline)."""
    try:
        text = header.read_bytes()[:65536].decode("latin-1")
    except OSError:
        return []
    names = [name for name in _DATA_FILE_LINE.findall(text) if name.upper() not in ("LOCAL", "LIST")]
    return [header.parent / name for name in names]
