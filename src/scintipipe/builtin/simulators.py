"""Registers the built-in simulator (``uptake4``), the built-in centres and the ``simulate`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scintipipe import hookimpl
from scintipipe.registry import parse_class_mix  # still importable from here; public as scintipipe.api.parse_class_mix

SIMULATE_EXAMPLES = """
\b
Examples:
  scintipipe simulate --task uptake4 --n 500 --seed 7 --center a --out data/center-a
  scintipipe simulate --task uptake4 --n 300 --seed 8 --center b --out data/center-b
  scintipipe simulate --task uptake4 --n 40 --center siemens --syringes --out data/siemens
  scintipipe simulate --task uptake4 --n 3000 --center randomised --class-mix balanced --out data/randomised
  scintipipe simulate --task uptake4 --n 400 --class-mix balanced --out data/balanced
  scintipipe simulate --task uptake4 --n 100 --class-mix focal_increased=1,heterogeneous=1 --out data/nodules
  scintipipe simulate --task uptake4 --n 200 --display-exports 0.3 --out data/with-exports

\b
Writes in OUT:
  case-NNNNN.dcm         NM Image Storage, 16-bit counts, anterior view
  case-NNNNN.png/.jpg    with --display-exports: 8-bit display exports (framed, windowed,
                         maybe inverted or coloured, annotated, JPEG) instead of DICOM
  labels.csv             file,label
  truth.csv              true uptake, injected activity, times, counts, mask file
  cases.jsonl            full simulation metadata per case
  masks/*.nii.gz         label map per case (table in masks/labels.json)
  syringes/              full and empty syringe images (with --syringes)
  contact_sheet.png      a look at the first cases of each label
  simulation.json        settings and label counts

The same arguments always write byte-identical files. An OUT that already holds a
simulated data set is refused unless --overwrite.
"""


def _labels_and_mix(task: str, factory: Any, ctx: click.Context, center: str) -> tuple[tuple[str, ...], dict[str, float]]:
    labels = getattr(factory, "labels", None)
    if labels is not None:
        mix = factory.default_class_mix(center) if hasattr(factory, "default_class_mix") else {label: 1.0 for label in labels}
        return tuple(labels), mix
    from scintipipe.cli import plugin_manager
    from scintipipe.plugins import tasks_and_bundles

    tasks = tasks_and_bundles(plugin_manager(ctx)).tasks
    if task not in tasks:
        raise click.UsageError(f"simulator for {task!r} gives no labels and no task {task!r} is registered")
    labels = tasks[task].labels
    return labels, {label: 1.0 for label in labels}


@click.command(epilog=SIMULATE_EXAMPLES)
@click.option("--task", "-t", required=True, help="Task whose simulator to use (see the examples; plugins add more).")
@click.option("--n", "n", type=click.IntRange(1, 10_000_000), required=True, help="Number of cases.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Data set seed: same seed, same files.")
@click.option(
    "--center",
    "-c",
    default="a",
    show_default=True,
    help="Acquisition profile: a, b, siemens, randomised (a new camera, count level, matrix, collimator and framing per case; what the shipped bundles train on), or one a plugin registers (remnant for 131I).",
)
@click.option("--out", "-o", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--class-mix", default=None, help="'balanced', 'label=weight,...' or weights in label order; default: the task's mix for this centre.")
@click.option("--syringes/--no-syringes", default=False, help="Also write full and empty syringe images (uptake truth).")
@click.option(
    "--display-exports",
    "display_exports",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    metavar="FRACTION",
    help="Share of cases written as PNG/JPEG display exports instead of DICOM (the other cases are unchanged).",
)
@click.option("--overwrite", is_flag=True, help="Replace a data set already in OUT (only the files the simulator writes).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_context
def simulate(
    ctx: click.Context,
    task: str,
    n: int,
    seed: int,
    center: str,
    out: Path,
    class_mix: str | None,
    syringes: bool,
    display_exports: float,
    overwrite: bool,
    progress: bool | None,
) -> None:
    """Simulate labelled planar scintigrams for a task, as DICOM with ground truth."""
    import sys

    from scintipipe.cli import plugin_manager
    from scintipipe.errors import RegistrationError
    from scintipipe.plugins import centers, simulators
    from scintipipe.simulate.writer import write_dataset

    try:
        registered = simulators(plugin_manager(ctx)).simulators
        profiles = centers(plugin_manager(ctx)).centers
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    if task not in registered:
        raise click.BadParameter(f"no simulator for task {task!r}; available: {', '.join(sorted(registered)) or 'none'}", param_hint="--task")
    if center not in profiles:
        raise click.BadParameter(f"unknown centre {center!r}; known: {', '.join(sorted(profiles)) or 'none'}", param_hint="--center")
    profile = profiles[center]
    factory = registered[task]
    labels, default_mix = _labels_and_mix(task, factory, ctx, center)
    mix = parse_class_mix(class_mix, labels, default_mix)
    show = sys.stderr.isatty() if progress is None else progress

    def bar(indices: Any) -> Any:
        from tqdm import tqdm

        return tqdm(indices, total=n, desc=f"simulate {task} ({center})", unit="case", disable=not show)

    try:
        summary = write_dataset(
            task, factory, labels, profile, out, n, seed, mix, syringes=syringes, progress=bar, overwrite=overwrite, display_exports=display_exports
        )
    except FileExistsError as exc:
        raise click.UsageError(f"{exc} (--overwrite)") from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    counts = ", ".join(f"{label} {count}" for label, count in summary.counts_per_label.items())
    click.echo(f"wrote {n} cases to {out} ({counts})")


@hookimpl
def register_simulators(register: Any) -> None:
    """Register the ``uptake4`` phantom."""
    from scintipipe.simulate.uptake4 import UPTAKE4_SIMULATOR

    register.simulator("uptake4", UPTAKE4_SIMULATOR)


@hookimpl
def register_centers(register: Any) -> None:
    """Register the built-in centres ``a``, ``b``, ``siemens`` and ``randomised``."""
    from scintipipe.simulate.centers import CENTERS

    for profile in CENTERS.values():
        register.center(profile)


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``scintipipe simulate``."""
    register.command(simulate)
