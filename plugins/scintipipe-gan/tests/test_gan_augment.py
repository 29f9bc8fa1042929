"""Synthetic scans join the training fold of ``scintipipe train`` and never its validation fold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scintipipe.api import ExtraTraining, ScintipipeError, load_recipe, make_plugin_manager, read_labels, run_cli, train_bundle
from scintipipe_gan.augment import parse_augment_with, train_with_gan
from scintipipe_gan.quality import Gates, check_gan


@pytest.fixture(scope="module")
def checked_gan(tmp_path_factory: pytest.TempPathFactory, tiny_gan: Path, real, bundle) -> Path:
    gan = tmp_path_factory.mktemp("augment") / "gan"
    shutil.copytree(tiny_gan, gan)
    check_gan(gan, real, bundle, n_per_class=4, gates=Gates(min_diversity=0.0), log=lambda m: None)
    return gan


def one_epoch_recipe() -> dict:
    recipe = load_recipe("uptake4")
    recipe.update(epochs=1, batch_size=8, val_fraction=0.25)
    return recipe


def test_parse_augment_with() -> None:
    assert parse_augment_with("gan/") == (Path("gan/"), 1.0, None)
    assert parse_augment_with("runs/gan:0.5") == (Path("runs/gan"), 0.5, None)
    assert parse_augment_with("runs/gan:0.5:sr=runs/sr") == (Path("runs/gan"), 0.5, Path("runs/sr"))
    assert parse_augment_with("runs/gan:sr=sr") == (Path("runs/gan"), 1.0, Path("sr"))
    with pytest.raises(ValueError, match="positive"):
        parse_augment_with("gan:0")
    with pytest.raises(ValueError, match="sr= needs"):
        parse_augment_with("gan:2:sr=")


def test_synthetic_scans_train_but_never_validate(tmp_path: Path, scans: Path, checked_gan: Path, scan_like_generator, monkeypatch) -> None:
    """Scan-like stand-in images (an 8-step GAN's are refused by the content gate as floods)."""
    monkeypatch.setattr("scintipipe_gan.train.generate", scan_like_generator)
    out = tmp_path / "bundle"
    logs: list[str] = []
    result = train_with_gan(one_epoch_recipe(), scans, scans / "labels.csv", out, f"{checked_gan}:0.5", progress=False, log=logs.append)
    synthetic = sorted((out / "synthetic-training").glob("case-*.dcm"))
    assert len(synthetic) == 8  # half of the 3 real training views per label, rounded: 2 per label
    card = (out / "docs/README.md").read_text()
    assert "Training views: 20" in card and "Validation views: 4" in card
    assert "Extra training data (training fold only, never validation): scintipipe-gan DCGAN samples" in card
    assert result.validation["overall"]["accuracy"]["denominator"] == 4  # the validation fold: the 4 real views the split held out
    assert any("8 views added to the training fold only" in line for line in logs)


def test_an_extra_that_repeats_a_real_file_is_refused(tmp_path: Path, scans: Path) -> None:
    """Anything that could leak a real (validation) scan into training is refused before training."""
    rows = read_labels(scans / "labels.csv", scans, one_epoch_recipe()["labels"])
    copy = tmp_path / "copy.dcm"
    copy.write_bytes(rows[0][0].read_bytes())  # the same bytes under another name
    for leak in ([rows[0]], [(copy, rows[0][1])]):
        extra = ExtraTraining(name="leaky", rows=lambda counts, leak=leak: leak)
        with pytest.raises(ScintipipeError, match="also real labelled files"):
            train_bundle(
                make_plugin_manager(),
                one_epoch_recipe(),
                scans,
                scans / "labels.csv",
                tmp_path / "b",
                progress=False,
                log=lambda m: None,
                extra_training=[extra],
            )


@pytest.fixture(scope="module")
def cli_gan(tmp_path_factory: pytest.TempPathFactory, scans: Path, tiny: dict) -> Path:
    """A tiny GAN trained and checked on the command line: 100 steps, enough for scan-like samples
    that pass scintipipe's content gate, though too few for diversity, so it is checked with
    ``--min-diversity 0`` (the documented lower bound of ``gan check``)."""
    gan = tmp_path_factory.mktemp("cli-gan") / "gan"
    sizes = [f"--{key.replace('_', '-')}={value}" for key, value in tiny.items()]
    run_cli("gan", "train", "--task", "uptake4", "--data", scans, "--out", gan, "--steps", "100", *sizes, "--no-progress")
    run_cli("gan", "check", gan, "--data", scans, "--n-per-class", "4", "--min-diversity", "0", "--no-progress")
    return gan


def train_args(scans: Path, out: Path, *extra: str | Path) -> list[str | Path]:
    return [
        "train",
        "--bundle",
        "uptake4",
        "--data",
        scans,
        "--labels",
        scans / "labels.csv",
        "--out",
        out,
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def test_train_augment_with_on_the_command_line(tmp_path: Path, scans: Path, cli_gan: Path) -> None:
    """``scintipipe train --augment-with GANDIR:0.5``: tagged synthetic scans in the training fold only; --resume reuses them."""
    import pydicom

    out = tmp_path / "bundle"
    result = run_cli(*train_args(scans, out, "--augment-with", f"{cli_gan}:0.5"))
    synthetic = sorted((out / "synthetic-training").glob("case-*.dcm"))
    assert len(synthetic) == 8  # half of the 3 real training views per label, rounded: 2 per label
    assert all("SYNTHETIC" in pydicom.dcmread(path, stop_before_pixels=True).ImageComments for path in synthetic)
    assert "8 views added to the training fold only" in result.output
    card = (out / "docs/README.md").read_text()
    assert "Training views: 20" in card and "Validation views: 4" in card  # validation: the 4 real views the split held out
    assert "Extra training data (training fold only, never validation): scintipipe-gan DCGAN samples" in card

    stamps = [path.stat().st_mtime_ns for path in synthetic]
    again = run_cli(*train_args(scans, out, "--augment-with", f"{cli_gan}:0.5"), expect_exit=2)
    assert "already holds synthetic scans of an earlier run" in again.output
    run_cli(*train_args(scans, out, "--augment-with", f"{cli_gan}:0.5", "--resume"))
    assert [path.stat().st_mtime_ns for path in sorted((out / "synthetic-training").glob("case-*.dcm"))] == stamps


def test_train_augment_with_an_sr_stage(tmp_path: Path, scans: Path, cli_gan: Path, sr_stage: Path) -> None:
    """``--augment-with GANDIR:0.5:sr=SRDIR``: the samples raised by the SRGAN stage, tagged so; a stage that does not fit is refused before training."""
    import json

    import pydicom

    out = tmp_path / "bundle"
    result = run_cli(*train_args(scans, out, "--augment-with", f"{cli_gan}:0.5:sr={sr_stage}"))
    synthetic = sorted((out / "synthetic-training").glob("case-*.dcm"))
    assert len(synthetic) == 8 and "8 views added to the training fold only" in result.output
    for path in synthetic:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.Rows == ds.Columns == 96 and ds.ImageComments == "SYNTHETIC (scintipipe-gan DCGAN + SRGAN), not an acquisition"
    assert json.loads((out / "synthetic-training" / "synthetic.json").read_text())["super_resolve"]["step"] == 4
    assert f"scintipipe-gan DCGAN + SRGAN ({sr_stage}) samples" in (out / "docs/README.md").read_text()

    other = tmp_path / "sr16"
    shutil.copytree(sr_stage, other)
    config = json.loads((other / "config.json").read_text())
    config["low_size"] = [16, 16]
    (other / "config.json").write_text(json.dumps(config))
    refused = run_cli(*train_args(scans, tmp_path / "b2", "--augment-with", f"{cli_gan}:0.5:sr={other}"), expect_exit=2)
    assert "SRGAN stage has image size" in refused.output and not (tmp_path / "b2").exists()
    missing = run_cli(*train_args(scans, tmp_path / "b3", "--augment-with", f"{cli_gan}:sr={tmp_path / 'no-sr'}"), expect_exit=2)
    assert "is not an SRGAN stage folder" in missing.output


def test_train_refuses_an_unchecked_gan_before_training(tmp_path: Path, scans: Path, tiny_gan: Path) -> None:
    out = tmp_path / "bundle"
    result = run_cli(*train_args(scans, out, "--augment-with", tiny_gan), expect_exit=2)
    assert f"--augment-with: {tiny_gan} has not been checked" in result.output
    assert not out.exists()
    missing = run_cli(*train_args(scans, out, "--augment-with", tmp_path / "no-gan:2"), expect_exit=2)
    assert "is not a GAN folder" in missing.output
