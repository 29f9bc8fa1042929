"""kth_smallest equals numpy's partition exactly, and the content gate measures the same with it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scintipipe import order_statistics
from scintipipe.gate import content
from scintipipe.order_statistics import MIN_SIZE, STRIDE, kth_smallest


def partitioned(values: np.ndarray, rank: int) -> np.generic:
    return np.partition(values.ravel(), rank)[rank]


@settings(max_examples=300, deadline=None)
@given(
    values=arrays(np.float32, st.integers(1, 3 * MIN_SIZE), elements=st.floats(-1e6, 1e6, width=32)),
    where=st.floats(0, 1),
)
def test_equals_partition_on_any_array(values: np.ndarray, where: float) -> None:
    rank = int(where * (values.size - 1))
    got, expected = kth_smallest(values, rank), partitioned(values, rank)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16])
@pytest.mark.parametrize("kind", ["uniform", "ties", "sorted", "reversed", "spikes"])
def test_equals_partition_on_large_images(dtype: type, kind: str) -> None:
    rng = np.random.default_rng(0)
    n = 128 * 128
    values = {
        "uniform": rng.random(n) * 1000,
        "ties": rng.poisson(2, n).astype(float),
        "sorted": np.sort(rng.normal(100, 10, n)),
        "reversed": np.sort(rng.normal(100, 10, n))[::-1].copy(),
        "spikes": np.where(rng.random(n) < 0.001, 5000.0, 1.0),
    }[kind].astype(dtype)
    for rank in (0, 1, n // 2, int(0.9 * (n - 1)), int(0.99 * (n - 1)), n - 2, n - 1):
        assert kth_smallest(values.reshape(128, 128), rank) == partitioned(values, rank)


def test_a_sample_that_misleads_falls_back_to_the_full_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.full(20 * MIN_SIZE, 10.0, np.float32)
    values[::STRIDE] = 0.0  # every sampled value is the smallest: the bracket is far too low
    calls = []
    real = np.partition
    monkeypatch.setattr(order_statistics.np, "partition", lambda a, k: calls.append(a.size) or real(a, k))
    rank = values.size // 2
    assert kth_smallest(values, rank) == 10.0
    assert calls[-1] == values.size  # the exact full partition gave the answer


def test_rank_outside_the_array_is_an_error() -> None:
    with pytest.raises(IndexError, match="rank 5 is outside an array of 5 values"):
        kth_smallest(np.zeros(5), 5)


def test_content_gate_measures_exactly_as_with_numpy_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR

    rng = np.random.default_rng(3)
    cases = [
        UPTAKE4_SIMULATOR(rng, CENTERS[center], label) for center in ("a", "b", "randomised") for label in ("focal_increased", "diffusely_decreased")
    ]
    images = [case.counts.astype(np.float32) for case in cases]
    images += [rng.poisson(5, (256, 256)).astype(np.float32), np.ones((300, 200), np.float32)]
    fast = [content.measure_counts(image, (2.0, 2.0)) for image in images]
    monkeypatch.setattr(content, "kth_smallest", partitioned)
    assert fast == [content.measure_counts(image, (2.0, 2.0)) for image in images]
