"""Per-process state of a worker: built once, used by every job the process runs.

A Dask worker is a long-lived process; its plugin manager, bundles (with their loaded
networks) and preprocessed data sets are kept here so that each is made once per worker,
not once per job.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_PLUGIN_MANAGERS: dict[str | None, Any] = {}
_BUNDLES: dict[str, Any] = {}
_DATA: OrderedDict[str, Any] = OrderedDict()

#: preprocessed data sets a worker keeps (each is a whole labelled set's inputs)
DATA_SETS_KEPT = 2


def plugin_manager(plugins_dir: str | None) -> Any:
    """The plugin manager with the built-in, installed and ``plugins_dir`` plugins (one per process)."""
    if plugins_dir not in _PLUGIN_MANAGERS:
        from scintipipe.plugins import make_plugin_manager

        _PLUGIN_MANAGERS[plugins_dir] = make_plugin_manager(plugins_dir=Path(plugins_dir) if plugins_dir else None)
    return _PLUGIN_MANAGERS[plugins_dir]


def bundle(path: str) -> Any:
    """The :class:`~scintipipe.bundle.Bundle` at ``path`` (its networks load once per process)."""
    if path not in _BUNDLES:
        from scintipipe.bundle import Bundle

        _BUNDLES[path] = Bundle(Path(path))
    return _BUNDLES[path]


def cached_data(key: str, make: Callable[[], Any]) -> Any:
    """``make()``'s value, kept under ``key`` (the last :data:`DATA_SETS_KEPT` are kept)."""
    if key in _DATA:
        _DATA.move_to_end(key)
        return _DATA[key]
    value = make()
    _DATA[key] = value
    while len(_DATA) > DATA_SETS_KEPT:
        _DATA.popitem(last=False)
    return value
