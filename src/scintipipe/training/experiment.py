"""Small train-on-one-centre, test-on-another experiments (benchmarks' shared code).

``benchmarks/uptake4_ablation.py`` (preprocessing variants) and
``benchmarks/uptake4_networks.py`` (network candidates) both: read labelled scans once,
preprocess them with a recipe's ``scan_transforms``, train with the very same loop as
``scintipipe train`` (:func:`scintipipe.training.loop.fit`, weighted sampling, precise BN,
best epoch on a validation split) and report accuracy and per-class sensitivity on an
external set. Loading is done once per data set; only the preprocessing is repeated.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose

from scintipipe.loading import read_views
from scintipipe.pipeline import plain_tensor
from scintipipe.training.data import LabelledSet, hash_dataset, read_labels
from scintipipe.training.loop import fit, predict
from scintipipe.training.train import build_network, split_rows


def load_raw(folder: Path, labels: Sequence[str], labels_csv: Path | None = None) -> tuple[list[Any], list[int], list[str], str]:
    """Read every labelled scan of ``folder`` (first view, through the plugins' loaders) without preprocessing.

    Returns:
        ``(images, targets, sources, data_hash)``; images are MetaTensors with spacing.
    """
    rows = read_labels(labels_csv or folder / "labels.csv", folder, labels)
    images, targets, sources = [], [], []
    for path, label in rows:
        scan = read_views(path)[0]
        images.append(scan["image"])
        targets.append(list(labels).index(label))
        sources.append(str(path))
    return images, targets, sources, hash_dataset(rows)


def make_transform(scan_transforms: list[dict[str, Any]]) -> Compose:
    """A recipe's ``scan_transforms`` list as one callable (dictionary transforms)."""
    return Compose(ConfigParser({"t": scan_transforms}).get_parsed_content("t", instantiate=True))


def preprocess(images: Sequence[Any], scan_transforms: list[dict[str, Any]]) -> torch.Tensor:
    """Stack the preprocessed inputs ``(N, C, H, W)``."""
    transform = make_transform(scan_transforms)
    return torch.stack([plain_tensor(transform({"image": img})["image"]).float() for img in images])


def labelled(inputs: torch.Tensor, targets: Sequence[int], sources: Sequence[str], labels: Sequence[str], data_hash: str = "") -> LabelledSet:
    """Wrap tensors as a :class:`LabelledSet`."""
    return LabelledSet(inputs, torch.as_tensor(list(targets)), list(sources), list(labels), [], data_hash)


def split(data: LabelledSet, val_fraction: float, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """Stratified train/validation split, as ``scintipipe train`` does it."""
    rows = [(i, data.labels[int(t)]) for i, t in enumerate(data.targets)]
    train_rows, val_rows = split_rows(rows, val_fraction, seed)
    return data.subset([i for i, _ in train_rows]), data.subset([i for i, _ in val_rows])


def sensitivity_table(probs: torch.Tensor, targets: torch.Tensor, labels: Sequence[str]) -> dict[str, Any]:
    """Overall accuracy, per-class sensitivity and the confusion matrix."""
    pred = probs.argmax(1)
    out: dict[str, Any] = {"n": len(targets), "accuracy": float((pred == targets).float().mean())}
    out["sensitivity"] = {
        label: (float((pred[targets == c] == c).float().mean()) if (targets == c).any() else None) for c, label in enumerate(labels)
    }
    out["confusion"] = [[int(((targets == t) & (pred == p)).sum()) for p in range(len(labels))] for t in range(len(labels))]
    return out


def train_and_test(recipe: dict[str, Any], data: LabelledSet, tests: dict[str, LabelledSet], log: Any = None) -> dict[str, Any]:
    """Train ``recipe``'s network on ``data`` (with its validation split) and test it.

    Returns:
        ``{"validation": ..., name: sensitivity table per test set, "seconds": ...,
        "best_epoch": ...}``
    """
    train, val = split(data, float(recipe["val_fraction"]), int(recipe["seed"]))
    torch.manual_seed(int(recipe["seed"]))
    model = build_network(recipe)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(model, train, val, recipe, Path(tmp), progress=False, log=log or (lambda m: None))
    seconds = time.perf_counter() - started
    model.load_state_dict(result.best_state)
    out: dict[str, Any] = {"train_seconds": round(seconds, 1), "best_epoch": result.best_epoch + 1, "epochs": int(recipe["epochs"])}
    out["validation"] = sensitivity_table(predict(model, val.inputs, "cpu"), val.targets, data.labels)
    for name, test in tests.items():
        out[name] = sensitivity_table(predict(model, test.inputs, "cpu"), test.targets, data.labels)
    out["_model"] = model
    return out


def format_row(name: str, result: dict[str, Any], test: str, labels: Sequence[str]) -> str:
    """One Markdown table row: name, accuracy, per-class sensitivity (percent)."""
    t = result[test]
    sens = " | ".join("-" if t["sensitivity"][label] is None else f"{100 * t['sensitivity'][label]:.1f}" for label in labels)
    return f"| {name} | {100 * result['validation']['accuracy']:.1f} | {100 * t['accuracy']:.1f} | {sens} |"


def seed_everything(seed: int, threads: int = 2) -> None:
    """Seed torch and numpy and fix the thread count (the target machine has 2 cores)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
