"""A real server on a loopback port inside this process, for tests, benchmarks and scripts.

Example:
    >>> with running_server(bundles, tmp_path / "datastore") as url:   # doctest: +SKIP
    ...     MONAILabelClient(url).info()

With ``tokens`` the server needs bearer tokens; with ``ssl_certfile`` it speaks HTTPS and
the URL starts ``https://``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pluggy
import uvicorn

from scintipipe.bundle import Bundle
from scintipipe.plugins import make_plugin_manager
from scintipipe.server.auth import Tokens
from scintipipe.server.datastore_dicomweb import DicomwebSource
from scintipipe.server.run import build_app, tls_files

LOOPBACK = "127.0.0.1"


@contextmanager
def running_server(
    bundles: dict[str, Path],
    datastore_dir: Path,
    max_upload_bytes: int | None = None,
    start_timeout_s: float = 30.0,
    pm: pluggy.PluginManager | None = None,
    tokens: Tokens | None = None,
    cors_origins: Sequence[str] = (),
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    dicomweb: DicomwebSource | None = None,
) -> Iterator[str]:
    """Serve ``bundles`` (name to folder) under uvicorn in a thread; yield the base URL.

    The socket is bound to 127.0.0.1 on a free port before uvicorn starts, so no other
    process can take the port in between. The server stops when the block ends. ``pm``
    defaults to the built-in plugins only (no entry points). ``tokens``, ``cors_origins``
    and the TLS files are those of ``scintipipe serve``; ``dicomweb`` its ``--dicomweb-url``.
    """
    pm = pm or make_plugin_manager(load_entry_points=False)
    app = build_app(
        pm,
        {name: Bundle(path, name=name) for name, path in bundles.items()},
        datastore_dir,
        max_upload_bytes=max_upload_bytes,
        tokens=tokens,
        cors_origins=cors_origins,
        dicomweb=dicomweb,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    certfile, keyfile = tls_files(ssl_certfile, ssl_keyfile)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, ssl_certfile=certfile, ssl_keyfile=keyfile))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if ssl_certfile else 'http'}://{LOOPBACK}:{port}"
    finally:
        app.state.training.wait(timeout=120)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
