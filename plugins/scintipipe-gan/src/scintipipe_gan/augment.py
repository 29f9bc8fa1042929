"""Synthetic scans for the training fold of ``scintipipe train``, and only for it.

:func:`gan_training_extra` returns a :class:`scintipipe.api.ExtraTraining`: given the real
training fold's views per label, it samples ``ratio`` times as many synthetic scans per
label from a checked GAN (``scintipipe gan sample``, so every quality gate applies) into a
folder and hands their rows to :func:`scintipipe.api.train_bundle`, which loads them through
the bundle's own stages after the train/validation split and adds them to the training
fold. Validation (and any held-out test folder) stays real or simulated.

``scintipipe train --augment-with GANDIR[:ratio]`` is the command-line form; until the
core ``train`` command has that option, call :func:`train_with_gan` (see the README).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

DEFAULT_RATIO = 1.0


def parse_augment_with(text: str) -> tuple[Path, float]:
    """``GANDIR[:ratio]`` to ``(GANDIR, ratio)``; the ratio is synthetic views per real training view.

    Raises:
        ValueError: a ratio that is not a positive number.
    """
    folder, sep, ratio_text = str(text).rpartition(":")
    if not sep or not ratio_text.replace(".", "", 1).isdigit():
        return Path(text), DEFAULT_RATIO
    ratio = float(ratio_text)
    if ratio <= 0:
        raise ValueError(f"--augment-with {text}: the ratio must be positive")
    return Path(folder), ratio


def gan_training_extra(gan_dir: Path, ratio: float, out: Path, seed: int = 0, pm: Any = None) -> Any:
    """An :class:`scintipipe.api.ExtraTraining` of synthetic scans from ``gan_dir``.

    Args:
        gan_dir: a trained and checked GAN folder.
        ratio: synthetic views per real training view, per label.
        out: where the synthetic scans are written (kept, for provenance).
        seed: the sampling seed.
        pm: plugin manager.
    """
    from scintipipe.api import ExtraTraining
    from scintipipe_gan.sample import sample_scans

    def rows(train_counts: dict[str, int]) -> list[tuple[Path, str]]:
        wanted = {label: round(ratio * count) for label, count in train_counts.items() if count > 0}
        total = sum(wanted.values())
        if total == 0:
            return []
        sample_scans(gan_dir, total, out, class_mix={k: v for k, v in wanted.items() if v > 0}, seed=seed, pm=pm)
        with open(Path(out) / "labels.csv", newline="") as handle:
            return [(Path(out) / row["file"], row["label"]) for row in csv.DictReader(handle)]

    return ExtraTraining(name=f"scintipipe-gan DCGAN samples from {gan_dir} (ratio {ratio:g}, written to {out})", rows=rows, tag="synthetic")


def train_with_gan(
    recipe: dict[str, Any], data_dir: Path | None, labels_csv: Path, out_dir: Path, augment_with: str, seed: int = 0, pm: Any = None, **kwargs: Any
) -> Any:
    """``scintipipe train`` with ``--augment-with GANDIR[:ratio]``: :func:`scintipipe.api.train_bundle` plus the GAN's scans.

    The synthetic scans go to ``out_dir/synthetic-training``; ``kwargs`` go to ``train_bundle``.
    """
    from scintipipe.api import make_plugin_manager, train_bundle

    pm = pm or make_plugin_manager()
    gan_dir, ratio = parse_augment_with(augment_with)
    extra = gan_training_extra(gan_dir, ratio, Path(out_dir) / "synthetic-training", seed=seed, pm=pm)
    return train_bundle(pm, recipe, data_dir, labels_csv, out_dir, extra_training=[extra], **kwargs)
