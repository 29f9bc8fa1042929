"""Loading a file through the plugins' ``load_scans`` hooks, outside a run as inside one.

:class:`scintipipe.pipeline.Pipeline` loads with :func:`load_views`; MONAI transforms
(:class:`scintipipe.transforms.io.LoadScan`, a bundle's standalone reader) and the
training data loaders use :func:`read_views`, so a plugin's loader serves them all, not
only ``scintipipe run``.

Example:
    >>> from scintipipe.loading import read_views
    >>> views = read_views("scans/case-00000.dcm")  # doctest: +SKIP
    >>> views[0]["image"].meta["view"]  # doctest: +SKIP
    'anterior'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import pluggy

from scintipipe.errors import NotAnImage, ScanError

#: files that sit beside scans (labels, notes, reports): skipped with a note, not failures
SIDECAR_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".txt", ".md", ".html", ".pdf", ".log", ".xml", ".yaml", ".yml")

UNRECOGNISED = "not a recognised image format (DICOM, PNG, JPEG, TIFF, NIfTI, MetaImage or NRRD)"


def load_views(pm: pluggy.PluginManager, path: str | Path, context: Any = None) -> list[dict[str, Any]]:
    """Load one file into views with the first plugin loader that claims it.

    Args:
        pm: the plugin manager whose ``load_scans`` hooks to call.
        path: the file.
        context: the run's :class:`scintipipe.api.RunContext` (a default one outside a run).

    Raises:
        NotAnImage: a side-car file (labels, notes, reports) that no loader claims.
        ScanError: an empty file, or one no loader reads.
    """
    from scintipipe.context import RunContext

    path = Path(path)
    scans = pm.hook.load_scans(path=path, context=context if context is not None else RunContext())
    if scans is not None:
        return scans
    refuse_unclaimed(path)


def refuse_unclaimed(path: Path) -> NoReturn:
    """Say why no loader claimed ``path``: a side-car file, an empty file, or an unknown format.

    Raises:
        NotAnImage: a side-car file (labels, notes, reports).
        ScanError: an empty file, or one of no known format.
    """
    if path.suffix.lower() in SIDECAR_SUFFIXES:
        raise NotAnImage(path, f"a {path.suffix.lower()} file, not an image")
    if path.is_file() and path.stat().st_size == 0:
        raise ScanError(path, "empty file (0 bytes)")
    raise ScanError(path, UNRECOGNISED)


@lru_cache(maxsize=1)
def _shared_plugin_manager() -> pluggy.PluginManager:
    from scintipipe.plugins import make_plugin_manager

    return make_plugin_manager()


def read_views(path: str | Path) -> list[dict[str, Any]]:
    """:func:`load_views` with the process-wide plugins (built-in and installed), made once."""
    return load_views(_shared_plugin_manager(), path)
