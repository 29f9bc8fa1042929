"""Anterior and posterior views of one study combined into one decision.

The runner classifies each view on its own (``scan.dcm#anterior``,
``scan.dcm#posterior``). :func:`combine_views` averages the views' class probabilities
and takes the most probable class, so a study is ``present`` when the mean probability of
residual tissue across its views exceeds one half.

Why the mean and not the maximum: residual tissue in the thyroid bed is seen on both
views (fainter on the posterior, through 9-10 cm of neck), so a real remnant raises both
probabilities; the maximum would let one noisy view (a swallowed-saliva streak, a star
artefact) decide alone and trade specificity for sensitivity, and specificity is what
spares a patient without residual tissue an ablative 131I dose (seed 003, Discussion).
``rule="max"`` is there for a site that wants the sensitive reading.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

RULES = ("mean", "max")
POSITIVE = "present"


def study_of(source: str) -> str:
    """The study a view belongs to: the file, without ``#view``."""
    return source.split("#", 1)[0]


def combine_views(probabilities: np.ndarray, labels: Sequence[str], rule: str = "mean") -> np.ndarray:
    """One probability row from the views' rows ``(n_views, n_labels)``.

    Args:
        probabilities: class probabilities per view.
        labels: class names (``rule="max"`` maximises the ``present`` column).
        rule: ``mean`` (average the rows) or ``max`` (the view most in favour of
            residual tissue decides).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if rule == "mean":
        return probabilities.mean(axis=0)
    if rule == "max":
        return probabilities[int(probabilities[:, list(labels).index(POSITIVE)].argmax())]
    raise ValueError(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")


def study_rows(cases: Iterable[dict[str, Any]], labels: Sequence[str], rule: str = "mean") -> list[dict[str, Any]]:
    """``study_predictions.csv`` rows from the runner's per-view records."""
    views: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for case in cases:
        views.setdefault(study_of(case["source"]), []).append(case)
    rows = []
    for study, members in views.items():
        probs = np.array([[m["prediction"][f"prob_{label}"] for label in labels] for m in members])
        combined = combine_views(probs, labels, rule)
        best = int(combined.argmax())
        row: dict[str, Any] = {"study": study, "views": ";".join(m["source"].partition("#")[2] or "single" for m in members), "rule": rule}
        row |= {"label": labels[best], "confidence": round(float(combined[best]), 6)}
        row |= {f"prob_{label}": round(float(p), 6) for label, p in zip(labels, combined)}
        rows.append(row)
    return rows


def write_study_predictions(cases: Iterable[dict[str, Any]], labels: Sequence[str], path: Path, rule: str = "mean") -> Path:
    """Write one row per study: ``study,views,rule,label,confidence,prob_<label>...``."""
    rows = study_rows(cases, labels, rule)
    columns = ["study", "views", "rule", "label", "confidence"] + [f"prob_{label}" for label in labels]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path
