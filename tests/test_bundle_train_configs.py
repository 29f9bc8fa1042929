"""The shipped bundles' ``configs/train.json`` and ``configs/multi_gpu_train.json`` under MONAI's runner.

``python -m monai.bundle run --config_file configs/train.json`` in a copy of the uptake4
bundle trains the same weights as ``scintipipe train --bundle`` that copy, bit for bit; the
pair ``['configs/train.json','configs/multi_gpu_train.json']`` under
``torchrun --nproc_per_node 2`` (gloo on CPU) trains the same weights as
``scintipipe train --nproc 2``, with one rank logging and writing. The plugin bundles'
configs are the same files and train their own recipes. Tiny data (16 simulated scans,
one or two epochs): these test the wiring, not the models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import simulate
from scintipipe.testing import run_cli

REPO = Path(__file__).resolve().parents[1]
BUNDLES = {
    "uptake4": REPO / "bundles/uptake4",
    "disease": REPO / "plugins/scintipipe-disease/src/scintipipe_disease/bundle",
    "remnant": REPO / "plugins/scintipipe-remnant/src/scintipipe_remnant/bundle",
}
TRAIN_CONFIGS = ("train.json", "multi_gpu_train.json")
BOTH = "['configs/train.json','configs/multi_gpu_train.json']"


def bundle_copy(name: str, folder: Path) -> Path:
    """A copy of a shipped bundle: training writes nothing into the repository."""
    return Path(shutil.copytree(BUNDLES[name], folder / name))


def monai_train(bundle: Path, data: Path, out: Path, config_file: str, torchrun: int = 0) -> subprocess.CompletedProcess[str]:
    """Train ``bundle`` on ``data`` for 2 epochs with ``python -m monai.bundle run``; fails the test if it fails.

    Args:
        bundle: the bundle folder (the runner's working folder).
        data: the labelled scans (``--dataset_dir``).
        out: the bundle to write (``--output_dir``).
        config_file: the runner's ``--config_file``.
        torchrun: under ``torchrun --nproc_per_node TORCHRUN``; 0: in one plain process.

    Returns:
        The finished run (``stderr`` holds the training log).
    """
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(torchrun)] if torchrun else [sys.executable]
    args = ["--config_file", config_file, "--dataset_dir", str(data), "--epochs", "2", "--output_dir", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, "-m", "monai.bundle", "run", *args], cwd=bundle, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def scintipipe_train(bundle: Path, data: Path, out: Path, *options: str) -> None:
    """Train ``bundle`` on ``data`` for 2 epochs with ``scintipipe train --bundle`` on one thread.

    Args:
        bundle: the bundle to retrain.
        data: the labelled scans (their ``labels.csv``).
        out: the bundle to write.
        *options: more options of ``scintipipe train`` (``--nproc 2``).
    """
    run_cli("train", "--bundle", bundle, "--labels", data / "labels.csv", "--epochs", "2", "--out", out, "--threads", "1", *options, "--no-progress")


def weights(bundle: Path) -> dict[str, torch.Tensor]:
    return torch.load(bundle / "models/model.pt", map_location="cpu", weights_only=True)


def assert_same_bundle(a: Path, b: Path) -> None:
    """Same weights, validation metrics, recipe and kept gate settings."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "the weights differ"
    meta_a, meta_b = (json.loads((x / "configs/metadata.json").read_text()) for x in (a, b))
    assert meta_a["eval_metrics"] == meta_b["eval_metrics"]
    for name in ("configs/recipe.json", "configs/gate.json", "configs/inference.json"):
        assert (a / name).read_text() == (b / name).read_text(), name


def history(bundle: Path) -> list[dict[str, Any]]:
    return torch.load(bundle / "checkpoint.pt", map_location="cpu", weights_only=False)["history"]


def test_every_shipped_classifier_bundle_has_the_same_train_configs() -> None:
    from monai.bundle import ConfigParser

    from scintipipe.training.recipe import load_recipe

    for name, root in BUNDLES.items():
        for config in TRAIN_CONFIGS:
            assert (root / "configs" / config).read_text() == (BUNDLES["uptake4"] / "configs" / config).read_text(), (name, config)
        meta = json.loads((root / "configs/metadata.json").read_text())
        assert any("train.json" in entry for entry in meta["changelog"].values()), name  # the history says when they came
        parser = ConfigParser()
        parser.read_config([str(root / "configs" / c) for c in TRAIN_CONFIGS])
        parser["bundle_root"] = str(root)
        recipe = parser.get_parsed_content("recipe")
        assert recipe == load_recipe(root / "configs/recipe.json")  # the bundle's own recipe, as scintipipe train --bundle reads it
        assert recipe["labels"] == meta["scintipipe"]["labels"]
        assert parser["trainer#distributed"] is True  # multi_gpu_train.json overrides train.json
        assert parser["device"] != ConfigParser.load_config_file(root / "configs/train.json")["device"]


def test_multi_gpu_config_without_a_process_group_and_train_json_under_torchrun_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scintipipe.training.bundle_trainer import DistributedSetupError, RecipeTrainer

    def trainer(distributed: bool) -> RecipeTrainer:
        return RecipeTrainer({}, tmp_path, tmp_path / "labels.csv", tmp_path / "out", distributed=distributed)

    with pytest.raises(DistributedSetupError, match="torchrun --nproc_per_node N"):
        trainer(True).run()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedSetupError, match="add configs/multi_gpu_train.json"):
        trainer(False).run()
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def uptake4_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate(tmp_path_factory.mktemp("data") / "center-a", n=16, seed=5, center="a")


@pytest.fixture(scope="module")
def uptake4_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_copy("uptake4", tmp_path_factory.mktemp("bundles"))


@pytest.mark.slow
def test_train_json_trains_what_scintipipe_train_trains(uptake4_data: Path, uptake4_copy: Path, tmp_path: Path) -> None:
    done = monai_train(uptake4_copy, uptake4_data, tmp_path / "monai", "configs/train.json")
    assert "16 labelled files: 12 for training, 4 for validation" in done.stderr
    assert f"bundle written to {tmp_path / 'monai'}" in done.stderr
    scintipipe_train(uptake4_copy, uptake4_data, tmp_path / "cli")
    assert_same_bundle(tmp_path / "monai", tmp_path / "cli")
    assert len(history(tmp_path / "monai")) == 2
    gate = json.loads((tmp_path / "monai/configs/gate.json").read_text())
    assert gate["radionuclides"] == ["Tc-99m", "I-123"]  # kept from the bundle retrained, as scintipipe train keeps them
    card = (tmp_path / "monai/docs/README.md").read_text()
    assert "monai" in card and "Training views: 12" in card  # the command that ran, in the model card
    assert sorted(p.name for p in (uptake4_copy / "configs").iterdir()) == sorted(p.name for p in (BUNDLES["uptake4"] / "configs").iterdir())
    assert (uptake4_copy / "models/model.pt").read_bytes() == (BUNDLES["uptake4"] / "models/model.pt").read_bytes()  # the bundle itself is untouched


@pytest.mark.slow
def test_multi_gpu_train_json_under_torchrun_trains_what_train_nproc_2_trains(uptake4_data: Path, uptake4_copy: Path, tmp_path: Path) -> None:
    done = monai_train(uptake4_copy, uptake4_data, tmp_path / "monai", BOTH, torchrun=2)
    assert "distributed training: 2 processes (gloo)" in done.stderr
    for epoch in (1, 2):  # only rank 0 logs
        assert done.stderr.count(f"epoch {epoch}/2: loss") == 1
    assert done.stderr.count("bundle written to") == 1
    scintipipe_train(uptake4_copy, uptake4_data, tmp_path / "cli", "--nproc", "2")
    assert_same_bundle(tmp_path / "monai", tmp_path / "cli")
    assert [row["train_loss"] for row in history(tmp_path / "monai")] == [row["train_loss"] for row in history(tmp_path / "cli")]
    for name in ("configs/metadata.json", "models/model.pt", "docs/README.md", "checkpoint.pt", "LICENSE"):
        assert (tmp_path / "monai" / name).is_file(), name
    assert len(list((tmp_path / "monai/logs").iterdir())) == 1  # one TensorBoard event file: rank 0's


@pytest.mark.slow
@pytest.mark.parametrize(("name", "center", "n"), [("disease", "a", 16), ("remnant", "remnant", 8)])  # remnant: two views a study
def test_plugin_bundles_train_json_trains_their_own_recipe(name: str, center: str, n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monai.bundle import run
    from monai.utils import set_determinism

    from scintipipe.bundle import Bundle

    data = simulate(tmp_path / "data", n=n, seed=5, center=center, task=name)
    root = bundle_copy(name, tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the runner puts the bundle root on it
    monkeypatch.chdir(root)
    try:
        run(config_file="configs/train.json", dataset_dir=str(data), epochs=1, output_dir=str(tmp_path / "out"))
    finally:
        set_determinism(seed=None)
    out = Bundle(tmp_path / "out")
    assert out.labels == Bundle(BUNDLES[name]).labels
    assert (
        json.loads((tmp_path / "out/configs/recipe.json").read_text())["network"]
        == json.loads((BUNDLES[name] / "configs/recipe.json").read_text())["network"]
    )
    assert out.network("cpu") is not None  # the written weights fit the recipe's network
    assert "validation" in json.loads((tmp_path / "out/configs/metadata.json").read_text())["eval_metrics"]
    assert len(history(tmp_path / "out")) == 1
