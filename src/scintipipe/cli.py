"""The ``scintipipe`` command line. Plugins add sub-commands through ``register_commands``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from scintipipe import __version__
from scintipipe.errors import BundleError, RegistrationError, ScanError

RUN_EXAMPLES = """
\b
Examples:
  scintipipe run --bundle uptake4 examples/scans --out results
  scintipipe run --bundle my-uptake4/ scan1.dcm scan2.dcm --out results --no-explain
  scintipipe run --bundle uptake4 /data/thyroid --out results --device cuda --batch-size 64
  scintipipe run --bundle uptake4 scans/ --segmenter learned --threads 1
  scintipipe run --bundle uptake4 odd-exports/ --accept-ood

\b
Outputs in OUT:
  predictions.csv     source,label,confidence,prob_<label>...,in_distribution,ood_score
  errors.csv          source,stage,error for every input that failed; the gate's
                      refusals have stage gate:metadata, gate:content or gate:ood
  <case>/report.json  per-view report (skipped with --no-report)
  <case>/report.html  the report for a reader, with scan.png, regions.png, heatmap_*.png
  <case>/report_sr.dcm, overlay_sc.dcm   DICOM SR and Secondary Capture (DICOM sources)
  index.html          one row per view, linking to each report

\b
The input gate: CT, MR, photographs, text, other organs and radionuclides the bundle was
not made for are refused; syringe, point-source and flood images are skipped and used
for the uptake of the thyroid views of their DICOM study. --accept-ood classifies what
the content and learned layers refused, with a warning banner in every report.

\b
Exit status: 0 all inputs processed, 1 some failed (see errors.csv), 2 usage error.
"""


THREADS_OPTION = click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="CPU threads for PyTorch (default: PyTorch's choice). On a shared or small machine 1 can be much faster than oversubscribing.",
)


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to PyTorch."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class PluginCommandGroup(click.Group):
    """A group that also lists the commands plugins register."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        from scintipipe.plugins import commands

        try:
            return commands(plugin_manager(ctx)).commands
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)


def plugin_manager(ctx: click.Context) -> Any:
    """The run's plugin manager, built once from the group's ``--plugins-dir``."""
    from scintipipe.plugins import make_plugin_manager

    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    if "pm" not in root.obj:
        plugins_dir = root.params.get("plugins_dir")
        root.obj["pm"] = make_plugin_manager(plugins_dir=plugins_dir)
    return root.obj["pm"]


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scintipipe")
@click.option(
    "--plugins-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="SCINTIPIPE_PLUGINS_DIR",
    is_eager=True,  # so `--plugins-dir X --help` lists X's commands
    help="Folder of one-file plugins (*.py) to load as well.",
)
@click.pass_context
def cli(ctx: click.Context, plugins_dir: Path | None) -> None:
    """Thyroid scintigraphy pipeline: load, preprocess, segment, classify, explain, report.

    \b
    Start with:
      scintipipe bundles          what can classify
      scintipipe run --help       classify scans
      scintipipe plugins          what is loaded
    """
    ctx.ensure_object(dict)


@cli.command(epilog=RUN_EXAMPLES)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--bundle", "-b", "bundle_name", required=True, help="Registered bundle name (see `scintipipe bundles`) or a bundle folder.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True, help="Results folder.")
@click.option("--explain/--no-explain", default=True, help="Run the explain stage (Grad-CAM).")
@click.option("--explain-class", "explain_classes", multiple=True, help="Also explain this label (repeatable; 'all' for every label).")
@click.option("--report/--no-report", default=True, help="Write per-case report folders.")
@click.option("--segment/--no-segment", default=True, help="Run the segment stage (regions, quantities, uptake); it is skipped with --no-report, where nothing reads them.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present, else cpu.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--explain-method", type=click.Choice(["gradcam", "gradcampp", "occlusion"]), default="gradcam", show_default=True, help="Saliency method of the explain stage.")
@click.option("--syringe-full", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Full-syringe DICOM image: adds the 99mTc thyroid uptake.")
@click.option("--syringe-empty", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Empty-syringe (residual) DICOM image for the uptake.")
@click.option("--dicom/--no-dicom", default=True, help="Write a DICOM SR and Secondary Capture per DICOM source.")
@click.option("--pdf", is_flag=True, help="Also print each case report to PDF (needs Chromium).")
@click.option(
    "--segmenter",
    type=click.Choice(["classical", "learned"]),
    default=None,
    help="Segment stage: classical (top-hat, GrabCut) or learned (the thyroid-seg U-Net). Default: $SCINTIPIPE_SEGMENTER, else classical.",
)
@click.option("--accept-ood", is_flag=True, help="Classify views the gate's content and learned (out-of-distribution) layers refused; reports carry a warning banner. Metadata refusals (CT, MR, wrong radionuclide) stay.")
@THREADS_OPTION
@click.pass_context
def run(ctx: click.Context, inputs: tuple[Path, ...], bundle_name: str, out_dir: Path, explain: bool, explain_classes: tuple[str, ...], report: bool, segment: bool, device: str | None, batch_size: int, progress: bool | None, explain_method: str, syringe_full: Path | None, syringe_empty: Path | None, dicom: bool, pdf: bool, segmenter: str | None, accept_ood: bool, threads: int | None) -> None:
    """Classify scintigrams in INPUTS (files or folders, walked recursively)."""
    from scintipipe.bundle import resolve_bundle
    from scintipipe.loaders.files import iter_input_files
    from scintipipe.plugins import tasks_and_bundles
    from scintipipe.report.chromium import find_chromium

    pm = plugin_manager(ctx)
    try:
        bundle = resolve_bundle(bundle_name, tasks_and_bundles(pm).bundles)
        bundle.labels  # noqa: B018  (validates the metadata early)
    except (BundleError, RegistrationError) as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        files = iter_input_files(inputs)
    except ScanError as exc:
        raise click.UsageError(str(exc)) from exc
    if not files:
        raise click.UsageError(f"no files found in {', '.join(map(str, inputs))}")
    unknown = sorted(set(explain_classes) - set(bundle.labels) - {"all"})
    if unknown:
        raise click.UsageError(f"--explain-class: unknown labels {unknown}; bundle {bundle.name!r} has {bundle.labels}")
    if syringe_empty and not syringe_full:
        raise click.UsageError("--syringe-empty needs --syringe-full")
    if pdf and find_chromium() is None:
        raise click.UsageError("--pdf needs Chromium (Debian: apt-get install -y chromium)")
    import torch  # only now: usage errors above answer without loading PyTorch

    from scintipipe.pipeline import Pipeline, RunOptions, default_device

    set_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was asked for but no CUDA device is available")
    options = RunOptions(
        device=device or default_device(), batch_size=batch_size, segment=segment, explain=explain, report=report, progress=progress, explain_classes=explain_classes,
        explain_method=explain_method, syringe_full=syringe_full, syringe_empty=syringe_empty, dicom=dicom, pdf=pdf, segmenter=segmenter, accept_ood=accept_ood,
    )
    try:
        bundle.network(options.device)  # load once, fail early on a broken bundle
        summary = Pipeline(pm, bundle, options).run(files, out_dir)
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    rate = summary.classified / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{summary.classified} views classified from {summary.files} files in {summary.seconds:.1f} s "
        f"({rate:.1f}/s); {len(summary.failures)} failed, {len(summary.skipped)} skipped. Results: {out_dir}",
        err=True,
    )
    if summary.failures:
        click.echo(f"failures are listed in {out_dir / 'errors.csv'}", err=True)
    ctx.exit(summary.exit_code)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List loaded plugins and the hooks each implements."""
    from scintipipe.plugins import describe_plugins

    rows = describe_plugins(plugin_manager(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        origin = "built-in" if row["builtin"] else f"version {row['version'] or '?'}"
        click.echo(f"{row['name']} ({origin}): {', '.join(row['hooks']) or 'no hooks'}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def bundles(ctx: click.Context, as_json: bool) -> None:
    """List registered bundles with their task, labels and status."""
    from scintipipe.bundle import Bundle
    from scintipipe.plugins import tasks_and_bundles

    register = tasks_and_bundles(plugin_manager(ctx))
    rows = []
    for name, entry in sorted(register.bundles.items()):
        row: dict[str, Any] = {"name": name, "task": entry.task, "plugin": entry.plugin, "path": str(entry.path)}
        try:
            bundle = Bundle(entry.path, name=name)
            row.update(version=bundle.version, labels=bundle.labels, clinical_use=bundle.clinical_use, status="ok")
        except BundleError as exc:
            row.update(status=f"unusable: {exc}")
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no bundles registered")
    for row in rows:
        labels = ", ".join(row.get("labels", []))
        click.echo(f"{row['name']} [{row['task']}] from {row['plugin']}: {row['status']}" + (f"; v{row['version']}; labels: {labels}" if row["status"] == "ok" else ""))


def main() -> None:
    """Entry point of the ``scintipipe`` console script."""
    cli(prog_name="scintipipe")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
