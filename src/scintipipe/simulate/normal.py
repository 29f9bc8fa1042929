"""A normal 99mTc-pertechnetate thyroid scan (uptake 0.4-2 %), the reference pattern.

Not an ``uptake4`` label; used to compare the simulator with the real (normal) Siemens
scan and by tasks that have a ``normal`` class.
"""

from __future__ import annotations

import numpy as np

from scintipipe.simulate.case import SimulatedCase
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.head_neck import sample_head_neck
from scintipipe.simulate.neck import NeckActivities, simulate_neck_view, typical_salivary_uptake
from scintipipe.simulate.thyroid import sample_thyroid_shape


def normal_activities(rng: np.random.Generator) -> NeckActivities:
    """Uptake fractions of a euthyroid patient: thyroid 0.4-2 % of the injected activity."""
    return NeckActivities(thyroid=rng.uniform(0.004, 0.02), blood_pool_scale=rng.uniform(0.8, 1.2), **typical_salivary_uptake(rng))


def simulate_normal_case(rng: np.random.Generator, center: CenterProfile, label: str = "normal") -> SimulatedCase:
    """Simulate a normal-sized, homogeneous gland with normal uptake."""
    shape = sample_thyroid_shape(rng, enlargement=rng.uniform(0.9, 1.1), asymmetry=0.1, pyramidal_probability=0.05)
    anatomy = sample_head_neck(rng)
    return simulate_neck_view(rng, center, label, shape, anatomy, normal_activities(rng), texture_sigma=rng.uniform(0.04, 0.1), extra_metadata={"pattern": "normal"})
