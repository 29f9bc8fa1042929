"""Built-in ``serve`` command: the MONAI Label-compatible server, registered like a plugin's command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scintipipe import hookimpl

SERVE_EXAMPLES = """
\b
Examples:
  scintipipe serve --port 8000
  scintipipe serve --bundle uptake4 --bundle remnant --datastore ~/scintipipe-datastore
  scintipipe serve --bundle my-uptake4/ --host 0.0.0.0 --token-file tokens.txt --ssl-certfile cert.pem --ssl-keyfile key.pem
      (reachable from other machines: a token is required)
  scintipipe serve --token-file tokens.txt --cors-origin https://ohif.example.org
  scintipipe serve --dicomweb-url http://pacs:8042/dicom-web --datastore ~/pacs-cache
      (the images the PACS lists; SCINTIPIPE_DICOMWEB_TOKEN or _USER when it needs credentials)

\b
tokens.txt (chmod 600), one token per line; make one with
python -c "import secrets; print(secrets.token_urlsafe(32))":
  admin: <token that may also upload, label, delete and train>
  read: <token that may list, download and infer>

\b
Then, from Python:
  from monailabel.client import MONAILabelClient
  client = MONAILabelClient("http://127.0.0.1:8000")
  client.update_auth({"token_type": "Bearer", "access_token": TOKEN})   # when tokens are set
  client.info()["models"]                 # uptake4, uptake4_roi, uptake4_gradcam
  client.infer("uptake4", image_id="", params={}, file="scan.dcm")
API docs: http://127.0.0.1:8000/docs
"""


@click.command(epilog=SERVE_EXAMPLES)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option(
    "--bundle", "-b", "bundle_names", multiple=True, help="Bundle name or folder to serve (repeat); default: every registered usable bundle."
)
@click.option(
    "--datastore",
    "datastore_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("scintipipe-datastore"),
    show_default=True,
    help="Folder of uploaded images and readers' labels (kept across restarts).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@click.option("--max-upload-mb", type=click.FloatRange(0.001), default=64.0, show_default=True, help="Largest upload accepted (413 above it).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info", show_default=True)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="File of bearer tokens, one per line: 'admin: TOKEN' or 'read: TOKEN' (preferred: not shown by ps).",
)
@click.option(
    "--token",
    envvar="SCINTIPIPE_SERVER_TOKEN",
    default=None,
    help="An admin bearer token [env SCINTIPIPE_SERVER_TOKEN]. Required, with --read-token or --token-file, when --host is not loopback.",
)
@click.option(
    "--read-token",
    envvar="SCINTIPIPE_SERVER_READ_TOKEN",
    default=None,
    help="A read-only bearer token [env SCINTIPIPE_SERVER_READ_TOKEN]: info, listings, downloads, inference.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Let a browser app at this origin call the server (repeat; e.g. an OHIF viewer). Default: none (CORS off).",
)
@click.option(
    "--dicomweb-url",
    metavar="URL",
    default=None,
    help="List and fetch the images from this PACS's DICOMweb root (QIDO-RS, WADO-RS); --datastore is then its local cache (docs/server.md).",
)
@click.option(
    "--dicomweb-token",
    envvar="SCINTIPIPE_DICOMWEB_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="--dicomweb-url: send 'Authorization: Bearer TOKEN'.",
)
@click.option(
    "--dicomweb-user",
    envvar="SCINTIPIPE_DICOMWEB_USER",
    show_envvar=True,
    metavar="USER:PASSWORD",
    help="--dicomweb-url: HTTP basic authentication (prefer the environment variable: arguments show in ps).",
)
@click.option(
    "--ssl-certfile", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, help="Serve HTTPS with this certificate (PEM)."
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The certificate's private key (PEM); needs --ssl-certfile.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    port: int,
    host: str,
    bundle_names: tuple[str, ...],
    datastore_dir: Path,
    device: str | None,
    max_upload_mb: float,
    log_level: str,
    token_file: Path | None,
    token: str | None,
    read_token: str | None,
    cors_origins: tuple[str, ...],
    dicomweb_url: str | None,
    dicomweb_token: str | None,
    dicomweb_user: str | None,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
) -> None:
    """Serve the bundles over the MONAI Label REST API (3D Slicer, OHIF, MONAILabelClient).

    Bound to a loopback address without a token, the server is open to this machine's
    users; on any other address it refuses to start without one (docs/security.md).
    """
    from scintipipe.extras import MissingExtra, require_extra

    try:
        require_extra("server", "scintipipe serve")
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from exc
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.pipeline import default_device
    from scintipipe.server.auth import TokenError, Tokens, check_bind, describe, is_loopback, loose_permissions
    from scintipipe.server.datastore import DatastoreError
    from scintipipe.server.errors import BadGateway
    from scintipipe.server.run import build_app, served_bundles
    from scintipipe.server.run import serve as run_server

    if ssl_keyfile and not ssl_certfile:
        raise click.UsageError("--ssl-keyfile needs --ssl-certfile")
    dicomweb = None
    if dicomweb_url:
        from scintipipe.server.datastore_dicomweb import source_from_options

        try:
            require_extra("dicom-network", "scintipipe serve --dicomweb-url")
            dicomweb = source_from_options(dicomweb_url, dicomweb_token, dicomweb_user)
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from exc
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--dicomweb-url") from exc
    try:
        tokens = Tokens.from_options(token=token, read_token=read_token, token_file=token_file)
        check_bind(host, tokens)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from exc
    if token_file is not None and loose_permissions(token_file):
        click.echo(f"warning: {token_file} can be read by other users; chmod 600 it", err=True)
    pm = plugin_manager(ctx)
    try:
        device = device or default_device()
        bundles = served_bundles(pm, bundle_names, device=device, log=lambda m: click.echo(m, err=True))
        app = build_app(
            pm,
            bundles,
            datastore_dir,
            device=device,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            tokens=tokens,
            cors_origins=cors_origins,
            dicomweb=dicomweb,
        )
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    except (BadGateway, DatastoreError) as exc:
        raise click.ClickException(f"cannot open the DICOMweb datastore: {exc}") from exc
    scheme = "https" if ssl_certfile else "http"
    click.echo(f"serving {', '.join(bundles)} on {scheme}://{host}:{port} (API docs at /docs); datastore {datastore_dir.resolve()}", err=True)
    if dicomweb is not None:
        click.echo(f"images from the PACS at {dicomweb.name} (QIDO-RS, WADO-RS); the datastore caches them and keeps the labels", err=True)
    click.echo(f"access: {describe(tokens)}; CORS: {', '.join(cors_origins) or 'off'}", err=True)
    if tokens and not ssl_certfile and not is_loopback(host):
        click.echo(
            "warning: tokens travel in clear text over plain HTTP; give --ssl-certfile/--ssl-keyfile or put a TLS proxy in front (docs/server.md)",
            err=True,
        )
    run_server(app, host=host, port=port, log_level=log_level, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``serve``."""
    register.command(serve)
