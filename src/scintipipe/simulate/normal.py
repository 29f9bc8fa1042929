"""A normal 99mTc-pertechnetate thyroid scan, the reference pattern.

Not an ``uptake4`` label; used to compare the simulator with the real (normal) Siemens
scan and by tasks that have a ``normal`` class.

Labelling rule: no nodule; uptake 0.4-2 % of the injected activity; normal size
(x0.9-1.1); thyroid about as bright as the salivary glands or brighter (contrast >= 0.8,
see :func:`~scintipipe.simulate.findings.thyroid_to_salivary_contrast`; diffusely
decreased uptake is <= 0.7). A low-normal uptake that would leave the gland fainter than
this patient's salivary glands is redrawn (after 50 misses, raised just enough). All
other properties come from the shared nuisance (:mod:`scintipipe.simulate.nuisance`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scintipipe.simulate.case import SimulatedCase
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.findings import Findings, draw_findings, make_findings, simulate_patient_view, with_contrast
from scintipipe.simulate.nuisance import Nuisance

NORMAL_UPTAKE_PERCENT = (0.4, 2.0)
NORMAL_MIN_CONTRAST = 0.8
NORMAL_RULE = "no nodule, uptake 0.4-2 %, thyroid/salivary contrast >= 0.8"


def normal_rule(findings: dict[str, Any]) -> bool:
    """Whether ``metadata["findings"]`` describe a normal scan."""
    low, high = NORMAL_UPTAKE_PERCENT
    return (
        findings["nodules"] == 0
        and low <= findings["thyroid_uptake_percent"] <= high
        and findings["thyroid_to_salivary_contrast"] >= NORMAL_MIN_CONTRAST
    )


def sample_normal_findings(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """A euthyroid gland: normal size, uptake 0.4-2 % (uniform)."""
    enlargement = rng.uniform(0.9, 1.1)
    return make_findings(rng.uniform(0.004, 0.02), enlargement, nuisance.thyroid_shape(enlargement), nuisance)


def _repair_normal(findings: Findings, nuisance: Nuisance) -> Findings:
    return with_contrast(findings, nuisance, NORMAL_MIN_CONTRAST * 1.02)


def draw_normal_findings(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Normal findings for this patient that meet :func:`normal_rule`."""
    return draw_findings(rng, nuisance, sample_normal_findings, normal_rule, "normal", repair=_repair_normal)


def simulate_normal_case(rng: np.random.Generator, center: CenterProfile, label: str = "normal") -> SimulatedCase:
    """Simulate a normal-sized, homogeneous gland with normal uptake."""
    return simulate_patient_view(rng, center, label, draw_normal_findings)
