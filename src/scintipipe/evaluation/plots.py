"""Confusion-matrix and ROC figures written as PNG.

Figures are built as bare ``matplotlib.figure.Figure`` objects (Agg rendering, no pyplot
state), so they work headless and leave the caller's backend alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, roc_curve

from scintipipe.evaluation.classification import encode_labels, probability_matrix
from scintipipe.evaluation.delong import delong_auc_ci


def _save(figure: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    return path


def _pretty(label: str) -> str:
    return label.replace("_", " ")


def plot_confusion_matrix(counts: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, dpi: int = 120) -> Path:
    """Counts and row-normalised (per true class) confusion matrices side by side.

    Args:
        counts: ``n x n`` matrix, rows true and columns predicted (``report["confusion_matrix"]["counts"]``).
        labels: class names.
        path: PNG to write.
        dpi: resolution.

    Returns:
        The path written.
    """
    matrix = np.asarray(counts, dtype=float)
    row_totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, row_totals, out=np.zeros_like(matrix), where=row_totals > 0)
    names = [_pretty(label) for label in labels]
    size = 3.0 + 1.1 * len(labels)
    figure = Figure(figsize=(2 * size, size))
    axes = figure.subplots(1, 2)
    for ax, values, title, fmt in ((axes[0], matrix.astype(int), "Counts", "d"), (axes[1], normalised, "Normalised by true class", ".2f")):
        ConfusionMatrixDisplay(values, display_labels=names).plot(ax=ax, cmap="Blues", values_format=fmt, colorbar=False, xticks_rotation=30)
        ax.set_title(title)
    return _save(figure, path, dpi)


def _roc_axes(ax: Any, title: str) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize="small")


def _curve(ax: Any, positive: np.ndarray, scores: np.ndarray, name: str) -> None:
    fpr, tpr, _ = roc_curve(positive, scores)
    auc = delong_auc_ci(positive, scores)
    ax.plot(fpr, tpr, label=f"{name}: AUC {auc['value']:.3f} (95% CI {auc['lower']:.3f}–{auc['upper']:.3f})")


def plot_roc_curves(y_true: npt.ArrayLike, y_prob: Any, labels: Sequence[str], path: str | Path, dpi: int = 120) -> Path:
    """One-vs-rest ROC curve of every class in one figure; AUC and DeLong 95 % CI in the legend.

    Classes absent from (or making up all of) ``y_true`` are left out.
    For two classes only the positive class (``labels[1]``) is drawn.

    Returns:
        The path written.
    """
    truth = encode_labels(y_true, labels)
    probs = probability_matrix(y_prob, len(labels))
    classes = [1] if len(labels) == 2 else range(len(labels))
    figure = Figure(figsize=(6, 6))
    ax = figure.subplots()
    for c in classes:
        if 0 < (truth == c).sum() < len(truth):
            _curve(ax, truth == c, probs[:, c], _pretty(labels[c]))
    _roc_axes(ax, "ROC, one class versus the rest" if len(labels) > 2 else f"ROC, {_pretty(labels[1])}")
    return _save(figure, path, dpi)


def plot_roc_comparison(
    y_true: npt.ArrayLike,
    model_probs: Mapping[str, Any],
    labels: Sequence[str],
    path: str | Path,
    classes: Sequence[str] | None = None,
    dpi: int = 120,
) -> Path:
    """ROC curves of several models on the same cases, one panel per class.

    Args:
        y_true: true class per case (names or indices).
        model_probs: ``{model name: probabilities}``, each as in :func:`plot_roc_curves`.
        labels: class names.
        path: PNG to write.
        classes: the classes to draw (default: the positive class for two classes, else all).
        dpi: resolution.

    Returns:
        The path written.
    """
    truth = encode_labels(y_true, labels)
    chosen = list(classes) if classes else ([labels[1]] if len(labels) == 2 else list(labels))
    columns = min(2, len(chosen))
    rows = int(np.ceil(len(chosen) / columns))
    figure = Figure(figsize=(6 * columns, 6 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, label in zip(axes.ravel(), chosen, strict=False):
        c = list(labels).index(label)
        positive = truth == c
        if 0 < positive.sum() < len(truth):
            for model, probs in model_probs.items():
                _curve(ax, positive, probability_matrix(probs, len(labels))[:, c], model)
        _roc_axes(ax, _pretty(label))
    for ax in axes.ravel()[len(chosen) :]:
        ax.set_visible(False)
    return _save(figure, path, dpi)
