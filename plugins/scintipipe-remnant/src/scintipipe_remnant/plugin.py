"""The hooks that make ``remnant`` a scintipipe task; the entry point names this module.

* ``register_tasks``: the task (labels ``absent``, ``present``) and the shipped bundle.
* ``register_simulators``: the two-view 131I neck simulator for ``scintipipe simulate``.
* ``register_centers``: the ``remnant`` centre (a 131I camera) for ``--center remnant``.
* ``register_recipes``: the training recipes (``scintipipe train --recipe remnant_resnet18_paper``).
* ``register_commands``: ``scintipipe remnant-simulate`` (two-frame DICOM studies).
* ``report_run``: ``study_predictions.csv``, one decision per study from its views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scintipipe.api import hookimpl, parse_class_mix
from scintipipe_remnant import BUNDLE_DIR, LABELS, RECIPES_DIR

TASK = "remnant"
DESCRIPTION = "residual thyroid tissue after total thyroidectomy on 131I neck scans (anterior + posterior): absent, present"


@hookimpl
def register_tasks(register: Any) -> None:
    """Register the task and its bundle."""
    register.task(TASK, LABELS, DESCRIPTION)
    register.bundle(TASK, BUNDLE_DIR, task=TASK)


@hookimpl
def register_simulators(register: Any) -> None:
    """Register the simulator (``scintipipe simulate --task remnant --center remnant``)."""
    from scintipipe_remnant.simulator import REMNANT_SIMULATOR

    register.simulator(TASK, REMNANT_SIMULATOR)


@hookimpl
def register_centers(register: Any) -> None:
    """Register the ``remnant`` centre: 131I, high-energy collimator, 2-3 days after a diagnostic dose."""
    from scintipipe_remnant.center import REMNANT_CENTER

    register.center(REMNANT_CENTER)


@hookimpl
def register_recipes(register: Any) -> None:
    """Register the recipes in ``recipes/`` by file name (``remnant_demo_cpu``, ``remnant_resnet18_paper``, ...)."""
    register.recipe_folder(RECIPES_DIR)


@click.command("remnant-simulate")
@click.option("--n", "n", type=click.IntRange(1, 1_000_000), required=True, help="Number of studies.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Same seed, same files.")
@click.option("--class-mix", default=None, help="'absent=W,present=W' (default: the paper's 100:346).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
def remnant_simulate(n: int, seed: int, class_mix: str | None, out: Path) -> None:
    """Simulate two-view (anterior + posterior) 131I neck studies as two-frame NM DICOM."""
    from scintipipe_remnant.dataset import write_studies
    from scintipipe_remnant.simulator import PAPER_CLASS_MIX

    if any(out.glob("case-*.dcm")):
        raise click.UsageError(f"{out} already holds studies; choose another folder")
    counts = write_studies(out, n, seed, parse_class_mix(class_mix, LABELS, PAPER_CLASS_MIX))
    click.echo(f"wrote {n} two-view studies to {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})")


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``scintipipe remnant-simulate``."""
    register.command(remnant_simulate)


@hookimpl
def report_run(cases: list[dict[str, Any]], bundle: Any, out_dir: Path) -> list[Path] | None:
    """Write ``study_predictions.csv`` (the view most in favour of residual tissue decides)."""
    if bundle.task != TASK or not cases:
        return None
    from scintipipe_remnant.study import write_study_predictions

    return [write_study_predictions(cases, bundle.labels, out_dir / "study_predictions.csv")]
