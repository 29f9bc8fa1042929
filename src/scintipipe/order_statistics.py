"""Exact order statistics of large arrays, faster than a full ``numpy.partition``.

The content gate and the count normalisation take a few percentiles of every image (16 k to
65 k values each, several times a scan). :func:`kth_smallest` returns exactly what
``np.partition(values, rank)[rank]`` returns, but first brackets the answer between two
order statistics of a strided sample (the idea of Floyd and Rivest's selection), so the
exact partition runs on the few values between them. When the bracket misses, which the
sample's margins make rare, it falls back to the full partition: the result is always exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: arrays smaller than this are partitioned directly (the sampling does not pay)
MIN_SIZE = 4096
#: every STRIDE-th value is in the sample
STRIDE = 16
#: how far each side of the bracket lies from the sample's own estimate, in standard
#: deviations of the answer's rank in the sample
MARGIN = 4


def kth_smallest(values: np.ndarray, rank: int) -> Any:
    """``np.partition(values.ravel(), rank)[rank]``, computed on fewer values.

    The result is that same NumPy scalar (the array's dtype), so arithmetic on it rounds
    exactly as it did on the partition's element.

    Args:
        values: the array (any shape; flattened). NaNs are not expected.
        rank: 0-based rank in ascending order, ``0 <= rank < values.size``.

    Example:
        >>> values = np.random.default_rng(0).random(10000, dtype=np.float32)
        >>> kth_smallest(values, 9899) == np.partition(values, 9899)[9899]
        True
    """
    flat = np.ravel(values)
    n = flat.size
    if not 0 <= rank < n:
        raise IndexError(f"rank {rank} is outside an array of {n} values")
    if n < MIN_SIZE:
        return np.partition(flat, rank)[rank]
    sample = flat[::STRIDE]
    m = sample.size
    share = rank / (n - 1)
    estimate = int(share * (m - 1))
    # the sample rank of the answer spreads like a binomial: MARGIN standard deviations each side
    margin = int(MARGIN * np.sqrt(m * share * (1 - share))) + 2
    low_rank, high_rank = estimate - margin, estimate + 1 + margin
    # the sorted values are: those below the lower bound, the band, those above the upper
    # bound; a bound past either end of the sample is left out (the band runs to that end)
    kept = [r for r in (low_rank, high_rank) if 0 < r < m - 1]
    bounds = np.partition(sample, kept) if kept else sample
    inside = None
    below = 0
    if 0 < low_rank:
        inside = flat >= bounds[low_rank]
        below = n - int(np.count_nonzero(inside))
    if high_rank < m - 1:
        under_high = flat <= bounds[high_rank]
        inside = under_high if inside is None else inside & under_high
    band = flat if inside is None else flat[inside]
    if below <= rank < below + band.size:
        return np.partition(band, rank - below)[rank - below]
    return np.partition(flat, rank)[rank]  # the bracket missed: the full partition
