"""The ``disease`` phantom: four thyroid-disease classes on anterior 99mTc-pertechnetate
neck views (seed 001). Everything physical (decay, attenuation, collimator, scatter,
count preset, Poisson noise, masks) is the core's :func:`simulate_neck_view`; this module
only chooses the gland and the activities per class, reusing the core's ``uptake4`` and
``normal`` building blocks.

=====================  ==================================================================
label                  what is simulated
=====================  ==================================================================
graves                 the core's Graves pattern (uptake4 ``diffusely_increased``):
                       enlarged gland (x1.1-1.6), homogeneous, uptake 3-20 % of the
                       injected activity, salivary glands and blood pool relatively faint
subacute_thyroiditis   normal-sized gland with uptake 0.01-0.15 % (< 0.5 %): thyroid
                       fainter than the salivary glands, blood pool prominent
thyroid_tumour         a normal gland (normal uptake 0.4-2 %) with one nodule, cold
                       (60 %, 0-0.3 x the parenchyma) or hot (40 %, 2.5-6 x) of 6-14 mm
                       radius; the rest of the gland is not suppressed
normal                 the core's normal scan (uptake 0.4-2 %, normal size, homogeneous)
=====================  ==================================================================

The default class mix is balanced (the seed gives only the total of 3194 scans, not the
per-class counts).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from scintipipe.simulate.case import SimulatedCase, TaskSimulator
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.head_neck import sample_head_neck
from scintipipe.simulate.neck import NeckActivities, log_uniform, simulate_neck_view, typical_salivary_uptake
from scintipipe.simulate.normal import normal_activities, simulate_normal_case
from scintipipe.simulate.thyroid import Nodule, point_in_lobe, sample_thyroid_shape
from scintipipe.simulate.uptake4 import PATTERNS as UPTAKE4_PATTERNS

LABELS = ("graves", "subacute_thyroiditis", "thyroid_tumour", "normal")
BALANCED_MIX = {label: 0.25 for label in LABELS}


def _graves(rng: np.random.Generator):
    return UPTAKE4_PATTERNS["diffusely_increased"](rng)


def _subacute_thyroiditis(rng: np.random.Generator):
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(0.9, 1.25), asymmetry=0.12, pyramidal_probability=0.0, isthmus_probability=0.6)
    activities = NeckActivities(thyroid=log_uniform(rng, 0.0001, 0.0015), blood_pool_scale=rng.uniform(1.0, 1.5), **typical_salivary_uptake(rng, rng.uniform(1.2, 1.8)))
    return shape, activities, rng.uniform(0.08, 0.2), {}


def _thyroid_tumour(rng: np.random.Generator):
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(0.9, 1.15), asymmetry=0.1, pyramidal_probability=0.0)
    side = "right" if rng.random() < 0.5 else "left"
    cx, cy = point_in_lobe(rng, shape.lobe(side), 0.5)
    hot = bool(rng.random() < 0.4)
    relative = rng.uniform(2.5, 6.0) if hot else rng.uniform(0.0, 0.3)
    nodule = Nodule(cx, cy, rng.uniform(6.0, 14.0), relative)
    extra = {"nodule_site": side, "nodule_kind": "hot" if hot else "cold", "nodule_to_parenchyma": round(float(relative), 2)}
    return replace(shape, nodules=(nodule,)), normal_activities(rng), rng.uniform(0.04, 0.1), extra


PATTERNS = {"graves": _graves, "subacute_thyroiditis": _subacute_thyroiditis, "thyroid_tumour": _thyroid_tumour}


def simulate_disease_case(rng: np.random.Generator, center: CenterProfile, label: str) -> SimulatedCase:
    """Simulate one anterior 99mTc-pertechnetate view of class ``label`` (one of :data:`LABELS`)."""
    if label == "normal":
        return simulate_normal_case(rng, center, "normal")
    shape, activities, texture_sigma, extra = PATTERNS[label](rng)
    anatomy = sample_head_neck(rng)
    return simulate_neck_view(rng, center, label, shape, anatomy, activities, texture_sigma=texture_sigma, extra_metadata={"pattern": label, **extra})


DISEASE_SIMULATOR = TaskSimulator(
    task="disease",
    labels=LABELS,
    simulate_case=simulate_disease_case,
    class_mix=BALANCED_MIX,
    description="thyroid disease: Graves', subacute thyroiditis, tumour, normal (seed 001)",
)
