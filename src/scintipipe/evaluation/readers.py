"""Model-versus-reader comparison on the same scans (the junior and senior physicians of the multicentre disease study)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from scintipipe.evaluation.classification import encode_labels, one_vs_rest_counts
from scintipipe.evaluation.intervals import proportion
from scintipipe.evaluation.paired import cohen_kappa, mcnemar_test


def read_reader_table(path: str | Path) -> dict[str, dict[str, str]]:
    """Reader calls from a ``file,reader,label`` CSV as ``{reader: {file: label}}``."""
    calls: dict[str, dict[str, str]] = {}
    with Path(path).open(newline="") as handle:
        rows = csv.DictReader(handle)
        missing = {"file", "reader", "label"} - set(rows.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (need file,reader,label)")
        for row in rows:
            reader_calls = calls.setdefault(row["reader"].strip(), {})
            file = row["file"].strip()
            if file in reader_calls:
                raise ValueError(f"{path}: reader {row['reader']!r} calls {file!r} twice")
            reader_calls[file] = row["label"].strip()
    return calls


def diagnostic_summary(truth: Sequence[str], calls: Sequence[str], labels: Sequence[str], average: str = "macro", confidence: float = 0.95) -> dict:
    """Accuracy, sensitivity and specificity of one set of calls.

    Args:
        truth: true label per case.
        calls: called label per case.
        labels: class names.
        average: ``"macro"``: overall accuracy (share of right calls, Wilson interval) and
            the unweighted mean of the one-vs-rest sensitivities and specificities (no
            interval); ``"per_class"``: one-vs-rest accuracy, sensitivity and specificity of
            each class with Wilson intervals.
        confidence: level of the intervals.
    """
    true_codes, call_codes = encode_labels(truth, labels), encode_labels(calls, labels)
    matrix = confusion_matrix(true_codes, call_codes, labels=list(range(len(labels))))
    counts = one_vs_rest_counts(matrix)
    if average == "per_class":
        return {
            "n": int(matrix.sum()),
            "per_class": {
                label: {
                    "accuracy": proportion(int(tp + tn), int(tp + fp + fn + tn), confidence),
                    "sensitivity": proportion(int(tp), int(tp + fn), confidence),
                    "specificity": proportion(int(tn), int(tn + fp), confidence),
                }
                for label, (tp, fp, fn, tn) in zip(labels, counts, strict=True)
            },
        }
    if average != "macro":
        raise ValueError(f"average must be 'macro' or 'per_class', got {average!r}")
    tp, fp, fn, tn = counts.T
    return {
        "n": int(matrix.sum()),
        "accuracy": proportion(int(np.trace(matrix)), int(matrix.sum()), confidence),
        "sensitivity": {"value": _mean_of_defined(tp, tp + fn)},
        "specificity": {"value": _mean_of_defined(tn, tn + fp)},
    }


def _mean_of_defined(numerators: np.ndarray, denominators: np.ndarray) -> float | None:
    """Unweighted mean of the ratios whose denominator is not 0 (``None`` if there is none)."""
    defined = denominators > 0
    return float(np.mean(numerators[defined] / denominators[defined])) if defined.any() else None


def compare_readers(
    truth: Mapping[str, str],
    model_calls: Mapping[str, str],
    reader_calls: Mapping[str, Mapping[str, str]] | str | Path,
    labels: Sequence[str],
    average: str = "macro",
    confidence: float = 0.95,
) -> dict:
    """Each reader's accuracy, sensitivity and specificity beside the model's.

    Args:
        truth: ``{file: true label}``.
        model_calls: ``{file: model's predicted label}``.
        reader_calls: ``{reader: {file: label}}`` or the path of a ``file,reader,label`` CSV.
        labels: class names.
        average: ``"macro"`` or ``"per_class"`` (see :func:`diagnostic_summary`).
        confidence: level of the intervals.

    Returns:
        ``model`` (summary on every file with truth and a model call), ``readers``
        (``{reader: summary + "mcnemar_vs_model"}``, each on the files that reader called;
        McNemar compares model and reader on exactly those files) and ``kappa`` (a list of
        ``{"reader_a", "reader_b", "kappa", "n", "observed_agreement"}`` for every pair of
        readers on the files both called).
    """
    if not isinstance(reader_calls, Mapping):
        reader_calls = read_reader_table(reader_calls)
    model_files = [f for f in truth if f in model_calls]
    result: dict = {
        "labels": list(labels),
        "average": average,
        "model": diagnostic_summary([truth[f] for f in model_files], [model_calls[f] for f in model_files], labels, average, confidence),
        "readers": {},
        "kappa": [],
    }
    for reader, calls in reader_calls.items():
        files = [f for f in model_files if f in calls]
        if not files:
            raise ValueError(f"reader {reader!r} called none of the files that have truth and a model call")
        summary = diagnostic_summary([truth[f] for f in files], [calls[f] for f in files], labels, average, confidence)
        summary["mcnemar_vs_model"] = mcnemar_test([model_calls[f] == truth[f] for f in files], [calls[f] == truth[f] for f in files])
        result["readers"][reader] = summary
    for reader_a, reader_b in combinations(reader_calls, 2):
        shared = [f for f in reader_calls[reader_a] if f in reader_calls[reader_b]]
        if shared:
            agreement = cohen_kappa([reader_calls[reader_a][f] for f in shared], [reader_calls[reader_b][f] for f in shared])
            result["kappa"].append({"reader_a": reader_a, "reader_b": reader_b, **agreement})
    return result
