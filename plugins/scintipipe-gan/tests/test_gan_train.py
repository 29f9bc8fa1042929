"""``scintipipe gan train``: config, checkpoint, TensorBoard, an exact resume, and the refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from scintipipe.api import run_cli
from scintipipe_gan.train import GanFolderError, GanSettings, load_generator, train_gan


def test_the_gan_folder_records_everything(tiny_gan: Path, real) -> None:
    config = json.loads((tiny_gan / "config.json").read_text())
    assert config["task"] == "uptake4" and config["bundle"]["name"] == "uptake4"
    assert config["labels"] == real.labels
    assert config["class_counts"] == {label: 4 for label in real.labels}
    assert config["data"]["hash"] == real.data_hash and config["data"]["views"] == 16
    assert config["steps_done"] == 8 and config["settings"]["seed"] == 0 and config["settings"]["image_size"] == 32
    assert config["input_size"] == [96, 96]
    assert (tiny_gan / "checkpoint.pt").is_file()
    assert any((tiny_gan / "logs").glob("events.out.tfevents.*"))
    generator, loaded = load_generator(tiny_gan)
    assert loaded["steps_done"] == 8
    images = generator(torch.randn(2, 16), torch.tensor([0, 3]))
    assert images.shape == (2, 1, 32, 32) and images.abs().max() <= 1


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path, scans: Path, bundle, real, tiny) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    quiet = {"progress": False, "log": lambda m: None}
    train_gan("uptake4", bundle, real, straight, GanSettings(steps=6, **tiny), scans, **quiet)
    train_gan("uptake4", bundle, real, split, GanSettings(steps=4, **tiny), scans, **quiet)
    messages: list[str] = []
    run = train_gan("uptake4", bundle, real, split, GanSettings(steps=6, **tiny), scans, resume=True, progress=False, log=messages.append)
    assert run.steps_done == 6 and any("resumed" in m for m in messages)
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(split / "checkpoint.pt", weights_only=False)
    for key, value in a["generator"].items():
        assert torch.equal(value, b["generator"][key]), key
    assert [row["loss_d"] for row in a["history"]] == pytest.approx([row["loss_d"] for row in b["history"]])


def test_a_gan_folder_is_not_overwritten_nor_resumed_on_other_data(tmp_path: Path, tiny_gan: Path, scans: Path, bundle, real, tiny) -> None:
    copy = tmp_path / "gan"
    shutil.copytree(tiny_gan, copy)
    with pytest.raises(GanFolderError, match="already holds a GAN"):
        train_gan("uptake4", bundle, real, copy, GanSettings(steps=10, **tiny), scans, progress=False)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["hash"] = "0" * 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(GanFolderError, match="other data"):
        train_gan("uptake4", bundle, real, copy, GanSettings(steps=10, **tiny), scans, resume=True, progress=False)


def test_the_command_line_trains_and_resumes(tmp_path: Path, scans: Path) -> None:
    out = tmp_path / "gan"
    tiny = ["--image-size", "16", "--width", "4", "--z-dim", "8", "--batch-size", "4", "--no-progress"]
    first = run_cli("gan", "train", "--task", "uptake4", "--data", str(scans), "--out", str(out), "--steps", "2", *tiny)
    assert "GAN at step 2" in first.output
    again = run_cli("gan", "train", "--task", "uptake4", "--data", str(scans), "--out", str(out), "--steps", "3", *tiny, expect_exit=2)
    assert "--resume" in again.output
    resumed = run_cli("gan", "train", "--task", "uptake4", "--data", str(scans), "--out", str(out), "--steps", "3", "--resume", *tiny)
    assert "GAN at step 3" in resumed.output
    wrong = run_cli("gan", "train", "--task", "remnant-nope", "--data", str(scans), "--out", str(tmp_path / "x"), "--steps", "1", expect_exit=2)
    assert "no bundle named 'remnant-nope'" in wrong.output


def test_a_folder_without_a_checkpoint_names_what_is_missing(tmp_path: Path) -> None:
    from scintipipe_gan import CONFIG
    from scintipipe_gan.superres import SR_KIND, load_sr

    gan, sr = tmp_path / "gan", tmp_path / "sr"
    gan.mkdir()
    sr.mkdir()
    (gan / CONFIG).write_text("{}")
    (sr / CONFIG).write_text(json.dumps({"kind": SR_KIND}))
    with pytest.raises(GanFolderError, match=r"gan has no checkpoint\.pt; the training never reached a checkpoint"):
        load_generator(gan)
    with pytest.raises(GanFolderError, match=r"sr has no checkpoint\.pt; the SRGAN training never reached a checkpoint"):
        load_sr(sr)
