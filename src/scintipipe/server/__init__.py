"""``scintipipe serve``: a MONAI Label-compatible REST server over the pipeline.

:func:`~scintipipe.server.app.create_app` builds the FastAPI application from a
:class:`~scintipipe.server.models.ModelService` (the served bundles) and a
:class:`~scintipipe.server.datastore.Datastore` (images and readers' labels on disk);
:func:`~scintipipe.server.run.serve` runs it under uvicorn. ``docs/server.md`` describes
the routes, the models and the measured load figures.

Its names are imported lazily (PEP 562), so that importing a light submodule such as
:mod:`scintipipe.server.served` (what a plugin's served model subclasses) does not load
FastAPI, the pipeline and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"create_app": "scintipipe.server.app", "Datastore": "scintipipe.server.datastore", "ModelService": "scintipipe.server.models"}

__all__ = ["Datastore", "ModelService", "create_app"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
