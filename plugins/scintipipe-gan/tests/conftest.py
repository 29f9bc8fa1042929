"""Fixtures for the GAN plugin's tests: 16 simulated uptake4 scans (4 per label), loaded once
through the shipped bundle, and one tiny GAN trained on them for a few steps (a clean plugin
environment and ``scintipipe_cli`` come from scintipipe's pytest plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scintipipe.api import run_cli

#: a GAN small enough to train in about a second on one CPU thread
TINY = {"image_size": 32, "width": 8, "z_dim": 16, "batch_size": 8, "checkpoint_every": 4}


#: an SR stage small enough to train in a second: 32-pixel GAN images (the tiny GAN's) to 96
TINY_SR = {"low_size": 32, "n_pairs": 8, "width": 8, "blocks": 1, "disc_width": 8, "batch_size": 4, "warmup_steps": 2, "checkpoint_every": 2}


@pytest.fixture(scope="session")
def tiny_sr() -> dict[str, int]:
    """SRSettings of an SR stage small enough to train in a second (the tiny GAN's 32 pixels to 96)."""
    return dict(TINY_SR)


@pytest.fixture(scope="session")
def sr_stage(tmp_path_factory: pytest.TempPathFactory, bundle: Any) -> Path:
    """An SRGAN stage trained for 4 steps on 8 simulated pairs (32 to 96 pixels)."""
    from scintipipe_gan.superres import SRSettings, train_srgan

    out = tmp_path_factory.mktemp("sr") / "sr"
    train_srgan("uptake4", bundle, out, SRSettings(steps=4, **TINY_SR), progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny() -> dict[str, int]:
    """GanSettings of a GAN small enough to train in about a second."""
    return dict(TINY)


@pytest.fixture(scope="session")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 simulated centre-a uptake4 scans, 4 per label, with labels.csv."""
    out = tmp_path_factory.mktemp("gan-data") / "a"
    run_cli("simulate", "--task", "uptake4", "--n", "16", "--seed", "3", "--center", "a", "--class-mix", "balanced", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def bundle() -> Any:
    from scintipipe_gan.data import find_bundle

    return find_bundle("uptake4")


@pytest.fixture(scope="session")
def real(scans: Path, bundle: Any) -> Any:
    from scintipipe_gan.data import load_real

    return load_real(bundle, scans, progress=False)


@pytest.fixture(scope="session")
def tiny_gan(tmp_path_factory: pytest.TempPathFactory, scans: Path, bundle: Any, real: Any) -> Path:
    """A GAN trained for 8 steps (checkpoints at 4 and 8)."""
    from scintipipe_gan.train import GanSettings, train_gan

    out = tmp_path_factory.mktemp("gan") / "gan"
    train_gan("uptake4", bundle, real, out, GanSettings(steps=8, **TINY), scans, progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def scan_like_generator(tmp_path_factory: pytest.TempPathFactory, bundle: Any) -> Any:
    """A stand-in for ``scintipipe_gan.train.generate`` whose images look like scans: 8 other
    simulated scans (seed 4), 2 per label, none of them a training image.

    An 8-step GAN draws near-uniform images, which scintipipe's content gate rightly refuses
    as flood images; the tests of what happens to good samples downstream use this instead.
    """
    import torch

    from scintipipe_gan.data import load_real, to_gan

    out = tmp_path_factory.mktemp("held-out") / "b"
    run_cli("simulate", "--task", "uptake4", "--n", "8", "--seed", "4", "--center", "a", "--class-mix", "balanced", "--out", str(out))
    held_out = load_real(bundle, out, progress=False)
    images = to_gan(held_out.inputs, TINY["image_size"])

    def generate(generator: Any, labels: Any, seed: int, batch_size: int = 64) -> Any:
        picks = [int(torch.nonzero(held_out.targets == int(y))[(seed + i) % 2]) for i, y in enumerate(labels)]
        return images[picks].clone()

    return generate
