"""Built-in ``train`` and ``evaluate`` commands, registered through ``register_commands`` like a plugin's."""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Any

import click

from scintipipe import hookimpl
from scintipipe.cli import THREADS_OPTION, set_threads
from scintipipe.executors.jobs import JobsFailed
from scintipipe.executors.options import executor_options, settings_from_options
from scintipipe.extras import MissingExtra

TRAIN_EXAMPLES = """
\b
Examples:
  scintipipe simulate --task uptake4 --n 500 --seed 7 --center a --out data/center-a
  scintipipe train --bundle uptake4 --data data/center-a --labels data/center-a/labels.csv --out my-uptake4/
  scintipipe run --bundle my-uptake4/ scans/ --out results/
  scintipipe train --bundle uptake4 --recipe uptake4_paper --init-weights inception_v3.pt ...
  scintipipe train --bundle my-uptake4/ ... --resume      (continue an interrupted run)
  scintipipe train --bundle uptake4 ... --nproc 2         (DistributedDataParallel; or: torchrun --nproc_per_node 2 -m scintipipe train ...)
  scintipipe train --bundle uptake4 ... --out sweep/ --sweep seed=0,1,2 --sweep optimizer.lr=0.001,0.003 --workers 2
                                                          (a bundle per point in sweep/<point>/, each a job; docs/scale_out.md)
"""


def resolve_recipe(ctx: click.Context, bundle_name: str, recipe_name: str | None) -> dict[str, Any]:
    """The recipe to train with: ``--recipe``, else the bundle's own, else a shipped one."""
    from scintipipe.bundle import resolve_bundle
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.plugins import tasks_and_bundles
    from scintipipe.training.recipe import RecipeError, load_recipe

    try:
        if recipe_name:
            return load_recipe(recipe_name, plugin_manager(ctx))
        try:
            bundle = resolve_bundle(bundle_name, tasks_and_bundles(plugin_manager(ctx)).bundles)
            own = bundle.root / "configs/recipe.json"
            if own.is_file():
                return load_recipe(own)
        except BundleError:
            pass
        return load_recipe(bundle_name, plugin_manager(ctx))
    except RecipeError as exc:
        raise click.UsageError(f"{exc}. Give --recipe FILE, or --bundle with a bundle that has configs/recipe.json") from exc


def base_bundle_root(ctx: click.Context, bundle_name: str) -> Path | None:
    """The folder of the bundle ``--bundle`` names (registered name or folder), complete or not; ``None`` for a recipe name."""
    from scintipipe.cli import plugin_manager
    from scintipipe.plugins import tasks_and_bundles

    registered = tasks_and_bundles(plugin_manager(ctx)).bundles
    if bundle_name in registered:
        return Path(registered[bundle_name].path)
    path = Path(bundle_name).expanduser()
    return path if path.is_dir() else None


def adapt_gate_command(command: str, bundle: str) -> str | None:
    """A recorded ``scintipipe gate fit`` command with its ``--bundle`` replaced by ``bundle`` (``None`` if it is not one)."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    if words[:3] != ["scintipipe", "gate", "fit"] or "--bundle" not in words[:-1]:
        return None
    words[words.index("--bundle") + 1] = bundle
    return shlex.join(words)


def gate_fit_hint(out_dir: Path, base_name: str, base_gate: dict[str, Any], kept: dict[str, Any], labels_csv: Path) -> str:
    """The one line ``scintipipe train`` prints about the new bundle's input gate.

    Args:
        out_dir: the new bundle.
        base_name: what ``--bundle`` named.
        base_gate: the base bundle's ``configs/gate.json`` (``{}`` when it has none).
        kept: what the new bundle's ``configs/gate.json`` kept from it.
        labels_csv: the training labels (their folder is offered as ``--train`` when it
            is a ``labels.csv`` folder).
    """
    out = shlex.quote(str(out_dir))
    kept_text = f"radionuclides {', '.join(kept['radionuclides'])} kept from {base_name} in configs/gate.json; " if kept.get("radionuclides") else ""
    adapted = adapt_gate_command(base_gate.get("command", ""), str(out_dir))
    if adapted:
        fit = f"{adapted}  (the folders {base_name}'s gate was fitted on: give your own if you trained on other data)"
    else:
        train = shlex.quote(str(labels_csv.parent)) if labels_csv.name == "labels.csv" else "TRAINING_FOLDER"
        fit = f"scintipipe gate fit --bundle {out} --train {train} --held-out HELD_OUT_FOLDER"
    return f"input gate: {kept_text}the learned out-of-distribution score and the temperature belong to the weights and were not copied; fit them for this bundle: {fit}"


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of ``torchrun`` (its environment names a world of several)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def train_across_processes(ctx: click.Context, nproc: int, threads: int | None, **kwargs: Any) -> Any:
    """``scintipipe train --nproc N`` (spawns N processes), or one rank of ``torchrun -m scintipipe train``.

    Returns:
        The :class:`~scintipipe.training.train.TrainResult` on rank 0, ``None`` on the other ranks.
    """
    import os
    from types import SimpleNamespace

    import torch
    import torch.distributed as dist

    from scintipipe.cli import plugin_manager
    from scintipipe.training.train import train_bundle, train_distributed

    if kwargs.get("resume"):
        raise click.UsageError("--resume continues a one-process run; leave out --nproc (or torchrun) to resume")
    if launched_by_torchrun():
        cuda = str(kwargs["device"]).startswith("cuda")
        if cuda:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            kwargs["device"] = f"cuda:{local_rank}"
        dist.init_process_group("nccl" if cuda else "gloo")
        try:
            rank = dist.get_rank()
            result = train_bundle(plugin_manager(ctx), log=(lambda m: click.echo(m, err=True)) if rank == 0 else (lambda m: None), **kwargs)
        finally:
            dist.destroy_process_group()
        return result if rank == 0 else None
    done = train_distributed(nproc, kwargs, ctx.find_root().params.get("plugins_dir"), threads=threads)
    return SimpleNamespace(bundle_dir=Path(done["bundle_dir"]), validation=done["validation"], best_epoch=done["best_epoch"])


def training_source_options(ctx: click.Context) -> tuple[dict[str, Any], list[click.Option]]:
    """The training sources plugins offer in ``register_training_sources`` and their ``train`` options (built once per command line).

    Raises:
        click.ClickException: a plugin failed to register, or offered a flag ``train`` already has.
    """
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import RegistrationError
    from scintipipe.plugins import training_sources

    pm = plugin_manager(ctx)
    root = ctx.find_root()
    if "train_sources" not in root.obj:
        try:
            sources = training_sources(pm).sources
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        core = {name for param in train.params for name in (param.name, *param.opts, *param.secondary_opts)}
        params = []
        for source in sources.values():
            taken = sorted(core & {source.name, source.flag})
            if taken:
                raise click.ClickException(
                    f"plugin {source.plugin!r} offered training source {source.name!r}, but scintipipe train already has {', '.join(taken)}"
                )
            help_text = f"{source.help} Training fold only; validation stays real. Repeatable. (plugin {source.plugin})".strip()
            params.append(click.Option([source.flag, source.name], multiple=True, metavar=source.metavar, help=help_text))
        root.obj["train_sources"] = (sources, params)
    return root.obj["train_sources"]


def extra_training_from_sources(
    ctx: click.Context, values: dict[str, tuple[str, ...]], recipe: dict[str, Any], out_dir: Path, resume: bool
) -> list[Any]:
    """The :class:`~scintipipe.training.data.ExtraTraining` list of the training-source options given.

    Raises:
        click.UsageError: a source refused its values (``ValueError``), naming the flag.
    """
    from scintipipe.cli import plugin_manager
    from scintipipe.registry import TrainingSourceContext

    sources, _ = training_source_options(ctx)
    context = TrainingSourceContext(out_dir=out_dir, recipe=recipe, pm=plugin_manager(ctx), resume=resume)
    extras: list[Any] = []
    for name, given in values.items():
        if not given:
            continue
        source = sources[name]
        try:
            extras.extend(source.make(tuple(given), context))
        except ValueError as exc:
            raise click.UsageError(f"{source.flag}: {exc}") from exc
    return extras


class TrainCommand(click.Command):
    """``scintipipe train``: its own options, then the training sources plugins offer (``register_training_sources``)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        help_option = self.get_help_option(ctx)
        return [*self.params, *training_source_options(ctx)[1], *([help_option] if help_option is not None else [])]


@click.command(cls=TrainCommand, epilog=TRAIN_EXAMPLES)
@click.option(
    "--bundle",
    "-b",
    "bundle_name",
    required=True,
    help="Bundle (name or folder) or shipped recipe whose recipe to train with; a bundle's configs/gate.json radionuclides are kept.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder the CSV's file names are relative to (default: the CSV's folder).",
)
@click.option(
    "--labels", "labels_csv", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV with columns file,label."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="The new bundle folder.")
@click.option("--recipe", "recipe_name", default=None, help="Recipe file or shipped recipe name (e.g. uptake4_paper).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override the recipe's epochs.")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Override the recipe's seed (with an ensemble recipe: train one network with this seed instead of the ensemble).",
)
@click.option(
    "--init-weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Local weights file for transfer learning (nothing is downloaded).",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option(
    "--nproc",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Training processes (DistributedDataParallel: gloo on CPU, one per GPU with --device cuda); like torchrun --nproc_per_node N -m scintipipe train ... (docs/scale_out.md).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@click.option("--data-description", default="", help="What the data is, for the model card (e.g. 'simulated centre-a scans').")
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Train a bundle per value of a recipe key (seed, epochs, optimizer.lr, ...; repeat for a grid) into OUT/<point>/, each a job on --executor; finished points are kept in OUT/jobs/.",
)
@executor_options()
@THREADS_OPTION
@click.option("--progress/--no-progress", default=None)
@click.pass_context
def train(
    ctx: click.Context,
    bundle_name: str,
    data_dir: Path | None,
    labels_csv: Path,
    out_dir: Path,
    recipe_name: str | None,
    epochs: int | None,
    seed: int | None,
    init_weights: Path | None,
    resume: bool,
    nproc: int,
    device: str | None,
    data_description: str,
    threads: int | None,
    progress: bool | None,
    sweeps: tuple[str, ...],
    **source_values: Any,
) -> None:
    """Train a bundle on labelled scans (a folder and a file,label CSV).

    When --bundle names a bundle, the new bundle keeps its configs/gate.json radionuclides;
    the learned gate and the temperature are fitted afterwards with scintipipe gate fit.
    The options after --progress come from plugins (register_training_sources): extra
    data for the training fold only.
    """
    set_threads(threads)
    executor = settings_from_options(source_values)  # takes the executor options out: the rest are the plugins' training sources
    from scintipipe.bundle_writer import inherited_gate_settings
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import ScintipipeError
    from scintipipe.pipeline import default_device
    from scintipipe.training.data import LabelsError
    from scintipipe.training.train import train_bundle

    if any(source_values.values()) and (nproc > 1 or launched_by_torchrun()):
        raise click.UsageError("extra training sources (such as --augment-with) go with one training process; leave out --nproc (or torchrun)")
    recipe = resolve_recipe(ctx, bundle_name, recipe_name)
    if epochs is not None:
        recipe["epochs"] = epochs
    if seed is not None:
        recipe["seed"] = seed
        recipe.pop("ensemble_seeds", None)  # --seed trains one network, even from an ensemble recipe
    if data_description:
        recipe["trained_on"] = data_description
    base_root = base_bundle_root(ctx, bundle_name)  # read before training: OUT may be this very folder
    base_gate_path = base_root / "configs/gate.json" if base_root is not None else None
    try:
        kept = inherited_gate_settings(base_root)
        base_gate = json.loads(base_gate_path.read_text()) if base_gate_path is not None and base_gate_path.is_file() else {}
    except ValueError as exc:
        raise click.UsageError(f"--bundle {bundle_name}: {exc}") from exc
    if sweeps:
        from scintipipe.executors.sweeps import train_sweep

        if nproc > 1 or resume or any(source_values.values()):
            raise click.UsageError("--sweep trains each point in one process from the start: leave out --nproc, --resume and extra training sources")
        try:
            train_sweep(
                plugin_manager(ctx),
                recipe,
                sweeps,
                labels_csv,
                out_dir,
                data_dir=data_dir,
                device=device or default_device(),
                init_weights=init_weights,
                data_description=data_description,
                gate_settings=kept or None,
                executor=executor,
                plugins_dir=ctx.find_root().params.get("plugins_dir"),
                threads=threads,
                progress=progress,
                log=lambda m: click.echo(m, err=True),
            )
        except (JobsFailed, MissingExtra) as exc:
            raise click.ClickException(str(exc)) from exc
        except (ScintipipeError, ValueError) as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo((out_dir / "sweep.md").read_text())
        return
    if executor.kind != "local" or executor.workers:
        raise click.UsageError("--executor and --workers go with --sweep (one training runs on more processes with --nproc or torchrun)")
    extras = extra_training_from_sources(ctx, source_values, recipe, out_dir, resume)
    try:
        if nproc > 1 or launched_by_torchrun():
            result = train_across_processes(
                ctx,
                nproc,
                threads,
                recipe=recipe,
                data_dir=data_dir,
                labels_csv=labels_csv,
                out_dir=out_dir,
                device=device or default_device(),
                init_weights=init_weights,
                resume=resume,
                data_description=data_description,
                progress=progress,
                gate_settings=kept or None,
            )
            if result is None:  # a rank other than 0 under torchrun: rank 0 reports
                return
        else:
            result = train_bundle(
                plugin_manager(ctx),
                recipe,
                data_dir,
                labels_csv,
                out_dir,
                device=device or default_device(),
                init_weights=init_weights,
                resume=resume,
                data_description=data_description,
                progress=progress,
                log=lambda m: click.echo(m, err=True),
                gate_settings=kept or None,
                extra_training=extras,
            )
    except LabelsError as exc:
        raise click.UsageError(str(exc)) from exc
    except ScintipipeError as exc:  # e.g. a training source that could not deliver its files
        raise click.ClickException(str(exc)) from exc
    overall = result.validation.get("overall", {})
    acc = overall.get("accuracy", {})
    value = acc.get("value") if isinstance(acc, dict) else acc
    done = (
        f"best epoch {result.best_epoch + 1}, validation accuracy {value}"
        if "ensemble_seeds" not in recipe
        else f"an ensemble of seeds {', '.join(map(str, recipe['ensemble_seeds']))}; each member's validation is in {out_dir}/members/*/docs/README.md"
    )
    click.echo(f"bundle written to {result.bundle_dir} ({done}); use: scintipipe run --bundle {result.bundle_dir} SCANS", err=True)
    click.echo(gate_fit_hint(out_dir, bundle_name, base_gate, kept, labels_csv), err=True)


EVALUATE_EXAMPLES = """
\b
Examples:
  scintipipe evaluate --bundle uptake4 --labels data/center-b/labels.csv --out eval/ data/center-b
  scintipipe evaluate --bundle uptake4 --bundle my-uptake4/ --labels labels.csv --out eval/ scans/
  scintipipe evaluate --bundle uptake4 --recipe uptake4_paper --labels labels.csv --cv 5 --out cv/ scans/
  scintipipe evaluate --bundle remnant --labels labels.csv --splits 10 --test-size 0.25 --out splits/ scans/
  scintipipe evaluate --bundle disease --labels labels.csv --readers reader_calls.csv --out eval/ scans/
  scintipipe evaluate --bundle remnant --labels labels.csv --splits 10 --workers 2 --out splits/ scans/      (a 2-process LocalCluster)
  scintipipe evaluate ... --splits 10 --executor dask --scheduler tcp://HOST:8786      (or --executor slurm --slurm-config slurm.yaml --workers 10)

\b
Held-out evaluation writes, per bundle: metrics.json, table.md (the Table 2 layout of the uptake4 study, Zhao et al. 2021),
metrics.csv, confusion.png, roc.png, predictions.csv; with several bundles also
comparison.md (DeLong per class, McNemar) and roc_comparison.png. --cv/--splits retrain
each bundle's recipe per split and write summary.md (mean +- SD, Mann-Whitney U).
"""


@click.command(epilog=EVALUATE_EXAMPLES)
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--bundle", "-b", "bundle_names", multiple=True, required=True, help="Bundle name or folder (repeat to compare).")
@click.option(
    "--labels",
    "labels_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with columns file,label (file relative to DATA_DIR).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipe", "recipe_names", multiple=True, help="With --cv/--splits: recipes to compare instead of the bundles' own.")
@click.option(
    "--readers",
    "readers_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV file,reader,label of physicians' calls to compare with each model.",
)
@click.option("--cv", "folds", type=click.IntRange(2), default=None, help="Stratified k-fold cross-validation, retraining per fold.")
@click.option("--splits", type=click.IntRange(1), default=None, help="Repeated stratified random train/test splits, retraining per split.")
@click.option("--test-size", type=click.FloatRange(0.05, 0.95), default=0.25, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override the recipes' epochs (resampling designs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None)
@click.option(
    "--scale-averaging/--no-scale-averaging",
    default=True,
    show_default=True,
    help="Held-out evaluation: average over the scales each bundle declares, as `scintipipe run` does (--no-scale-averaging: one input per view).",
)
@THREADS_OPTION
@click.option("--progress/--no-progress", default=None)
@executor_options()
@click.pass_context
def evaluate(
    ctx: click.Context,
    data_dir: Path,
    bundle_names: tuple[str, ...],
    labels_csv: Path,
    out_dir: Path,
    recipe_names: tuple[str, ...],
    readers_csv: Path | None,
    folds: int | None,
    splits: int | None,
    test_size: float,
    epochs: int | None,
    seed: int,
    device: str | None,
    scale_averaging: bool,
    threads: int | None,
    progress: bool | None,
    **executor_values: Any,
) -> None:
    """Evaluate bundles on labelled scans in DATA_DIR, or run a resampling experiment.

    With --cv/--splits each recipe x split is one job: --executor runs them in this process
    (default), on a LocalCluster (--workers N), a Dask scheduler or Slurm; finished jobs are
    kept in OUT/jobs/ and a rerun into the same OUT runs only the others.
    """
    set_threads(threads)
    executor = settings_from_options(executor_values)
    from scintipipe.bundle import resolve_bundle
    from scintipipe.cli import plugin_manager
    from scintipipe.errors import BundleError
    from scintipipe.pipeline import default_device
    from scintipipe.plugins import tasks_and_bundles
    from scintipipe.training.data import LabelsError
    from scintipipe.training.evaluate import evaluate_bundles, resampling_experiment
    from scintipipe.training.recipe import RecipeError, load_recipe

    if folds and splits:
        raise click.UsageError("choose one of --cv and --splits")
    pm = plugin_manager(ctx)
    device = device or default_device()
    log = functools.partial(click.echo, err=True)
    n_splits = folds or splits
    try:
        if n_splits:
            recipes = {}
            if recipe_names:
                for name in recipe_names:
                    recipe = load_recipe(name, pm)
                    recipes[recipe.get("name", Path(name).stem)] = recipe
            else:
                for name in bundle_names:
                    recipe = resolve_recipe(ctx, name, None)
                    recipes[recipe.get("name", name) if recipe.get("name", name) not in recipes else name] = recipe
            for recipe in recipes.values():
                if epochs:
                    recipe["epochs"] = epochs
            resampling_experiment(
                pm,
                recipes,
                labels_csv,
                data_dir,
                out_dir,
                design="kfold" if folds else "splits",
                n_splits=n_splits,
                test_size=test_size,
                seed=seed,
                device=device,
                progress=progress,
                log=log,
                executor=executor,
                plugins_dir=ctx.find_root().params.get("plugins_dir"),
                threads=threads,
            )
            click.echo((out_dir / "summary.md").read_text())
        else:
            if executor.kind != "local" or executor.workers:
                raise click.UsageError("--executor and --workers go with --cv or --splits (held-out evaluation runs in this process)")
            registered = tasks_and_bundles(pm).bundles
            bundles = [resolve_bundle(name, registered) for name in bundle_names]
            evaluate_bundles(
                pm,
                bundles,
                labels_csv,
                data_dir,
                out_dir,
                device=device,
                progress=progress,
                log=log,
                readers_csv=readers_csv,
                scale_averaging=scale_averaging,
            )
            table = out_dir / "table.md" if len(bundles) == 1 else out_dir / "comparison.md"
            click.echo(table.read_text())
    except (BundleError, RecipeError, LabelsError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    except (JobsFailed, MissingExtra) as exc:
        raise click.ClickException(str(exc)) from exc


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``train`` and ``evaluate``."""
    register.command(train)
    register.command(evaluate)
