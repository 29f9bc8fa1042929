"""PNG/JPEG/TIFF export loader plugin.

Claims a file when :func:`scintipipe.loaders.file_kind` says ``"raster"`` (content
first, then extension) and returns ``None`` for any other file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl
from scintipipe.loaders import file_kind, load_with_kind


@hookimpl
def load_scans(path: Path) -> list[dict[str, Any]] | None:
    """Load a raster file into scans; ``None`` for files of other kinds."""
    if file_kind(path) != "raster":
        return None
    return load_with_kind(path, "raster")
