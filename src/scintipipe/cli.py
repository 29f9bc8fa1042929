"""The ``scintipipe`` command line. Plugins add sub-commands through ``register_commands``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from scintipipe import __version__
from scintipipe.dicomnet.pull import PacsAccess, pacs_access_options, pop_pacs_access, pull_study
from scintipipe.errors import BundleError, RegistrationError, ScanError
from scintipipe.executors.options import pop_run_executor, run_executor_options

RUN_EXAMPLES = """
\b
Examples:
  scintipipe run --bundle uptake4 examples/scans --out results
  scintipipe run --bundle my-uptake4/ scan1.dcm scan2.dcm --out results --no-explain
  scintipipe run --bundle uptake4 /data/thyroid --out results --device cuda --batch-size 64
  scintipipe run --bundle uptake4 scans/ --segmenter learned --threads 1
  scintipipe run --bundle uptake4 big-folder/ --no-report --no-explain --workers 2
  scintipipe run --bundle uptake4 odd-exports/ --accept-ood
  scintipipe run --bundle uptake4 --from-pacs http://pacs:8042/dicom-web --study 1.2.3.4 --out results
  scintipipe run --bundle uptake4 --from-pacs dicom://ORTHANC@pacs:4242 --study 1.2.3.4 --out results

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


def plugin_option(option: Any, alternatives: dict[str, dict[str, Any]]) -> click.Option:
    """The ``scintipipe run`` flag of a plugin's option (a :class:`~scintipipe.registry.PluginOption`)."""
    help_text = option.help
    if option.is_flag:
        return click.Option([option.flag, option.name], is_flag=True, default=bool(option.default), help=help_text)
    if option.type is bool:
        return click.Option([f"{option.flag}/--no-{option.flag[2:]}", option.name], default=option.default, help=help_text)
    param_type = option.type
    if option.choose_from:
        named = alternatives.get(option.choose_from) or {}
        param_type = click.Choice(sorted(named))
        help_text += (
            " Registered: " + "; ".join(f"{name} ({entry.description or 'from ' + entry.plugin})" for name, entry in sorted(named.items())) + "."
        )
    elif option.choices:
        param_type = click.Choice(list(option.choices))
    elif option.type is Path:
        param_type = click.Path(path_type=Path)
    return click.Option([option.flag, option.name], type=param_type, default=option.default, show_default=option.default is not None, help=help_text)


def run_plugin_options(ctx: click.Context) -> tuple[Any, dict[str, dict[str, Any]], list[click.Option]]:
    """The plugins' options of ``scintipipe run``: their register, the named alternatives and the click options (built once per command line).

    Raises:
        click.ClickException: a plugin failed to register, or declared an option the core already has.
    """
    from scintipipe.plugins import explainers, plugin_options, segmenters

    root = ctx.find_root()
    pm = plugin_manager(ctx)
    if "run_options" not in root.obj:
        try:
            register = plugin_options(pm)
            alternatives = {"segmenter": segmenters(pm).segmenters, "explainer": explainers(pm).explainers}
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        core = {name for param in run.params for name in (param.name, *param.opts, *param.secondary_opts)}
        params = []
        for option in register.options.values():
            param = plugin_option(option, alternatives)
            taken = sorted(core & {param.name, *param.opts, *param.secondary_opts})
            if taken:
                raise click.ClickException(
                    f"plugin {option.plugin!r} declared option {option.name!r}, but scintipipe run already has {', '.join(taken)}"
                )
            params.append(param)
        root.obj["run_options"] = (register, alternatives, params)
    return root.obj["run_options"]


class RunCommand(click.Command):
    """``scintipipe run``: its own options, then those plugins declare in ``add_options``."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        help_option = self.get_help_option(ctx)
        return [*self.params, *run_plugin_options(ctx)[2], *([help_option] if help_option is not None else [])]


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


@cli.command(cls=RunCommand, epilog=RUN_EXAMPLES)
@click.argument("inputs", nargs=-1, required=False, type=click.Path(path_type=Path))
@click.option("--bundle", "-b", "bundle_name", required=True, help="Registered bundle name (see `scintipipe bundles`) or a bundle folder.")
@click.option(
    "--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True, help="Results folder."
)
@click.option("--explain/--no-explain", default=True, help="Run the explain stage (see --explain-method).")
@click.option("--explain-class", "explain_classes", multiple=True, help="Also explain this label (repeatable; 'all' for every label).")
@click.option("--report/--no-report", default=True, help="Write per-case report folders.")
@click.option(
    "--segment/--no-segment",
    default=True,
    help="Run the segment stage (regions, quantities, uptake); it is skipped with --no-report, where nothing reads them.",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present, else cpu.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option(
    "--accept-ood",
    is_flag=True,
    help="Classify views the gate's content and learned (out-of-distribution) layers refused; reports carry a warning banner. Metadata refusals (CT, MR, wrong radionuclide) stay.",
)
@THREADS_OPTION
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Workers that load, gate and preprocess while the previous batch is classified (0: none, all in one thread; default: processes, one per core; threads, one per core beyond the first, at least 1). For run, --threads defaults to half the cores.",
)
@click.option(
    "--worker-processes/--worker-threads",
    default=True,
    show_default=True,
    help="Fork the --workers as processes (on the CPU, where the platform can fork, for 32 files or more; about 1.6x the rate of threads "
    "on two cores, docs/decisions.md, ADR 15), or keep them threads in this process.",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds one input (a file, or a DICOM study when segmenting) may take through load, gate, preprocess and segment; "
    "an input over it goes to errors.csv and the run goes on (0: no budget). Inputs still working after 30 s get a progress line.",
)
@click.option(
    "--from-pacs",
    metavar="URL",
    help="Fetch --study into OUT/incoming-<study>/ and run on it: by WADO-RS from a DICOMweb root (http://pacs:8042/dicom-web), "
    "or by C-GET (C-MOVE with --move-port) from a DICOM node, dicom://AE@host:port.",
)
@click.option("--study", "study_uid", metavar="UID", help="Study Instance UID to fetch with --from-pacs.")
@pacs_access_options
@run_executor_options
@click.pass_context
def run(
    ctx: click.Context,
    inputs: tuple[Path, ...],
    bundle_name: str,
    out_dir: Path,
    explain: bool,
    explain_classes: tuple[str, ...],
    report: bool,
    segment: bool,
    device: str | None,
    batch_size: int,
    progress: bool | None,
    accept_ood: bool,
    threads: int | None,
    workers: int | None,
    worker_processes: bool,
    time_budget: float,
    from_pacs: str | None,
    study_uid: str | None,
    **plugin_values: Any,
) -> None:
    """Classify scintigrams in INPUTS (files or folders, walked recursively), or a study fetched with --from-pacs.

    The runner's own options end with --slurm-config; the ones after it belong to plugins (their add_options hook).
    """
    from scintipipe.bundle import resolve_bundle
    from scintipipe.loaders.files import iter_input_files
    from scintipipe.plugins import tasks_and_bundles

    if (from_pacs is None) != (study_uid is None):
        raise click.UsageError("--from-pacs and --study go together: give both or neither")
    if not inputs and from_pacs is None:
        raise click.UsageError("Missing argument 'INPUTS...': give files or folders, or --from-pacs URL --study UID")
    pacs_access = pop_pacs_access(plugin_values)  # --pacs-token, --pacs-user, --move-ae, --move-port (docs/dicom_network.md)
    if from_pacs is None and pacs_access.dimse_given:
        raise click.UsageError("--move-ae and --move-port go with --from-pacs dicom://AE@host:port")
    pm = plugin_manager(ctx)
    try:
        bundle = resolve_bundle(bundle_name, tasks_and_bundles(pm).bundles)
        bundle.labels  # noqa: B018  (validates the metadata early)
    except (BundleError, RegistrationError) as exc:
        raise click.UsageError(str(exc)) from exc
    if from_pacs is not None and study_uid is not None:
        inputs = (*inputs, fetch_from_pacs(from_pacs, study_uid, out_dir, pacs_access))
    try:
        files = iter_input_files(inputs)
    except ScanError as exc:
        raise click.UsageError(str(exc)) from exc
    if not files:
        raise click.UsageError(f"no files found in {', '.join(map(str, inputs))}")
    unknown = sorted(set(explain_classes) - set(bundle.labels) - {"all"})
    if unknown:
        raise click.UsageError(f"--explain-class: unknown labels {unknown}; bundle {bundle.name!r} has {bundle.labels}")
    executor, partition_size = pop_run_executor(plugin_values)  # --executor, --scheduler, --dask-workers (docs/scale_out.md)
    register, alternatives, _ = run_plugin_options(ctx)
    try:
        register.resolve(plugin_values, alternatives)  # the plugins' checks, before PyTorch loads
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    import torch  # only now: usage errors above answer without loading PyTorch

    from scintipipe.pipeline import Pipeline, RunOptions, default_device
    from scintipipe.runner import default_torch_threads

    set_threads(threads or default_torch_threads())  # beside the worker threads: half the cores
    if device == "cuda" and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was asked for but no CUDA device is available")
    options = RunOptions(
        device=device or default_device(),
        batch_size=batch_size,
        segment=segment,
        explain=explain,
        report=report,
        progress=progress,
        explain_classes=explain_classes,
        accept_ood=accept_ood,
        plugin_options=plugin_values,
        workers=workers,
        worker_processes=worker_processes,
        time_budget_s=time_budget,
    )
    try:
        bundle.network(options.device)  # load once, fail early on a broken bundle
        if executor is None:
            summary = Pipeline(pm, bundle, options).run(files, out_dir)
        else:  # partitions on Dask workers, merged into the same predictions.csv and errors.csv
            from scintipipe.executors.batch import run_partitioned

            summary = run_partitioned(pm, bundle, options, files, out_dir, executor, ctx.find_root().params.get("plugins_dir"), partition_size)
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    rate = summary.classified / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{summary.classified} views classified from {summary.files} files in {summary.seconds:.1f} s "
        f"({rate:.1f}/s); {len(summary.failures)} failed, {len(summary.skipped)} skipped. Results: {out_dir}",
        err=True,
    )
    for line in failure_lines(summary.failures, out_dir / "errors.csv"):
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)


def fetch_from_pacs(url: str, study_uid: str, out_dir: Path, access: PacsAccess) -> Path:
    """Fetch a study (WADO-RS, C-GET or C-MOVE) into ``OUT/incoming-<study>/``, kept beside the results as the record of what was run on."""
    from scintipipe.extras import MissingExtra, require_extra

    try:
        require_extra("dicom-network", "scintipipe run --from-pacs")
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from exc
    folder = out_dir / f"incoming-{study_uid}"
    try:
        files = pull_study(url, study_uid, folder, access)
    except ScanError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"fetched {len(files)} instances of study {study_uid} from {url} into {folder}", err=True)
    return folder


#: failed inputs named one by one on the console; the rest are counted (all are in errors.csv)
FAILURES_SHOWN = 20


def failure_lines(failures: list[tuple[str, str]], errors_csv: Path) -> list[str]:
    """One ``failed SOURCE: REASON`` line per failed input (the first :data:`FAILURES_SHOWN`), then where all of them are."""
    if not failures:
        return []
    lines = [f"failed {source}: {reason}" for source, reason in failures[:FAILURES_SHOWN]]
    more = len(failures) - FAILURES_SHOWN
    lines.append(f"... and {more} more; every failure is in {errors_csv}" if more > 0 else f"failures are listed in {errors_csv}")
    return lines


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
            bundle.check_trained()
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
        click.echo(
            f"{row['name']} [{row['task']}] from {row['plugin']}: {row['status']}"
            + (f"; v{row['version']}; labels: {labels}" if row["status"] == "ok" else "")
        )


def main() -> None:
    """Entry point of the ``scintipipe`` console script."""
    cli(prog_name="scintipipe")


if __name__ == "__main__":  # pragma: no cover
    main()
