"""Synthetic scans for the training fold of ``scintipipe train``, and only for it.

:func:`gan_training_extra` returns a :class:`scintipipe.api.ExtraTraining`: given the real
training fold's views per label, it samples ``ratio`` times as many synthetic scans per
label from a checked GAN (``scintipipe gan sample``, so every quality gate applies) into a
folder and hands their rows to :func:`scintipipe.api.train_bundle`, which loads them through
the bundle's own stages after the train/validation split and adds them to the training
fold. Validation (and any held-out test folder) stays real or simulated.

``scintipipe train --augment-with GANDIR[:ratio][:sr=SRDIR]`` is the command-line form: the
plugin offers it through ``register_training_sources`` and :func:`augment_with_sources` turns
its values into extras (``sr=SRDIR`` raises the samples with an SRGAN stage, as
``gan sample --super-resolve`` does). :func:`train_with_gan` is the same from Python.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_RATIO = 1.0
#: the folder of the first ``--augment-with`` value's scans, inside the new bundle
SYNTHETIC_FOLDER = "synthetic-training"


#: the last part of an ``--augment-with`` value that names an SRGAN stage
SR_PREFIX = "sr="


def parse_augment_with(text: str) -> tuple[Path, float, Path | None]:
    """``GANDIR[:ratio][:sr=SRDIR]`` to ``(GANDIR, ratio, SRDIR or None)``.

    The ratio is synthetic views per real training view (default 1); ``sr=SRDIR`` is an
    SRGAN stage (``scintipipe gan srgan train``) that raises the samples to the bundle's input.

    Example:
        >>> parse_augment_with("runs/gan:0.5:sr=runs/sr")
        (PosixPath('runs/gan'), 0.5, PosixPath('runs/sr'))

    Raises:
        ValueError: a ratio that is not a positive number, or an empty ``sr=``.
    """
    text = str(text)
    super_resolve = None
    rest, sep, last = text.rpartition(":")
    if sep and last.startswith(SR_PREFIX):
        if not last[len(SR_PREFIX) :]:
            raise ValueError(f"--augment-with {text}: sr= needs an SRGAN stage folder (scintipipe gan srgan train)")
        super_resolve, text = Path(last[len(SR_PREFIX) :]), rest
    folder, sep, ratio_text = text.rpartition(":")
    if not sep or not ratio_text.replace(".", "", 1).isdigit():
        return Path(text), DEFAULT_RATIO, super_resolve
    ratio = float(ratio_text)
    if ratio <= 0:
        raise ValueError(f"--augment-with {text}: the ratio must be positive")
    return Path(folder), ratio, super_resolve


def check_gan_fits(gan_dir: Path, recipe: dict[str, Any]) -> None:
    """Refuse, before training, a GAN that cannot feed this recipe's training fold.

    Raises:
        ValueError: no GAN folder, a GAN of another task or label order, or one the quality
            gates refuse to sample from (not checked, stale check, a collapsed class).
    """
    from scintipipe_gan.sample import check_sampling_allowed
    from scintipipe_gan.train import read_config

    if not Path(gan_dir).is_dir():
        raise ValueError(f"{gan_dir} is not a GAN folder (make one with scintipipe gan train)")
    config = read_config(gan_dir)
    if config["task"] != recipe["task"] or list(config["labels"]) != list(recipe["labels"]):
        raise ValueError(
            f"the GAN in {gan_dir} draws task {config['task']!r} with labels {list(config['labels'])}; "
            f"the recipe trains task {recipe['task']!r} with labels {list(recipe['labels'])}"
        )
    check_sampling_allowed(gan_dir, config, list(config["labels"]))


def check_sr_fits_gan(sr_dir: Path, gan_dir: Path) -> None:
    """Refuse, before training, an SRGAN stage that cannot raise this GAN's samples.

    Raises:
        ValueError: no SRGAN stage in ``sr_dir`` (or no checkpoint), or one made for another
            task, bundle, GAN image size, input size or scaling.
    """
    from scintipipe_gan.sample import load_sr_stage
    from scintipipe_gan.train import read_config

    if not Path(sr_dir).is_dir():
        raise ValueError(f"sr={sr_dir} is not an SRGAN stage folder (make one with scintipipe gan srgan train)")
    load_sr_stage(sr_dir, read_config(gan_dir))  # the check `gan sample --super-resolve` makes


def augment_with_sources(values: Sequence[str], context: Any) -> list[Any]:
    """The extras of ``scintipipe train --augment-with GANDIR[:ratio][:sr=SRDIR]`` (``make`` of the training source).

    The first value's scans go to ``OUT/synthetic-training``, the next to
    ``OUT/synthetic-training-2`` and so on, each sampled with the recipe's seed plus its
    position. A folder that already holds scans is reused only with ``--resume`` and only
    when it holds what this run would sample.

    Args:
        values: every ``--augment-with`` value, in order.
        context: a :class:`scintipipe.registry.TrainingSourceContext`.

    Raises:
        ValueError: an unusable value (see :func:`check_gan_fits` and
            :func:`check_sr_fits_gan`), or an output folder that holds scans without ``--resume``.
    """
    seed = int(context.recipe.get("seed", 0))
    extras = []
    for index, value in enumerate(values):
        gan_dir, ratio, super_resolve = parse_augment_with(value)
        check_gan_fits(gan_dir, context.recipe)
        if super_resolve is not None:
            check_sr_fits_gan(super_resolve, gan_dir)
        out = Path(context.out_dir) / (SYNTHETIC_FOLDER if index == 0 else f"{SYNTHETIC_FOLDER}-{index + 1}")
        if any(out.glob("case-*.dcm")) and not context.resume:
            raise ValueError(f"{out} already holds synthetic scans of an earlier run; give another --out, or --resume to continue that run")
        extras.append(gan_training_extra(gan_dir, ratio, out, seed=seed + index, pm=context.pm, reuse=context.resume, super_resolve=super_resolve))
    return extras


def gan_training_extra(
    gan_dir: Path, ratio: float, out: Path, seed: int = 0, pm: Any = None, reuse: bool = False, super_resolve: Path | None = None
) -> Any:
    """An :class:`scintipipe.api.ExtraTraining` of synthetic scans from ``gan_dir``.

    Args:
        gan_dir: a trained and checked GAN folder.
        ratio: synthetic views per real training view, per label.
        out: where the synthetic scans are written (kept, for provenance).
        seed: the sampling seed.
        pm: plugin manager.
        reuse: use the scans already in ``out`` when they are what this call would
            sample (same GAN step, seed and counts per label), as on ``--resume``.
        super_resolve: an SRGAN stage folder that raises the samples to the bundle's input
            size (``scintipipe gan sample --super-resolve``; ``--augment-with ...:sr=SRDIR``).
    """
    from scintipipe.api import ExtraTraining, ScintipipeError
    from scintipipe_gan.sample import SamplingRefused, sample_scans

    def rows(train_counts: dict[str, int]) -> list[tuple[Path, str]]:
        wanted = {label: round(ratio * count) for label, count in train_counts.items() if count > 0}
        wanted = {label: n for label, n in wanted.items() if n > 0}
        if not wanted:
            return []
        try:
            if not (reuse and _holds_sample(Path(out), gan_dir, seed, wanted, super_resolve)):
                sample_scans(gan_dir, sum(wanted.values()), out, class_mix=wanted, seed=seed, pm=pm, super_resolve=super_resolve)
        except (SamplingRefused, FileExistsError) as exc:
            raise ScintipipeError(f"--augment-with {gan_dir}: {exc}") from exc
        with open(Path(out) / "labels.csv", newline="") as handle:
            return [(Path(out) / row["file"], row["label"]) for row in csv.DictReader(handle)]

    method = "DCGAN" if super_resolve is None else f"DCGAN + SRGAN ({super_resolve})"
    return ExtraTraining(name=f"scintipipe-gan {method} samples from {gan_dir} (ratio {ratio:g}, written to {out})", rows=rows, tag="synthetic")


def _holds_sample(out: Path, gan_dir: Path, seed: int, wanted: dict[str, int], super_resolve: Path | None = None) -> bool:
    """Whether ``out`` holds the sample of ``gan_dir`` at its current step with this seed and these counts."""
    from scintipipe_gan.train import read_config

    summary_path = out / "synthetic.json"
    if not summary_path.is_file():
        return False
    summary = json.loads(summary_path.read_text())
    counts = {label: n for label, n in summary.get("counts_per_label", {}).items() if n}
    sr = summary.get("super_resolve") or {}
    if (super_resolve is None) != (not sr) or (super_resolve is not None and Path(sr.get("dir", "")).resolve() != Path(super_resolve).resolve()):
        return False
    return (
        Path(summary.get("gan", "")).resolve() == Path(gan_dir).resolve()
        and summary.get("generator_step") == read_config(gan_dir)["steps_done"]
        and summary.get("seed") == seed
        and counts == wanted
    )


def train_with_gan(
    recipe: dict[str, Any],
    data_dir: Path | None,
    labels_csv: Path,
    out_dir: Path,
    augment_with: str,
    seed: int = 0,
    pm: Any = None,
    super_resolve: Path | None = None,
    **kwargs: Any,
) -> Any:
    """``scintipipe train`` with ``--augment-with GANDIR[:ratio][:sr=SRDIR]``: :func:`scintipipe.api.train_bundle` plus the GAN's scans.

    The synthetic scans go to ``out_dir/synthetic-training`` (raised by the SRGAN stage
    ``super_resolve``, or the value's ``sr=``, when given); ``kwargs`` go to ``train_bundle``.

    Raises:
        ValueError: an SRGAN stage both in ``augment_with`` and as ``super_resolve``.
    """
    from scintipipe.api import make_plugin_manager, train_bundle

    pm = pm or make_plugin_manager()
    gan_dir, ratio, in_value = parse_augment_with(augment_with)
    if in_value is not None and super_resolve is not None:
        raise ValueError(f"--augment-with {augment_with}: an SRGAN stage is named twice (sr= and super_resolve)")
    super_resolve = super_resolve or in_value
    extra = gan_training_extra(gan_dir, ratio, Path(out_dir) / SYNTHETIC_FOLDER, seed=seed, pm=pm, super_resolve=super_resolve)
    return train_bundle(pm, recipe, data_dir, labels_csv, out_dir, extra_training=[extra], **kwargs)
