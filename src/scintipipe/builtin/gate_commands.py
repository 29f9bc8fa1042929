"""Built-in ``gate`` command group: ``scintipipe gate fit`` fits a bundle's learned gate and
temperature and writes the model card's gate section; ``scintipipe gate card`` re-renders that
section from ``configs/gate.json`` without refitting.

The work is done by :mod:`scintipipe.gate.fit`; this module is the command line.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import click

from scintipipe import hookimpl
from scintipipe.cli import THREADS_OPTION, set_threads
from scintipipe.gate.policy import DEFAULT_QUANTILE  # the fitting code (torch) is imported when a command runs


def _percent(acc: dict[str, Any]) -> str:
    if not acc.get("n"):
        return "n/a"
    lo, hi = acc["ci95"]
    return f"{acc['accepted']}/{acc['n']} = {100 * acc['rate']:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f})"


GATE_EXAMPLES = """
\b
Examples:
  scintipipe gate fit --bundle uptake4 \\
      --train data/u4-rand-train3000 --train data/u4-rand-exports1200 \\
      --held-out data/u4-rand-test400 --held-out data/u4-rand-exports-test200 \\
      --external data/b-ext302
  scintipipe gate fit --bundle my-uptake4/ --train data/a --held-out data/a-test --method energy
  scintipipe gate fit --bundle remnant --train data/rem-train --held-out data/rem-test --dry-run

\b
Each folder needs a labels.csv (file,label), as scintipipe simulate writes it. Held-out
folders must not overlap the training data. Writes, in the bundle folder:
  models/ood.pt         the fitted statistics (torch.save, plain tensors)
  configs/gate.json     method, threshold, temperature, how they were measured
  docs/README.md        the model card's "Input gate and calibration" section, between
                        <!-- gate:start --> and <!-- gate:end --> (appended when absent)
"""

CARD_EXAMPLES = """
\b
Examples:
  scintipipe gate card --bundle uptake4
  scintipipe gate card --bundle my-uptake4/

\b
Re-renders the model card's "Input gate and calibration" section (docs/README.md, between
<!-- gate:start --> and <!-- gate:end -->, appended when absent) from configs/gate.json,
without refitting: after editing the card by hand, or for a bundle fitted before the
section was generated. It says so when models/model.pt has changed since the fit.
"""


@click.group()
def gate() -> None:
    """The input gate: fit a bundle's out-of-distribution score and temperature."""


@gate.command(epilog=GATE_EXAMPLES)
@click.option("--bundle", "-b", "bundle_name", required=True, help="Bundle name or folder; its configs/gate.json and models/ood.pt are written.")
@click.option(
    "--train",
    "train_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Training data folder (repeat); the OOD score is fitted on it.",
)
@click.option(
    "--held-out",
    "held_out_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Held-out in-distribution folder (repeat): split into a calibration half (threshold, temperature) and a test half (reported).",
)
@click.option(
    "--external",
    "external_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Other-centre folder (repeat): acceptance reported only.",
)
@click.option(
    "--method",
    type=click.Choice(["mahalanobis_blocks", "mahalanobis_layers", "mahalanobis", "energy", "knn", "msp"]),
    default="mahalanobis_blocks",
    show_default=True,
    help="OOD score (see benchmarks/gate_ood.py for the comparison).",
)
@click.option(
    "--quantile",
    type=click.FloatRange(0.5, 1.0),
    default=DEFAULT_QUANTILE,
    show_default=True,
    help="Threshold quantile of the calibration half's scores.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration/test split.")
@click.option(
    "--data-command",
    "data_commands",
    multiple=True,
    help="A command that made one of the data folders (repeat); recorded in configs/gate.json and shown in the model card's reproduce block.",
)
@click.option("--dry-run", is_flag=True, help="Report only; write nothing.")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache features here (keyed by the weights and each labels.csv).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@THREADS_OPTION
@click.option("--progress/--no-progress", default=None)
@click.pass_context
def fit(
    ctx: click.Context,
    bundle_name: str,
    train_dirs: tuple[Path, ...],
    held_out_dirs: tuple[Path, ...],
    external_dirs: tuple[Path, ...],
    method: str,
    quantile: float,
    seed: int,
    data_commands: tuple[str, ...],
    dry_run: bool,
    cache_dir: Path | None,
    device: str | None,
    threads: int | None,
    progress: bool | None,
) -> None:
    """Fit a bundle's learned input gate and softmax temperature on simulated data, and write its model card section."""
    set_threads(threads)
    from scintipipe.bundle import resolve_bundle
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.gate.fit import fit_gate, write_card_section, write_gate
    from scintipipe.pipeline import Pipeline, RunOptions, default_device
    from scintipipe.plugins import tasks_and_bundles

    pm = plugin_manager(ctx)
    try:
        bundle = resolve_bundle(bundle_name, tasks_and_bundles(pm).bundles)
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    overlap = {p.resolve() for p in train_dirs} & {p.resolve() for p in (*held_out_dirs, *external_dirs)}
    if overlap:
        raise click.UsageError(f"folders both in --train and --held-out/--external: {', '.join(map(str, sorted(overlap)))}")
    device = device or default_device()
    # the gate is fitted on the single input a view is gated with, not on the other scales
    options = RunOptions(device=device, segment=False, explain=False, report=False, accept_ood=True, plugin_options={"scale_averaging": False})
    pipeline = Pipeline(pm, bundle, options)
    log = functools.partial(click.echo, err=True)
    try:
        scorer, result = fit_gate(pipeline, train_dirs, held_out_dirs, external_dirs, method, quantile, seed, device, progress, cache_dir, log)
    except (BundleError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    ood, cal = result["ood"], result["calibration"]
    lines = [
        f"bundle {bundle.name} ({bundle.root})",
        f"  {method} fitted on {ood['fitted_on']}",
        f"  threshold {ood['threshold']:.4g}: {ood['threshold_rule']}",
        f"  held-out acceptance (test half): {_percent({**ood['acceptance'], 'rate': ood['acceptance']['held_out']})}",
        *(f"    {name}: {_percent(acc)}" for name, acc in ood["acceptance"]["per_folder"].items()),
        *(f"  external {name}: {_percent(acc)}" for name, acc in ood["acceptance"]["external"].items()),
        f"  temperature {result['temperature']:.3f}; ECE {cal['ece_before']:.4f} (SD {cal['ece_before_sd']:.4f}) -> {cal['ece_after']:.4f} (SD {cal['ece_after_sd']:.4f}) on {cal['n']} test-half views; NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f} (change 95 % CI {cal['nll_change_ci95'][0]:+.4f} to {cal['nll_change_ci95'][1]:+.4f})",
    ]
    click.echo("\n".join(lines))
    if dry_run:
        click.echo("dry run: nothing written", err=True)
        return
    command = "scintipipe gate fit " + " ".join(shlex.quote(a) for a in _command_args(ctx))
    try:
        path = write_gate(bundle.root, scorer, result, command, data_commands)
        card = write_card_section(bundle.root)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"wrote {path}, {bundle.root / ood['statistics']} and the gate section of {card}", err=True)


@gate.command(epilog=CARD_EXAMPLES)
@click.option("--bundle", "-b", "bundle_name", required=True, help="Bundle name or folder; its docs/README.md is written.")
@click.option("--print", "print_only", is_flag=True, help="Print the section; write nothing.")
@click.pass_context
def card(ctx: click.Context, bundle_name: str, print_only: bool) -> None:
    """Render the model card's gate section from configs/gate.json, without refitting."""
    from scintipipe.bundle import resolve_bundle
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.gate.fit import CARD_MARKER, bundle_card_section, write_card_section
    from scintipipe.plugins import tasks_and_bundles

    try:
        bundle = resolve_bundle(bundle_name, tasks_and_bundles(plugin_manager(ctx)).bundles)
    except BundleError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        if print_only:
            click.echo(bundle_card_section(bundle.root))
            return
        written = write_card_section(bundle.root)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"wrote the {CARD_MARKER} section of {written} (bundle {bundle.name})", err=True)


def _command_args(ctx: click.Context) -> list[str]:
    p = ctx.params
    args = ["--bundle", p["bundle_name"]]
    for opt, key in (("--train", "train_dirs"), ("--held-out", "held_out_dirs"), ("--external", "external_dirs")):
        for value in p[key]:
            args += [opt, str(value)]
    args += ["--method", p["method"]]
    if p["quantile"] != DEFAULT_QUANTILE:
        args += ["--quantile", f"{p['quantile']:g}"]
    if p["seed"]:
        args += ["--seed", str(p["seed"])]
    return args


@hookimpl
def register_commands(register: Any) -> None:
    """Add the ``gate`` group (``gate fit``, ``gate card``)."""
    register.command(gate)
