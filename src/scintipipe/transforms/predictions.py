"""Postprocessing that writes predictions in scintipipe's CSV layout."""

from __future__ import annotations

import csv
import sys
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.transforms import MapTransform


def prediction_row(source: str, probabilities: Sequence[float], labels: Sequence[str]) -> dict[str, Any]:
    """One ``predictions.csv`` row: ``source,label,confidence,prob_<label>...``.

    Args:
        source: the input file (``file#view`` for one view of a multi-frame file).
        probabilities: class probabilities in label order.
        labels: class names.
    """
    probs = [float(p) for p in probabilities]
    best = max(range(len(probs)), key=probs.__getitem__)
    row: dict[str, Any] = {"source": source, "label": labels[best], "confidence": round(probs[best], 6)}
    # interned: a run keeps every row for report_run, and one shared key per label saves ~280 bytes a scan
    row.update({sys.intern(f"prob_{label}"): round(p, 6) for label, p in zip(labels, probs, strict=True)})
    return row


def prediction_columns(labels: Sequence[str]) -> list[str]:
    """The header of ``predictions.csv`` for a label set."""
    return ["source", "label", "confidence"] + [f"prob_{label}" for label in labels]


class SavePredictionsd(MapTransform):
    """Append each decollated prediction to ``<output_dir>/predictions.csv``.

    Args:
        keys: the key holding class probabilities (after softmax).
        labels: class names in output order.
        output_dir: folder of the CSV; created when missing.
        source_key: key whose ``MetaTensor`` meta carries ``filename_or_obj``.
    """

    def __init__(self, keys: str, labels: Sequence[str], output_dir: str, source_key: str = "image"):
        super().__init__(keys)
        self.labels = list(labels)
        self.path = Path(output_dir) / "predictions.csv"
        self.source_key = source_key
        self._started = False

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            probs = torch.as_tensor(d[key]).flatten().tolist()
            meta = getattr(d.get(self.source_key), "meta", {}) or {}
            row = prediction_row(str(meta.get("filename_or_obj", "")), probs, self.labels)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = "a" if self._started else "w"
            with self.path.open(mode, newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=prediction_columns(self.labels))
                if not self._started:
                    writer.writeheader()
                writer.writerow(row)
            self._started = True
        return d
