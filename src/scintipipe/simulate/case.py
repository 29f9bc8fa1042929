"""The generic simulated case and the per-task simulator description."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scintipipe.simulate.centers import CenterProfile

CaseFactory = Callable[[np.random.Generator, CenterProfile, str], "SimulatedCase"]


@dataclass
class SimulatedCase:
    """One simulated planar acquisition with its ground truth.

    Attributes:
        counts: detector counts, ``uint16`` of shape ``(matrix, matrix)``, rows head to
            feet, columns patient's right to left (anterior view as displayed).
        masks: structure name to boolean footprint on the detector grid
            (``thyroid_right``, ``thyroid_left``, ``isthmus``, ``nodules`` ...).
        label: the class label.
        pixel_mm: pixel spacing.
        frame_duration_s: acquisition time the count preset took.
        metadata: truth and acquisition details (``true_uptake_percent``,
            ``injected_mbq``, ``minutes_post_injection``, per-structure activities ...).
        expected: the noise-free expected counts (float32), for tests and analysis.
        syringes: optional ``{"full": SyringeImage, "empty": SyringeImage}``.
        acquisition_profile: the concrete profile this case was acquired with (a drawn
            one for the ``randomised`` centre); writers use it for matrix, spacing and
            collimator. ``None``: the centre the case was asked for.
    """

    counts: np.ndarray
    masks: dict[str, np.ndarray]
    label: str
    pixel_mm: float
    frame_duration_s: float
    metadata: dict[str, Any] = field(default_factory=dict)
    expected: np.ndarray | None = None
    syringes: dict[str, Any] = field(default_factory=dict)
    acquisition_profile: CenterProfile | None = None

    @property
    def total_counts(self) -> int:
        """Sum of the counts."""
        return int(self.counts.sum(dtype=np.int64))


@dataclass(frozen=True)
class TaskSimulator:
    """What a task plugin registers with ``register.simulator(task, TaskSimulator(...))``.

    Calling it is the factory: ``simulator(rng, center, label) -> SimulatedCase``.

    Attributes:
        task: task name.
        labels: class labels in the task's order.
        simulate_case: the factory.
        class_mix: default fraction per label (sums to one).
        class_mix_by_center: centre-specific mixes (e.g. from a paper's table).
        description: one line for help texts.
    """

    task: str
    labels: tuple[str, ...]
    simulate_case: CaseFactory
    class_mix: Mapping[str, float]
    class_mix_by_center: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    description: str = ""

    def __call__(self, rng: np.random.Generator, center: CenterProfile, label: str) -> SimulatedCase:
        if label not in self.labels:
            raise ValueError(f"task {self.task!r} has no label {label!r}; labels: {', '.join(self.labels)}")
        return self.simulate_case(rng, center, label)

    def default_class_mix(self, center_name: str) -> dict[str, float]:
        """The mix for ``center_name``, else the task's default."""
        return dict(self.class_mix_by_center.get(center_name, self.class_mix))
