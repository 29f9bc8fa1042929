"""Real scans in, GAN images out, and back: the task bundle's own preprocessing decides.

The scans of a labelled folder go through the task bundle's ``load`` and ``preprocess``
stages (:func:`scintipipe.api.classify_labelled`: for uptake4 a fixed 211 mm neck window
on a 2.2 mm grid, square-root count normalisation), exactly as training and inference
see them. The GAN works on those inputs resized to ``image_size`` and mapped from
``[0, input_max]`` to ``[-1, 1]`` (:func:`to_gan`); :func:`to_bundle` undoes both, so a
synthetic image can be fed to the bundle's network (the quality gates' features) and
written as counts that the same preprocessing reads back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

#: the upper clip of scintipipe's NormalizeCounts (the value 1.5 times the 99.5th percentile)
DEFAULT_INPUT_MAX = 1.5


@dataclass
class RealSet:
    """The labelled scans, preprocessed by the task bundle.

    Attributes:
        inputs: ``(N, C, H, W)`` bundle inputs (what the bundle's network takes).
        targets: ``(N,)`` label indices.
        sources: each row's source (``file`` or ``file#view``).
        labels: the task's labels, in index order.
        data_hash: SHA-256 over the files and labels (as ``scintipipe train`` records it).
        failures: ``(source, reason)`` of files left out.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    sources: list[str]
    labels: list[str]
    data_hash: str
    failures: list[tuple[str, str]]

    def class_counts(self) -> dict[str, int]:
        """Views per label."""
        counts = torch.bincount(self.targets, minlength=len(self.labels)).tolist()
        return dict(zip(self.labels, counts, strict=True))


def find_bundle(name: str, pm: Any = None) -> Any:
    """The bundle registered as ``name`` (``uptake4``) or the bundle folder at that path."""
    from scintipipe.api import make_plugin_manager, resolve_bundle, tasks_and_bundles

    pm = pm or make_plugin_manager()
    return resolve_bundle(name, tasks_and_bundles(pm).bundles)


def load_real(bundle: Any, data_dir: Path, labels_csv: Path | None = None, pm: Any = None, progress: bool | None = None) -> RealSet:
    """Load and preprocess a labelled folder with ``bundle``'s own stages.

    Args:
        bundle: the task bundle (:func:`find_bundle`).
        data_dir: folder the CSV's file names are relative to.
        labels_csv: ``file,label`` CSV (default ``data_dir/labels.csv``).
        pm: plugin manager (default: every installed plugin).
        progress: progress bar (``None``: on a terminal).
    """
    from scintipipe.api import classify_labelled, make_plugin_manager, read_labels

    pm = pm or make_plugin_manager()
    rows = read_labels(Path(labels_csv or Path(data_dir) / "labels.csv"), Path(data_dir), bundle.labels)
    data = classify_labelled(pm, bundle, rows, "cpu", progress)
    return RealSet(data.inputs.float(), data.targets.long(), list(data.sources), list(data.labels), data.data_hash, list(data.failures))


def to_gan(inputs: torch.Tensor, image_size: int, input_max: float = DEFAULT_INPUT_MAX) -> torch.Tensor:
    """Bundle inputs ``[0, input_max]`` to GAN images ``(N, C, image_size, image_size)`` in ``[-1, 1]``."""
    x = inputs.float()
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="area")
    return (x.clamp(0, input_max) / input_max) * 2 - 1


def to_bundle(images: torch.Tensor, input_size: tuple[int, int] | list[int], input_max: float = DEFAULT_INPUT_MAX) -> torch.Tensor:
    """GAN images in ``[-1, 1]`` back to bundle inputs of ``input_size`` in ``[0, input_max]``."""
    x = (images.float().clamp(-1, 1) + 1) / 2 * input_max
    size = tuple(int(v) for v in input_size)
    if x.shape[-2:] != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x.clamp(0, input_max)


def bundle_spacing_mm(bundle: Any, default: float = 2.2) -> float:
    """The pixel spacing the bundle resamples to (its first transform with ``spacing_mm``)."""
    for transform in bundle.config.get("scan_transforms") or []:
        if isinstance(transform, dict) and "spacing_mm" in transform:
            return float(transform["spacing_mm"])
    return default


def file_digest(path: Path) -> str:
    """SHA-256 of a file (``""`` when it does not exist)."""
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
