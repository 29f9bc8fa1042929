"""``scintipipe train --nproc 2`` on CPU with gloo: DistributedDataParallel, MONAI's DistributedSampler.

Two processes take halves of each epoch's global batch; validation probabilities are
gathered over the ranks; only rank 0 writes. On a tiny set the metrics of 2 processes
and 1 process agree within a tolerance (the epoch orders are the same; augmentation
draws differ).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cli_helpers import simulate
from scintipipe.cli import cli
from scintipipe.testing import write_small_recipe
from scintipipe.training.loop import shard

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = simulate(tmp_path_factory.mktemp("data") / "center-a", n=32, seed=5, center="a")
    write_small_recipe(folder, "tiny-ddp", [4, 8], epochs=3, batch_size=8, val_fraction=0.25, seed=1)
    return folder


def train(tiny_set: Path, out: Path, *extra: str) -> dict:
    args = [
        "train",
        "--bundle",
        "uptake4",
        "--recipe",
        str(tiny_set / "tiny-ddp.json"),
        "--labels",
        str(tiny_set / "labels.csv"),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "configs/metadata.json").read_text())


def test_shard_gives_each_rank_an_equal_share_of_the_epoch() -> None:
    order = torch.arange(10) * 3
    parts = [shard(order, rank, 4) for rank in range(4)]
    assert all(len(p) == 3 for p in parts)  # padded: every rank takes as many steps
    assert set(torch.cat(parts).tolist()) == set(order.tolist())


def test_two_gloo_processes_match_one_within_tolerance(tiny_set: Path, tmp_path: Path) -> None:
    one = train(tiny_set, tmp_path / "one")
    two = train(tiny_set, tmp_path / "two", "--nproc", "2")
    acc_one = one["eval_metrics"]["validation"]["accuracy"]
    acc_two = two["eval_metrics"]["validation"]["accuracy"]
    value = lambda a: a["value"] if isinstance(a, dict) else a  # noqa: E731
    assert abs(value(acc_one) - value(acc_two)) <= 0.25
    for name in ("configs/metadata.json", "models/model.pt", "docs/README.md", "checkpoint.pt"):
        assert (tmp_path / "two" / name).is_file(), name
    loss_one = torch.load(tmp_path / "one/checkpoint.pt", weights_only=False)["history"]
    loss_two = torch.load(tmp_path / "two/checkpoint.pt", weights_only=False)["history"]
    assert len(loss_one) == len(loss_two) == 3
    assert abs(loss_one[-1]["train_loss"] - loss_two[-1]["train_loss"]) < 0.5
