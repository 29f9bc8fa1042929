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
  scintipipe serve --bundle my-uptake4/ --host 0.0.0.0 --port 8000   (reachable from other machines)

\b
Then, from Python:
  from monailabel.client import MONAILabelClient
  client = MONAILabelClient("http://127.0.0.1:8000")
  client.info()["models"]                 # uptake4, uptake4_roi, uptake4_gradcam
  client.infer("uptake4", image_id="", params={}, file="scan.dcm")
API docs: http://127.0.0.1:8000/docs
"""


@click.command(epilog=SERVE_EXAMPLES)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--bundle", "-b", "bundle_names", multiple=True, help="Bundle name or folder to serve (repeat); default: every registered usable bundle.")
@click.option("--datastore", "datastore_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("scintipipe-datastore"), show_default=True, help="Folder of uploaded images and readers' labels (kept across restarts).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@click.option("--max-upload-mb", type=click.FloatRange(0.001), default=64.0, show_default=True, help="Largest upload accepted (413 above it).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info", show_default=True)
@click.pass_context
def serve(ctx: click.Context, port: int, host: str, bundle_names: tuple[str, ...], datastore_dir: Path, device: str | None, max_upload_mb: float, log_level: str) -> None:
    """Serve the bundles over the MONAI Label REST API (3D Slicer, OHIF, MONAILabelClient)."""
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.pipeline import default_device
    from scintipipe.server.run import build_app, served_bundles
    from scintipipe.server.run import serve as run_server

    pm = plugin_manager(ctx)
    try:
        device = device or default_device()
        bundles = served_bundles(pm, bundle_names, device=device, log=lambda m: click.echo(m, err=True))
        app = build_app(pm, bundles, datastore_dir, device=device, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"serving {', '.join(bundles)} on http://{host}:{port} (API docs at /docs); datastore {datastore_dir.resolve()}", err=True)
    run_server(app, host=host, port=port, log_level=log_level)


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``serve``."""
    register.command(serve)
