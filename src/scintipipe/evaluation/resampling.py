"""Resampling designs (k-fold, repeated stratified splits) and their summaries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from scintipipe.evaluation.paired import mann_whitney


def stratified_kfold_splits(y: npt.ArrayLike, n_splits: int = 5, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled stratified k-fold: yields ``(train_indices, test_indices)`` per fold.

    Every case is in exactly one test fold; class proportions are kept in each fold.
    """
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    labels = np.asarray(y)
    yield from splitter.split(np.zeros(len(labels)), labels)


def repeated_stratified_splits(
    y: npt.ArrayLike, n_repeats: int = 10, test_size: float = 0.25, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Independent stratified random train/test splits (default: ten 3:1 splits).

    Yields:
        ``(train_indices, test_indices)`` per repeat.
    """
    splitter = StratifiedShuffleSplit(n_splits=n_repeats, test_size=test_size, random_state=seed)
    labels = np.asarray(y)
    yield from splitter.split(np.zeros(len(labels)), labels)


def summarize_splits(per_split: Sequence[Mapping[str, float | None]]) -> dict[str, dict]:
    """Mean and standard deviation (ddof 1) of each metric across folds or splits.

    Args:
        per_split: one ``{metric: value}`` mapping per split, e.g. from
            :func:`scintipipe.evaluation.classification.class_summary`. ``None`` values
            (undefined in that split) are left out of that metric's summary.

    Returns:
        ``{metric: {"mean", "sd", "n", "values"}}`` in the metrics' first-seen order.
    """
    names: list[str] = []
    for row in per_split:
        names.extend(name for name in row if name not in names)
    summary = {}
    for name in names:
        values = [float(value) for row in per_split if (value := row.get(name)) is not None]
        array = np.asarray(values, dtype=float)
        summary[name] = {
            "mean": float(array.mean()) if array.size else None,
            "sd": float(array.std(ddof=1)) if array.size > 1 else None,
            "n": int(array.size),
            "values": values,
        }
    return summary


def compare_split_metrics(per_split_a: Sequence[Mapping[str, float | None]], per_split_b: Sequence[Mapping[str, float | None]]) -> dict[str, dict]:
    """Mann-Whitney U test of every metric the two models share, across their splits.

    Returns:
        ``{metric: mann_whitney result}``; metrics with no values on one side are skipped.
    """
    summary_a, summary_b = summarize_splits(per_split_a), summarize_splits(per_split_b)
    return {
        name: mann_whitney(summary_a[name]["values"], summary_b[name]["values"])
        for name in summary_a
        if name in summary_b and summary_a[name]["n"] and summary_b[name]["n"]
    }
