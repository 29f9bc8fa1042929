"""The SRGAN stage: simulated pairs, training with an exact resume, and ``gan sample --super-resolve``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from scintipipe.api import run_cli
from scintipipe_gan.quality import Gates, check_gan
from scintipipe_gan.superres import SRSettings, load_sr, super_resolve, train_srgan
from scintipipe_gan.superres_pairs import best_shift, simulate_pairs, thin_counts
from scintipipe_gan.train import GanFolderError

QUIET = {"progress": False, "log": lambda m: None}


def test_thinning_keeps_the_share_of_counts_and_alignment_finds_a_roll() -> None:
    counts = np.full((64, 64), 100, dtype=np.uint16)
    thinned = thin_counts(counts, 0.25, np.random.default_rng(0))
    assert thinned.sum() / counts.sum() == pytest.approx(0.25, rel=0.02) and (thinned <= counts).all()
    image = torch.zeros(1, 20, 20)
    image[0, 8:12, 6:10] = 1
    assert best_shift(torch.roll(image, (2, -1), dims=(-2, -1)), image) == (-2, 1)


def test_pairs_are_the_same_phantom_at_two_resolutions(bundle) -> None:
    pairs = simulate_pairs(bundle, 4, low_size=32, count_fraction=0.25, seed=5)
    assert pairs.low.shape == (4, 1, 32, 32) and pairs.high.shape == (4, 1, 96, 96)
    assert pairs.low.min() >= -1 and pairs.high.max() <= 1
    down = torch.nn.functional.interpolate(pairs.high, size=(32, 32), mode="area")
    for low, high in zip(pairs.low, down, strict=True):  # fewer counts, same phantom
        assert float(torch.corrcoef(torch.stack([low.flatten(), high.flatten()]))[0, 1]) > 0.8
    again = simulate_pairs(bundle, 4, low_size=32, count_fraction=0.25, seed=5)
    assert torch.equal(pairs.low, again.low) and torch.equal(pairs.high, again.high)


def test_the_sr_folder_records_everything_and_loads(sr_stage: Path) -> None:
    config = json.loads((sr_stage / "config.json").read_text())
    assert config["kind"] == "scintipipe-gan SRGAN" and config["steps_done"] == 4
    assert config["low_size"] == [32, 32] and config["high_size"] == [96, 96]
    assert set(config["validation"]) == {"n", "l1_sr", "l1_bilinear"} and config["validation"]["n"] == 1
    generator, loaded = load_sr(sr_stage)
    out = super_resolve(generator, torch.rand(3, 1, 32, 32) * 2 - 1)
    assert out.shape == (3, 1, 96, 96) and out.abs().max() <= 1 and loaded["steps_done"] == 4


def test_resume_continues_exactly_and_refuses_overwrite(tmp_path: Path, bundle, tiny_sr: dict) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_srgan("uptake4", bundle, straight, SRSettings(steps=4, **tiny_sr), **QUIET)
    train_srgan("uptake4", bundle, split, SRSettings(steps=2, **tiny_sr), **QUIET)
    with pytest.raises(GanFolderError, match="already holds an SRGAN stage"):
        train_srgan("uptake4", bundle, split, SRSettings(steps=4, **tiny_sr), **QUIET)
    run = train_srgan("uptake4", bundle, split, SRSettings(steps=4, **tiny_sr), resume=True, **QUIET)
    assert run.steps_done == 4
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(split / "checkpoint.pt", weights_only=False)
    for key, value in a["generator"].items():
        assert torch.equal(value, b["generator"][key]), key
    with pytest.raises(GanFolderError, match="other pairs"):
        train_srgan("uptake4", bundle, split, SRSettings(steps=5, **{**tiny_sr, "count_fraction": 0.5}), resume=True, **QUIET)


def test_sample_super_resolve_writes_tagged_scans_at_the_bundle_size(tmp_path: Path, tiny_gan: Path, real, bundle, sr_stage: Path) -> None:
    gan = tmp_path / "gan"
    shutil.copytree(tiny_gan, gan)
    check_gan(gan, real, bundle, n_per_class=4, gates=Gates(min_diversity=0.0), log=lambda m: None)
    out = tmp_path / "synthetic"
    done = run_cli("gan", "sample", gan, "--n", "4", "--out", out, "--class-mix", "balanced", "--super-resolve", sr_stage)
    assert "wrote 4 synthetic scans (DCGAN + SRGAN)" in done.output
    summary = json.loads((out / "synthetic.json").read_text())
    assert summary["synthetic"] is True and summary["method"] == "DCGAN + SRGAN" and summary["super_resolve"]["step"] == 4
    for path in sorted(out.glob("case-*.dcm")):
        ds = pydicom.dcmread(path)
        assert ds.Rows == ds.Columns == 96 and ds.BurnedInAnnotation == "NO"
        assert ds.ImageComments == "SYNTHETIC (scintipipe-gan DCGAN + SRGAN), not an acquisition"
        assert ds.DerivationCodeSequence[0].CodeValue == "SYNTH-GAN" and ds.SeriesDescription.startswith("SYNTHETIC")


def test_an_sr_stage_for_another_gan_size_is_refused(tmp_path: Path, tiny_gan: Path, real, bundle, sr_stage: Path) -> None:
    other = tmp_path / "sr16"
    shutil.copytree(sr_stage, other)
    config = json.loads((other / "config.json").read_text())
    config["low_size"] = [16, 16]
    (other / "config.json").write_text(json.dumps(config))
    gan = tmp_path / "gan"
    shutil.copytree(tiny_gan, gan)
    check_gan(gan, real, bundle, n_per_class=4, gates=Gates(min_diversity=0.0), log=lambda m: None)
    done = run_cli("gan", "sample", gan, "--n", "2", "--out", tmp_path / "s", "--super-resolve", other, expect_exit=2)
    assert "SRGAN stage has image size" in done.output


def test_srgan_train_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "sr"
    args = ["gan", "srgan", "train", "--task", "uptake4", "--out", out, "--n-pairs", "8", "--low-size", "32", "--width", "4", "--blocks", "1"]
    first = run_cli(*args, "--steps", "2", "--batch-size", "2", "--warmup-steps", "1", "--no-progress")
    assert "SRGAN stage at step 2" in first.output and "held-out L1" in first.output
    again = run_cli(*args, "--steps", "3", "--batch-size", "2", "--warmup-steps", "1", "--no-progress", expect_exit=2)
    assert "--resume" in again.output
