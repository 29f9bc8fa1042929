"""Built-in ``listen`` and ``outbox`` commands: a DICOM C-STORE listener that runs the pipeline on the studies it receives.

Nothing heavy is imported here (pynetdicom, PyTorch): ``scintipipe --help`` stays fast.
The work is in :mod:`scintipipe.dicomnet`; see docs/dicom_network.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from scintipipe import hookimpl

LISTEN_EXAMPLES = """
\b
Examples:
  scintipipe listen --bundle uptake4 --out /srv/scintipipe
      (AE title SCINTIPIPE on 127.0.0.1:11112; results stay on disk)
  scintipipe listen --host 0.0.0.0 --port 11112 --allow-ae GAMMACAM1 --allow-ae ORTHANC \\
      --bundle uptake4 --out /srv/scintipipe --send-to ORTHANC@pacs.example.org:4242
  scintipipe listen --bundle uptake4 --out /srv/scintipipe --stow-url http://pacs.example.org:8042/dicom-web

\b
OUT holds incoming/ (received), results/<StudyInstanceUID>/ (as `scintipipe run --out`),
journal/ (what was processed), outbox/ (results waiting to be sent: `scintipipe outbox OUT`).
Stop with Ctrl-C or SIGTERM: the study being processed is finished first; what was
received and not processed is processed at the next start.
"""

OUTBOX_EXAMPLES = """
\b
Examples:
  scintipipe outbox /srv/scintipipe            what waits to be sent, and why
  scintipipe outbox /srv/scintipipe --retry    try every waiting entry now
  scintipipe outbox /srv/scintipipe --sent --json
"""


def _ae_title(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    titles = value if isinstance(value, tuple) else (value,)
    for title in titles:
        if not 0 < len(title.strip()) <= 16 or "\\" in title or not title.isascii():
            raise click.BadParameter(f"{title!r}: an AE title is 1 to 16 ASCII characters, no backslash")
    return value


def _destinations(send_to: tuple[str, ...], stow_urls: tuple[str, ...]) -> list[str]:
    from scintipipe.dicomnet.sender import CStoreDestination, parse_destination

    for spec in send_to:
        try:
            destination = parse_destination(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--send-to") from exc
        if not isinstance(destination, CStoreDestination):
            raise click.BadParameter(f"{spec!r}: give AE@host:port (a URL goes to --stow-url)", param_hint="--send-to")
    for url in stow_urls:
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not an http(s):// URL", param_hint="--stow-url")
    return [*send_to, *(url.rstrip("/") for url in stow_urls)]


def listen_plugin_options(ctx: click.Context) -> list[click.Option]:
    """The options plugins declare in ``add_options``, as ``scintipipe run`` has them (``--segmenter``, ``--dicom``...).

    Raises:
        click.ClickException: a plugin's option has the name of one of listen's own.
    """
    from scintipipe.cli import run_plugin_options

    params: list[click.Option] = run_plugin_options(ctx)[2]
    own = {name for param in listen.params for name in (param.name, *param.opts, *param.secondary_opts)}
    for param in params:
        taken = sorted(own & {param.name, *param.opts, *param.secondary_opts})
        if taken:
            raise click.ClickException(f"a plugin declared option {param.name!r}, but scintipipe listen already has {', '.join(taken)}")
    return params


class ListenCommand(click.Command):
    """``scintipipe listen``: its own options, then those plugins declare in ``add_options`` (as ``scintipipe run``)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        help_option = self.get_help_option(ctx)
        return [*self.params, *listen_plugin_options(ctx), *([help_option] if help_option is not None else [])]


@click.command(cls=ListenCommand, epilog=LISTEN_EXAMPLES)
@click.option(
    "--ae-title",
    default="SCINTIPIPE",
    show_default=True,
    callback=_ae_title,
    help="Our AE title (senders' called AE title; calling AE title when sending results).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface: cameras and PACS on other machines)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=11112, show_default=True, help="DICOM port (0: any free one, printed at start).")
@click.option("--bundle", "-b", "bundle_name", required=True, help="Registered bundle name (see `scintipipe bundles`) or a bundle folder.")
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of received studies, results, journal and outbox (kept across restarts).",
)
@click.option(
    "--allow-ae",
    "allowed_aes",
    multiple=True,
    callback=_ae_title,
    metavar="AE_TITLE",
    help="Calling AE title let in (repeat); default: any. Not authentication: also restrict the port with a firewall.",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Process a study when none of its instances arrived for this long.",
)
@click.option(
    "--send-to", "send_to", multiple=True, metavar="AE@HOST:PORT", help="C-STORE the results (SR, Secondary Capture) to this DICOM node (repeat)."
)
@click.option(
    "--stow-url",
    "stow_urls",
    multiple=True,
    metavar="URL",
    help="STOW-RS the results to this DICOMweb service (repeat), e.g. http://pacs:8042/dicom-web.",
)
@click.option(
    "--retry-seconds", type=click.FloatRange(0.01), default=5.0, show_default=True, help="Wait before trying a failed send again; doubles each time."
)
@click.option("--retry-max-seconds", type=click.FloatRange(0.01), default=600.0, show_default=True, help="Longest wait between attempts.")
@click.option(
    "--max-batch",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Most studies processed together in one pipeline pass (those ready at the same time share one).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present, else cpu.")
@click.option("--explain/--no-explain", default=True, help="Run the explain stage.")
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Loader threads of the pipeline (threads always: a long-running listener does not fork; default as for `scintipipe run --worker-threads`).",
)
@click.pass_context
def listen(
    ctx: click.Context,
    ae_title: str,
    host: str,
    port: int,
    bundle_name: str,
    out_dir: Path,
    allowed_aes: tuple[str, ...],
    idle_seconds: float,
    send_to: tuple[str, ...],
    stow_urls: tuple[str, ...],
    retry_seconds: float,
    retry_max_seconds: float,
    max_batch: int,
    device: str | None,
    explain: bool,
    workers: int | None,
    **plugin_values: Any,
) -> None:
    """Receive studies by DICOM C-STORE, run the bundle on each, send the results back.

    A study is processed, with the same pipeline as `scintipipe run` (all its files
    together, so a syringe image gives the uptake), when none of its instances arrived for
    --idle-seconds; the studies ready at the same time share one pipeline pass, and their
    results go to each destination over one association. Received instances are on disk before they are acknowledged; a study
    is processed once, even across crashes and restarts (docs/dicom_network.md).
    The options after --workers belong to plugins (their add_options hook), as for `run`.
    """
    import logging
    import signal
    import threading

    from scintipipe.extras import MissingExtra, require_extra

    try:
        require_extra("dicom-network", "scintipipe listen")
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from exc
    destinations = _destinations(send_to, stow_urls)
    from scintipipe.bundle import resolve_bundle
    from scintipipe.cli import plugin_manager, run_plugin_options
    from scintipipe.errors import BundleError, RegistrationError
    from scintipipe.plugins import tasks_and_bundles

    pm = plugin_manager(ctx)
    try:
        bundle = resolve_bundle(bundle_name, tasks_and_bundles(pm).bundles)
        bundle.labels  # noqa: B018  (validates the metadata early)
    except (BundleError, RegistrationError) as exc:
        raise click.UsageError(str(exc)) from exc
    register, alternatives, _ = run_plugin_options(ctx)
    try:
        register.resolve(plugin_values, alternatives)  # the plugins' checks, before anything is received
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # one line per association and per study from scintipipe; only warnings from pynetdicom, highdicom and dicomweb-client
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("scintipipe.dicomnet").setLevel(logging.INFO)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # its connection errors repeat what our lines say
    if host not in ("127.0.0.1", "::1", "localhost") and not allowed_aes:
        click.echo("warning: listening beyond this machine and letting any calling AE title in; give --allow-ae and firewall the port", err=True)

    from scintipipe.dicomnet.listener import Listener
    from scintipipe.dicomnet.outbox import Backoff
    from scintipipe.dicomnet.processing import deferred_pipeline

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--device cuda was asked for but no CUDA device is available")
    process, warm_up = deferred_pipeline(
        pm, bundle, device, explain=explain, workers=workers, plugin_options=plugin_values
    )  # PyTorch loads in the background
    listener = Listener(
        out_dir,
        process,
        ae_title=ae_title,
        host=host,
        port=port,
        allowed_aes=allowed_aes,
        idle_seconds=idle_seconds,
        destinations=destinations,
        backoff=Backoff(retry_seconds, retry_max_seconds),
        warm_up=warm_up,
        max_batch=max_batch,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise SystemExit(130)  # a second Ctrl-C: leave now; what was received is on disk
        click.echo(f"{signal.Signals(signum).name}: stopping (finishing the study being processed; again to leave at once)", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            listener.start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
        while not stop.wait(0.5):
            if not listener.running:
                break
    finally:
        listener.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if listener.error is not None:
        raise click.ClickException(f"bundle {bundle.name!r} cannot be used: {type(listener.error).__name__}: {listener.error}")


@click.command(epilog=OUTBOX_EXAMPLES)
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--retry", is_flag=True, help="Try every waiting entry now, whatever its back-off (exit code 1 when some still wait).")
@click.option("--sent", "show_sent", is_flag=True, help="Also list the entries already delivered.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def outbox(ctx: click.Context, out_dir: Path, retry: bool, show_sent: bool, as_json: bool) -> None:
    """List the results of `scintipipe listen --out OUT_DIR` waiting to be sent (and why), or send them now."""
    from scintipipe.dicomnet.outbox import OutboxError, open_outbox

    try:
        box = open_outbox(out_dir)
    except OutboxError as exc:
        raise click.UsageError(str(exc)) from exc
    outcomes: dict[str, str] = {}
    if retry:
        from scintipipe.extras import MissingExtra, require_extra

        try:
            require_extra("dicom-network", "scintipipe outbox --retry")
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from exc
        from scintipipe.dicomnet.listener import by_destination, deliver_batch

        for entries in by_destination(box.pending()).values():  # one association (or request) per destination
            for entry_id, result in box.attempt_batch(entries, deliver_batch).items():
                outcomes[entry_id] = {True: "sent", False: "failed", None: "busy (another process is sending it)"}[result]
    pending = box.pending()
    rows = [{**entry.summary(), "state": "waiting"} for entry in pending]
    if show_sent:
        rows += [{**entry.summary(), "state": "sent"} for entry in box.sent()]
    if as_json:
        click.echo(json.dumps({"retried": outcomes, "entries": rows}, indent=2))
    else:
        for entry_id, outcome in outcomes.items():
            click.echo(f"retry {entry_id}: {outcome}")
        if not rows:
            click.echo("outbox empty: nothing waits to be sent")
        for row in rows:
            when = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["next_attempt"]))
                if row["state"] == "waiting" and row.get("next_attempt")
                else "-"
            )
            click.echo(
                f"{row['state']:8} {row['id']}  study {row['study']} run {row['run']} -> {row['destination']}: {len(row['files'] or [])} files, {row['attempts']} attempts"
            )
            if row["state"] == "waiting":
                click.echo(f"         next attempt {when}; last error: {row.get('last_error') or '-'}")
    if retry and pending:
        ctx.exit(1)


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``listen`` and ``outbox``."""
    register.command(listen)
    register.command(outbox)
