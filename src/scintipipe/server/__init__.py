"""``scintipipe serve``: a MONAI Label-compatible REST server over the pipeline.

:func:`~scintipipe.server.app.create_app` builds the FastAPI application from a
:class:`~scintipipe.server.models.ModelService` (the served bundles) and a
:class:`~scintipipe.server.datastore.Datastore` (images and readers' labels on disk);
:func:`~scintipipe.server.run.serve` runs it under uvicorn. ``docs/server.md`` describes
the routes, the models and the measured load figures.
"""

from scintipipe.server.app import create_app
from scintipipe.server.datastore import Datastore
from scintipipe.server.models import ModelService

__all__ = ["Datastore", "ModelService", "create_app"]
