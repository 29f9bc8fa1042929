"""The hooks of scintipipe-gan; the entry point names this module.

* ``register_commands``: ``scintipipe gan train``, ``scintipipe gan check``,
  ``scintipipe gan sample`` and ``scintipipe gan srgan train`` (:mod:`scintipipe_gan.superres_cli`).
* ``register_training_sources``: ``scintipipe train --augment-with GANDIR[:ratio][:sr=SRDIR]``, synthetic
  scans in the training fold only (:mod:`scintipipe_gan.augment`).
* ``register_networks``: ``cross_feature_resnet`` (:mod:`scintipipe_gan.crossfeature`).
* ``register_recipes``: its two phases, ``uptake4_cross_feature_single`` and
  ``uptake4_cross_feature_cross`` (:mod:`scintipipe_gan.cross_training`), which
  ``scintipipe gan cross-train`` runs in a row.

This module imports click and ``scintipipe.api`` only; PyTorch and MONAI load when a
command runs, so ``scintipipe --help`` stays fast with the plugin installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scintipipe.api import hookimpl
from scintipipe_gan.superres_cli import srgan

GAN_EXAMPLES = """
\b
Examples:
  scintipipe simulate --task uptake4 --n 400 --center a --class-mix balanced --out data/a
  scintipipe gan train --task uptake4 --data data/a --out gan/ --steps 3000
  scintipipe gan train --task uptake4 --data data/a --out gan/ --steps 6000 --resume
  scintipipe gan check gan/ --data data/a
  scintipipe gan sample gan/ --n 200 --out synthetic/
  scintipipe gan srgan train --task uptake4 --out sr/ --steps 1000
  scintipipe gan sample gan/ --n 200 --out synthetic-sr/ --super-resolve sr/
  scintipipe train --bundle uptake4 --data data/a --labels data/a/labels.csv --out my-uptake4/ --augment-with gan/:0.5
  scintipipe train --bundle uptake4 --data data/a --labels data/a/labels.csv --out my-uptake4-sr/ --augment-with gan/:0.5:sr=sr/
  scintipipe gan cross-train --data data/a --out cross-feature/      (the cross-feature ResNet, two phases)
"""


#: ``--labels`` of the commands that read a folder of labelled scans
LABELS_OPTION = click.option(
    "--labels",
    "labels_csv",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="file,label CSV (default: DATA/labels.csv).",
)


@click.group("gan", epilog=GAN_EXAMPLES)
def gan() -> None:
    """Class-conditional DCGAN augmentation (the GAN-augmented thyroid SPECT study), with quality gates computed without downloads."""


def _progress_option(fn: Any) -> Any:
    return click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")(fn)


@gan.command("train")
@click.option("--task", required=True, help="Task whose labels and bundle preprocessing to use (e.g. uptake4).")
@click.option(
    "--bundle",
    "bundle_name",
    default=None,
    help="Bundle (name or folder) whose preprocessing and network to use; default: the bundle named like the task.",
)
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of labelled scans.")
@LABELS_OPTION
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="The GAN folder.")
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True, help="Total generator steps (with --resume: up to this many).")
@click.option(
    "--image-size",
    type=click.Choice(["16", "32", "64", "128"]),
    default="64",
    show_default=True,
    help="GAN image side (the bundle input is resized to it).",
)
@click.option("--batch-size", type=click.IntRange(2), default=32, show_default=True)
@click.option("--width", type=click.IntRange(4), default=32, show_default=True, help="Channels of the finest layer of both networks.")
@click.option("--z-dim", type=click.IntRange(2), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option(
    "--diffaugment/--no-diffaugment", default=True, show_default=True, help="Translation and cutout of real and fake before the discriminator."
)
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@_progress_option
def gan_train(
    task: str,
    bundle_name: str | None,
    data_dir: Path,
    labels_csv: Path | None,
    out_dir: Path,
    steps: int,
    image_size: str,
    batch_size: int,
    width: int,
    z_dim: int,
    lr: float,
    diffaugment: bool,
    checkpoint_every: int,
    seed: int,
    resume: bool,
    progress: bool | None,
) -> None:
    """Train a class-conditional DCGAN on labelled scans, preprocessed by the task's bundle."""
    from scintipipe.api import ScintipipeError
    from scintipipe_gan.data import find_bundle, load_real
    from scintipipe_gan.train import GanFolderError, GanSettings, train_gan

    try:
        bundle = find_bundle(bundle_name or task)
        if bundle.task != task:
            raise click.UsageError(f"bundle {bundle.name!r} solves task {bundle.task!r}, not {task!r}")
        real = load_real(bundle, data_dir, labels_csv, progress=progress)
        for source, reason in real.failures:
            click.echo(f"left out {source}: {reason}", err=True)
        settings = GanSettings(
            image_size=int(image_size),
            z_dim=z_dim,
            width=width,
            batch_size=batch_size,
            steps=steps,
            lr=lr,
            diffaugment=diffaugment,
            seed=seed,
            checkpoint_every=checkpoint_every,
        )
        run = train_gan(
            task, bundle, real, out_dir, settings, data_dir, labels_csv, resume=resume, progress=progress, log=lambda m: click.echo(m, err=True)
        )
    except (GanFolderError, ScintipipeError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"GAN at step {run.steps_done} written to {out_dir} ({run.seconds:.0f} s); next: scintipipe gan check {out_dir} --data {data_dir}")


@gan.command("check")
@click.argument("gan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The labelled scans the GAN was trained on.",
)
@LABELS_OPTION
@click.option("--n-per-class", type=click.IntRange(2), default=64, show_default=True, help="Synthetic images per class.")
@click.option(
    "--min-diversity",
    type=click.FloatRange(0),
    default=0.3,
    show_default=True,
    help="A class below this share of the real feature diversity has collapsed.",
)
@click.option(
    "--max-similarity",
    type=click.FloatRange(-1, 1),
    default=0.97,
    show_default=True,
    help="A sample correlated above this with a training image is a near copy.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@_progress_option
def gan_check(
    gan_dir: Path,
    data_dir: Path,
    labels_csv: Path | None,
    n_per_class: int,
    min_diversity: float,
    max_similarity: float,
    seed: int,
    progress: bool | None,
) -> None:
    """Measure a GAN: FID and KID from the bundle's own features, per-class diversity, memorisation; writes quality.json."""
    from scintipipe.api import ScintipipeError
    from scintipipe_gan.data import find_bundle, load_real
    from scintipipe_gan.quality import Gates, check_gan
    from scintipipe_gan.train import GanFolderError, read_config

    try:
        config = read_config(gan_dir)
        bundle = find_bundle(config["bundle"]["path"])
        real = load_real(bundle, data_dir, labels_csv, progress=progress)
        report = check_gan(gan_dir, real, bundle, n_per_class, Gates(min_diversity, max_similarity), seed, log=click.echo)
    except (GanFolderError, ScintipipeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"written {gan_dir / 'quality.json'}")
    if not report["passed"]:
        raise SystemExit(1)


@gan.command("sample")
@click.argument("gan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--n", "n", type=click.IntRange(1, 1_000_000), required=True, help="Number of synthetic scans.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--class-mix", default=None, help="'balanced', 'label=W,...' or weights in label order (default: the training data's).")
@click.option("--center", default="a", show_default=True, help="Simulator centre whose camera and radionuclide the headers name.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same images.")
@click.option(
    "--super-resolve",
    "super_resolve",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="SRGAN stage folder (gan srgan train) that raises the GAN images to the bundle's input size.",
)
def gan_sample(gan_dir: Path, n: int, out_dir: Path, class_mix: str | None, center: str, seed: int, super_resolve: Path | None) -> None:
    """Write labelled synthetic scans (DICOM tagged synthetic, labels.csv, contact sheet), as simulate does."""
    from scintipipe.api import parse_class_mix
    from scintipipe_gan.sample import SamplingRefused, sample_scans
    from scintipipe_gan.train import GanFolderError, read_config

    try:
        config = read_config(gan_dir)
        mix = parse_class_mix(class_mix, tuple(config["labels"]), {k: float(v) for k, v in config["class_counts"].items()}) if class_mix else None
        summary = sample_scans(gan_dir, n, out_dir, mix, seed=seed, center=center, super_resolve=super_resolve)
    except (GanFolderError, SamplingRefused, FileExistsError, KeyError) as exc:
        raise click.UsageError(str(exc).strip("'\"")) from exc
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts_per_label"].items() if v)
    click.echo(
        f"wrote {n} synthetic scans ({summary['method']}) to {out_dir} ({counts}); {summary['redrawn_for_memorisation']} redrawn for memorisation"
    )


@gan.command("cross-train")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of labelled scans.")
@LABELS_OPTION
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The final bundle (phase one goes to OUT/single-feature).",
)
@click.option("--single-recipe", default="uptake4_cross_feature_single", show_default=True, help="Phase one: single-feature images.")
@click.option("--cross-recipe", default="uptake4_cross_feature_cross", show_default=True, help="Phase two: the cross-training set.")
@click.option("--epochs", "epochs", type=(click.IntRange(1), click.IntRange(1)), default=None, help="Override both phases' epochs: SINGLE CROSS.")
@click.option("--seed", type=int, default=None, help="Override both phases' seed.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@_progress_option
@click.pass_context
def gan_cross_train(
    ctx: click.Context,
    data_dir: Path,
    labels_csv: Path | None,
    out_dir: Path,
    single_recipe: str,
    cross_recipe: str,
    epochs: tuple[int, int] | None,
    seed: int | None,
    device: str | None,
    progress: bool | None,
) -> None:
    """Train the cross-feature ResNet in two phases: single-feature images, then the cross-training set."""
    from scintipipe.api import ScintipipeError, load_recipe, make_plugin_manager
    from scintipipe_gan.cross_training import train_cross_feature

    pm = make_plugin_manager(plugins_dir=ctx.find_root().params.get("plugins_dir"))
    try:
        single, cross = load_recipe(single_recipe, pm), load_recipe(cross_recipe, pm)
        for recipe, phase_epochs in zip((single, cross), epochs or (None, None), strict=True):
            if phase_epochs is not None:
                recipe["epochs"] = phase_epochs
            if seed is not None:
                recipe["seed"] = seed
        import torch

        result = train_cross_feature(
            pm,
            data_dir,
            labels_csv or data_dir / "labels.csv",
            out_dir,
            single,
            cross,
            device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
            progress=progress,
            log=lambda m: click.echo(m, err=True),
        )
    except (ScintipipeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    accuracy = {
        phase: r.validation.get("overall", {}).get("accuracy", {}).get("value")
        for phase, r in (("single", result.single_feature), ("cross", result.cross_training))
    }
    click.echo(
        f"bundle written to {out_dir} (validation accuracy {accuracy['cross']} after the cross-training set, "
        f"{accuracy['single']} after single-feature images; phase one kept in {result.single_feature.bundle_dir})"
    )


gan.add_command(srgan)


@hookimpl
def register_networks(register: Any) -> None:
    """Add ``cross_feature_resnet`` (seed 004, Fig. 4)."""
    from scintipipe.api import NetworkSpec
    from scintipipe_gan.crossfeature import build_cross_feature_resnet

    register.network("cross_feature_resnet", NetworkSpec(build_cross_feature_resnet, "stages.2", "fc", min_size=32))


@hookimpl
def register_recipes(register: Any) -> None:
    """Add the cross-feature ResNet's two phases (``uptake4_cross_feature_single``, ``uptake4_cross_feature_cross``)."""
    register.recipe_folder(Path(__file__).with_name("recipes"))


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``scintipipe gan`` (train, check, sample, cross-train, srgan train)."""
    register.command(gan)


@hookimpl
def register_training_sources(register: Any) -> None:
    """Add ``scintipipe train --augment-with GANDIR[:ratio][:sr=SRDIR]``."""
    from scintipipe_gan.augment import augment_with_sources

    register.source(
        "augment_with",
        augment_with_sources,
        "Add RATIO (default 1) synthetic scans per real training view and label, sampled from a checked scintipipe-gan GAN into OUT/synthetic-training; "
        "sr=SRDIR raises them with an SRGAN stage (gan srgan train).",
        metavar="GANDIR[:RATIO][:sr=SRDIR]",
    )
