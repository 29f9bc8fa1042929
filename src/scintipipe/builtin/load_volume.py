"""NIfTI (nibabel) and MetaImage/NRRD (ITK) loader plugin.

Claims a file when :func:`scintipipe.loaders.file_kind` says ``"volume"`` (content
first, then extension) and returns ``None`` for any other file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl
from scintipipe.loaders import file_kind, load_with_kind


@hookimpl
def load_scans(path: Path) -> list[dict[str, Any]] | None:
    """Load a volume file into scans; ``None`` for files of other kinds."""
    if file_kind(path) != "volume":
        return None
    return load_with_kind(path, "volume")
