"""Full and empty syringe images: the known activity an uptake measurement divides by.

The full syringe is imaged a few minutes before the injection and the empty one (residual
activity) a few minutes after, each for a fixed time, in air at a fixed distance. With
the thyroid counts, these give the measured uptake; the simulator records the true one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from scintipipe.simulate.anatomy import Grid
from scintipipe.simulate.camera import Layer, acquire_timed, bin_pixels, project
from scintipipe.simulate.centers import CenterProfile


@dataclass
class SyringeImage:
    """One syringe acquisition.

    Attributes:
        counts: ``uint16`` counts.
        activity_mbq: activity in the syringe at the acquisition.
        minutes_from_injection: acquisition time relative to the injection (negative
            before).
        duration_s: fixed acquisition time.
    """

    counts: np.ndarray
    activity_mbq: float
    minutes_from_injection: float
    duration_s: float


def syringe_rate(center: CenterProfile, activity_mbq: float, rng: np.random.Generator, distance_mm: float = 100.0) -> np.ndarray:
    """Expected count rate of a horizontal syringe (cylinder of liquid) in air."""
    size = center.fine_matrix
    pixel = center.fine_pixel_mm
    grid = Grid(size, pixel, size / 2 + rng.normal(0, 5) / pixel, size / 2 + rng.normal(0, 5) / pixel)
    radius = rng.uniform(4.5, 6.5)
    half_length = rng.uniform(12.0, 25.0)
    full = slice(0, size)
    x, y = grid.coordinates(full, full)
    chord = 2.0 * np.sqrt(np.clip(radius**2 - y**2, 0, None)) * (np.abs(x) <= half_length)
    density = chord / chord.sum()
    camera = center.camera
    no_scatter = replace(camera, scatter_fraction=0.02)  # in air: hardly any scatter
    fine = project([Layer(density * activity_mbq, distance_mm)], no_scatter, pixel)
    return bin_pixels(fine, center.oversampling)


def simulate_syringes(
    rng: np.random.Generator,
    center: CenterProfile,
    injected_mbq: float,
    residual_fraction: float | None = None,
    duration_s: float = 60.0,
) -> dict[str, SyringeImage]:
    """Full (before) and empty (after) syringe images for an injection of ``injected_mbq``.

    Args:
        rng: random generator.
        center: acquisition profile.
        injected_mbq: net activity that entered the patient, at the injection time.
        residual_fraction: activity left in the syringe relative to the injected one
            (default: random 1-5 %).
        duration_s: acquisition time of each image.

    Returns:
        ``{"full": SyringeImage, "empty": SyringeImage}``; the full syringe's activity,
        decayed to the injection, equals ``injected_mbq`` plus the residual.
    """
    camera = center.camera
    residual = injected_mbq * (rng.uniform(0.01, 0.05) if residual_fraction is None else residual_fraction)
    before = -rng.uniform(2.0, 10.0)
    after = rng.uniform(1.0, 5.0)
    full_activity = (injected_mbq + residual) / camera.decay_factor(-before)
    empty_activity = residual * camera.decay_factor(after)
    out = {}
    for name, activity, minutes in (("full", full_activity, before), ("empty", empty_activity, after)):
        rate = syringe_rate(center, activity, rng)
        out[name] = SyringeImage(acquire_timed(rate, duration_s, rng), float(activity), float(minutes), duration_s)
    return out


def measured_uptake_percent(
    thyroid_net_counts: float, thyroid_duration_s: float, minutes_post_injection: float, syringes: dict[str, SyringeImage], half_life_h: float
) -> float:
    """Classic planar uptake: net thyroid count rate over the injected count rate, all
    decay-corrected to the injection time (no attenuation correction)."""

    def at_injection(rate: float, minutes: float) -> float:
        return rate * math.exp(math.log(2) * minutes / (60.0 * half_life_h))

    full = syringes["full"]
    empty = syringes["empty"]
    injected_rate = at_injection(full.counts.sum(dtype=np.int64) / full.duration_s, full.minutes_from_injection) - at_injection(
        empty.counts.sum(dtype=np.int64) / empty.duration_s, empty.minutes_from_injection
    )
    thyroid_rate = at_injection(thyroid_net_counts / thyroid_duration_s, minutes_post_injection)
    return 100.0 * thyroid_rate / injected_rate
