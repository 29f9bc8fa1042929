"""Labelled data sets: a folder of scans and a ``file,label`` CSV, loaded and preprocessed once.

Scans go through the same ``load`` and ``preprocess`` stages as ``scintipipe run`` (the
pipeline runner calls the hooks), so whatever a clinic's plugins can read, it can train
on, and training sees exactly the inputs inference will see.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scintipipe.errors import ScintipipeError
from scintipipe.pipeline import Pipeline, plain_tensor
from scintipipe.transforms.unknown_scale import make_pending_zoom_inputs


class LabelsError(ScintipipeError):
    """The labels CSV is missing, malformed, or names unknown labels or files."""


@dataclass
class ExtraTraining:
    """Labelled files added to the training fold, and only to it (synthetic scans, for one).

    :func:`scintipipe.training.train.train_bundle` splits the real labelled files into
    training and validation first, then calls ``rows`` with the training fold's views per
    label, loads what it returns through the same stages, and adds it to the training
    fold. Validation never sees these files, and a file that is also among the real
    labelled files (by path or by content) is refused.

    Attributes:
        name: what they are, for the log and the model card
            (``"scintipipe-gan DCGAN samples from gan/, ratio 0.5"``).
        rows: ``rows(train_counts)`` returns ``(path, label)`` rows; ``train_counts`` is
            ``{label: views}`` of the real training fold.
        tag: prefix of their sources (``"synthetic:case-00001.dcm"``).
    """

    name: str
    rows: Callable[[dict[str, int]], Sequence[tuple[Path, str]]]
    tag: str = "synthetic"


@dataclass
class LabelledSet:
    """Preprocessed inputs with integer targets.

    Attributes:
        inputs: ``(N, C, H, W)`` float tensor.
        targets: ``(N,)`` long tensor of label indices.
        sources: the source of each row (``file`` or ``file#view``).
        labels: the label names (index order).
        failures: ``(source, reason)`` for files that could not be used.
        data_hash: SHA-256 over the files' bytes and labels, for the model card.
        scale_inputs: ``{row: (k, C, H, W)}`` for rows the bundle classifies at ``k`` scales
            (pictures without pixel spacing at assumed fields of view, scans with one at zoom
            factors: :mod:`scintipipe.transforms.unknown_scale`); evaluation averages over
            them. Empty when the pipeline runs with ``scale_averaging`` off (training does).
        zoom_deferred: the rows of ``scale_inputs`` whose zooms the bundle averages only
            below its ``zoom_averaging_below`` threshold (``scintipipe run`` makes them for
            those scans only; evaluation makes them for all and applies the threshold).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    sources: list[str]
    labels: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)
    data_hash: str = ""
    scale_inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    zoom_deferred: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabelledSet:
        """Rows ``index`` as a new set (same labels, no failures)."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return LabelledSet(self.inputs[idx], self.targets[idx], [self.sources[i] for i in idx.tolist()], self.labels, [], self.data_hash)

    def class_counts(self) -> list[int]:
        """Rows per label."""
        return torch.bincount(self.targets, minlength=len(self.labels)).tolist()

    def concat(self, other: LabelledSet) -> LabelledSet:
        """This set followed by ``other`` (same labels; failures of both; this set's hash)."""
        if other.labels != self.labels:
            raise ValueError(f"cannot join sets with different labels: {self.labels} and {other.labels}")
        return LabelledSet(
            torch.cat([self.inputs, other.inputs]),
            torch.cat([self.targets, other.targets]),
            self.sources + other.sources,
            self.labels,
            self.failures + other.failures,
            self.data_hash,
        )


def read_labels(labels_csv: Path, data_dir: Path | None, labels: Sequence[str]) -> list[tuple[Path, str]]:
    """Read ``file,label`` rows; files are relative to ``data_dir`` (default: the CSV's folder).

    Raises:
        LabelsError: missing columns, unknown labels (listed with the known ones), or
            no rows.
    """
    if not labels_csv.is_file():
        raise LabelsError(f"labels file {labels_csv} does not exist")
    base = data_dir or labels_csv.parent
    with labels_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
            raise LabelsError(f"{labels_csv} must have the columns file,label (found {reader.fieldnames})")
        rows = [(base / row["file"], row["label"].strip()) for row in reader if row["file"].strip()]
    unknown = sorted({label for _, label in rows if label not in labels})
    if unknown:
        raise LabelsError(f"{labels_csv}: unknown labels {unknown}; this task's labels are {list(labels)}")
    if not rows:
        raise LabelsError(f"{labels_csv} has no rows")
    return rows


def hash_dataset(rows: Sequence[tuple[Path, str]]) -> str:
    """SHA-256 over each file's bytes and its label, in a stable order."""
    digest = hashlib.sha256()
    for path, label in sorted(rows, key=lambda r: str(r[0])):
        digest.update(path.name.encode())
        digest.update(label.encode())
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def load_labelled_set(pipeline: Pipeline, rows: Sequence[tuple[Path, str]], progress: bool | None = None) -> LabelledSet:
    """Load and preprocess every labelled file through the pipeline's stages.

    Every view of a multi-view file gets the file's label. Files that fail are recorded
    in ``failures`` and left out; nothing else is lost.

    Args:
        pipeline: a :class:`Pipeline` whose bundle defines the preprocessing.
        rows: ``(path, label)`` pairs from :func:`read_labels`.
        progress: progress bar (``None``: on a terminal).
    """
    labels = pipeline.bundle.labels
    inputs: list[torch.Tensor] = []
    targets: list[int] = []
    sources: list[str] = []
    failures: list[tuple[str, str]] = []
    scale_inputs: dict[int, torch.Tensor] = {}
    zoom_deferred: set[int] = set()
    for path, label in tqdm(rows, desc="loading", unit="file", disable=None if progress is None else not progress):
        try:
            for scan in pipeline.load(path):
                case = pipeline.prepare(scan)
                if case.get("zoom_pending") is not None:
                    zoom_deferred.add(len(inputs))
                    make_pending_zoom_inputs(case, pipeline.bundle.scan_transform)
                if case.get("scale_inputs") is not None:
                    scale_inputs[len(inputs)] = plain_tensor(case["scale_inputs"]).float()
                inputs.append(plain_tensor(case["input"]).float())
                targets.append(labels.index(label))
                sources.append(case["source"])
        except (ScintipipeError, ValueError) as exc:  # recorded, not lost (the pipeline wraps a plugin's exceptions in PluginError)
            failures.append((str(path), getattr(exc, "reason", None) or str(exc)))
    if not inputs:
        reasons = "; ".join(f"{s}: {r}" for s, r in failures[:3])
        raise LabelsError(f"none of the {len(rows)} labelled files could be loaded ({reasons})")
    return LabelledSet(
        torch.stack(inputs), torch.as_tensor(targets), sources, list(labels), failures, hash_dataset(rows), scale_inputs, zoom_deferred
    )
