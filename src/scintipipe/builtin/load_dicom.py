"""DICOM loader plugin (NM, Secondary Capture; compressed syntaxes).

Claims a file when :func:`scintipipe.loaders.file_kind` says ``"dicom"`` (content
first, then extension) and returns ``None`` for any other file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl
from scintipipe.loaders import file_kind, load_with_kind


@hookimpl
def load_scans(path: Path) -> list[dict[str, Any]] | None:
    """Load a dicom file into scans; ``None`` for files of other kinds."""
    if file_kind(path) != "dicom":
        return None
    return load_with_kind(path, "dicom")
