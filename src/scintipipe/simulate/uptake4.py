"""The ``uptake4`` phantom: four 99mTc-pertechnetate uptake patterns (seed 002).

=====================  ==================================================================
label                  what is simulated
=====================  ==================================================================
diffusely_increased    enlarged gland (x1.1-1.6), homogeneous, uptake 3-13 % of the
                       injected activity growing with gland size (Graves' disease),
                       salivary glands and blood pool relatively faint, pyramidal lobe in
                       30 %
diffusely_decreased    normal-sized gland with uptake 0.02-0.35 % (thyroiditis, iodine
                       load, suppression): thyroid fainter than the salivary glands,
                       blood pool prominent
focal_increased        one hot nodule (8-18 mm radius, 3-40x the parenchyma) in a lobe
                       or the isthmus, the rest of the gland partly or wholly suppressed;
                       uptake 0.5-4 %
heterogeneous          enlarged, asymmetric gland (x1.2-1.8) with 2-5 nodules, at least
                       one hot and one cold, and coarse parenchymal texture; uptake 0.4-3 %
=====================  ==================================================================

Default class mixes are the training set of centre 1 (2468 scans) for centre ``a`` and
the external set of centre 2 (302 scans) for ``b`` (seed 002, Table 1).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from scintipipe.simulate.case import SimulatedCase, TaskSimulator
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.head_neck import sample_head_neck
from scintipipe.simulate.neck import NeckActivities, log_uniform, simulate_neck_view, typical_salivary_uptake
from scintipipe.simulate.thyroid import Nodule, ThyroidShape, point_in_lobe, sample_thyroid_shape

LABELS = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous")

CLASS_MIX_CENTER_A = {"diffusely_increased": 1040 / 2468, "diffusely_decreased": 902 / 2468, "focal_increased": 97 / 2468, "heterogeneous": 429 / 2468}
CLASS_MIX_CENTER_B = {"diffusely_increased": 120 / 302, "diffusely_decreased": 49 / 302, "focal_increased": 13 / 302, "heterogeneous": 120 / 302}


def _diffusely_increased(rng: np.random.Generator) -> tuple[ThyroidShape, NeckActivities, float, dict]:
    enlargement = rng.uniform(1.1, 1.6)
    shape = sample_thyroid_shape(rng, enlargement=enlargement, asymmetry=0.08, pyramidal_probability=0.3, isthmus_probability=0.95)
    uptake = float(np.clip(log_uniform(rng, 0.012, 0.05) * enlargement**2, 0.03, 0.2))  # larger glands trap more
    activities = NeckActivities(thyroid=uptake, blood_pool_scale=rng.uniform(0.8, 1.2), **typical_salivary_uptake(rng, rng.uniform(0.7, 1.1)))
    return shape, activities, rng.uniform(0.04, 0.09), {}


def _diffusely_decreased(rng: np.random.Generator) -> tuple[ThyroidShape, NeckActivities, float, dict]:
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(0.85, 1.2), asymmetry=0.12, pyramidal_probability=0.0, isthmus_probability=0.6)
    activities = NeckActivities(thyroid=log_uniform(rng, 0.0002, 0.003), blood_pool_scale=rng.uniform(0.9, 1.4), **typical_salivary_uptake(rng, rng.uniform(1.0, 1.6)))
    return shape, activities, rng.uniform(0.08, 0.2), {}


def _focal_increased(rng: np.random.Generator) -> tuple[ThyroidShape, NeckActivities, float, dict]:
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(0.9, 1.2), asymmetry=0.1, pyramidal_probability=0.0)
    where = rng.choice(["right", "left", "isthmus"], p=[0.46, 0.46, 0.08]) if shape.isthmus is not None else rng.choice(["right", "left"])
    radius = rng.uniform(8.0, 18.0)
    if where == "isthmus":
        cx, cy = shape.isthmus.cx + rng.normal(0, 3), shape.isthmus.cy
    else:
        cx, cy = point_in_lobe(rng, shape.lobe(where), 0.45)
    suppression = log_uniform(rng, 3.0, 40.0)
    nodule = Nodule(cx, cy, radius, relative_concentration=suppression)
    activities = NeckActivities(thyroid=log_uniform(rng, 0.005, 0.04), blood_pool_scale=rng.uniform(0.8, 1.1), **typical_salivary_uptake(rng, rng.uniform(0.8, 1.2)))
    return replace(shape, nodules=(nodule,)), activities, rng.uniform(0.05, 0.12), {"nodule_site": str(where), "nodule_to_parenchyma": round(suppression, 2)}


def _heterogeneous(rng: np.random.Generator) -> tuple[ThyroidShape, NeckActivities, float, dict]:
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(1.2, 1.8), asymmetry=0.3, pyramidal_probability=0.05, isthmus_probability=0.9)
    count = int(rng.integers(2, 6))
    kinds = [True, False] + [bool(rng.random() < 0.5) for _ in range(count - 2)]
    nodules = []
    for hot in kinds:
        side = "right" if rng.random() < 0.5 else "left"
        cx, cy = point_in_lobe(rng, shape.lobe(side), 0.7)
        radius = rng.uniform(5.0, 12.0)
        relative = rng.uniform(2.0, 4.5) if hot else rng.uniform(0.0, 0.35)
        nodules.append(Nodule(cx, cy, radius, relative))
    activities = NeckActivities(thyroid=log_uniform(rng, 0.004, 0.03), blood_pool_scale=rng.uniform(0.8, 1.2), **typical_salivary_uptake(rng, rng.uniform(0.8, 1.2)))
    return replace(shape, nodules=tuple(nodules)), activities, rng.uniform(0.22, 0.4), {"hot_nodules": sum(kinds), "cold_nodules": count - sum(kinds)}


PATTERNS = {
    "diffusely_increased": _diffusely_increased,
    "diffusely_decreased": _diffusely_decreased,
    "focal_increased": _focal_increased,
    "heterogeneous": _heterogeneous,
}


def simulate_uptake4_case(rng: np.random.Generator, center: CenterProfile, label: str) -> SimulatedCase:
    """Simulate one anterior 99mTc-pertechnetate view showing the pattern ``label``.

    Args:
        rng: random generator; the same state gives the same case.
        center: acquisition profile (see :data:`scintipipe.simulate.CENTERS`).
        label: one of :data:`LABELS`.
    """
    shape, activities, texture_sigma, extra = PATTERNS[label](rng)
    anatomy = sample_head_neck(rng)
    extra = {"pattern": label, **extra}
    return simulate_neck_view(rng, center, label, shape, anatomy, activities, texture_sigma=texture_sigma, extra_metadata=extra)


UPTAKE4_SIMULATOR = TaskSimulator(
    task="uptake4",
    labels=LABELS,
    simulate_case=simulate_uptake4_case,
    class_mix=CLASS_MIX_CENTER_A,
    class_mix_by_center={"a": CLASS_MIX_CENTER_A, "b": CLASS_MIX_CENTER_B},
    description="99mTc-pertechnetate uptake patterns (seed 002)",
)
