"""Start the server: pick the bundles, open the datastore, run uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from scintipipe.bundle import Bundle, resolve_bundle
from scintipipe.errors import BundleError
from scintipipe.plugins import tasks_and_bundles

if TYPE_CHECKING:
    from fastapi import FastAPI

    from scintipipe.server.auth import Tokens
    from scintipipe.server.datastore_dicomweb import DicomwebSource


def served_bundles(pm: pluggy.PluginManager, names: Sequence[str], device: str = "cpu", log: Callable[[str], None] = print) -> dict[str, Bundle]:
    """The bundles to serve by name: those asked for, else every registered usable one.

    Args:
        pm: the plugin manager.
        names: bundle names or folders (``--bundle``); empty for all registered ones
            whose network loads (the others are skipped with a note).
        device: where the networks will run.
        log: where notes on skipped bundles go.

    Raises:
        BundleError: a named bundle cannot be found or read, or none is usable.
    """
    registered = tasks_and_bundles(pm).bundles
    bundles: dict[str, Bundle] = {}
    if names:
        for name in names:
            bundle = resolve_bundle(name, registered)
            bundles[bundle.name] = bundle
        return bundles
    for name in sorted(registered):
        try:
            bundle = Bundle(registered[name].path, name=name)
            bundle.network(device)
            bundles[name] = bundle
        except BundleError as exc:
            log(f"not serving bundle {name!r}: {exc}")
    if not bundles:
        raise BundleError("no usable bundle is registered; give one with --bundle FOLDER")
    return bundles


def build_app(
    pm: pluggy.PluginManager,
    bundles: dict[str, Bundle],
    datastore_dir: Path,
    device: str = "cpu",
    max_upload_bytes: int | None = None,
    tokens: Tokens | None = None,
    cors_origins: Sequence[str] = (),
    dicomweb: DicomwebSource | None = None,
) -> FastAPI:
    """The application for ``bundles`` over the datastore folder ``datastore_dir``.

    ``tokens`` and ``cors_origins`` go to :func:`~scintipipe.server.app.create_app`. With
    ``dicomweb`` the folder caches the images that PACS lists
    (:class:`~scintipipe.server.datastore_dicomweb.DicomwebDatastore`).

    Raises:
        BadGateway: ``dicomweb`` cannot be reached (the message names its URL).
        DatastoreError: the folder caches another PACS.
    """
    from scintipipe.server.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
    from scintipipe.server.datastore import Datastore
    from scintipipe.server.models import ModelService

    if dicomweb is not None:
        from scintipipe.server.datastore_dicomweb import DicomwebDatastore

        datastore: Datastore = DicomwebDatastore(datastore_dir, dicomweb)
    else:
        datastore = Datastore(datastore_dir)
    service = ModelService(pm, bundles, device=device, work_dir=datastore.root / ".work")
    return create_app(service, datastore, max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES, tokens=tokens, cors_origins=tuple(cors_origins))


def serve(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run ``app`` under uvicorn until interrupted, over TLS when ``ssl_certfile`` is given.

    ``ssl_keyfile`` may be left out when the certificate file also holds the key.
    """
    import uvicorn

    certfile, keyfile = tls_files(ssl_certfile, ssl_keyfile)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile)


def tls_files(ssl_certfile: Path | None, ssl_keyfile: Path | None) -> tuple[str | None, str | None]:
    """uvicorn's ``ssl_certfile`` and ``ssl_keyfile``: both ``None`` without a certificate."""
    if ssl_certfile is None:
        return None, None
    return str(ssl_certfile), str(ssl_keyfile) if ssl_keyfile else None
