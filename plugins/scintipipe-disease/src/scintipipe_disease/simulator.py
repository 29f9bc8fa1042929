"""The ``disease`` phantom: four thyroid-disease classes on anterior 99mTc-pertechnetate
neck views (the multicentre disease study: ResNet-34 versus nuclear-medicine physicians
on 3194 SPECT thyroid images). Everything physical (decay, attenuation, collimator, scatter,
count preset, Poisson noise, masks, domain randomisation) is the core's
:func:`simulate_neck_view`; every property that does not define a class comes from the
core's shared :func:`~scintipipe.simulate.nuisance.sample_nuisance`. This module only
draws the class-defining findings (thyroid uptake, gland size, nodules).

Labelling rules ("contrast": thyroid over the hottest salivary gland, attenuated activity
per projected area; a case that misses its rule has its findings redrawn):

=====================  ==================================================================
label                  rule
=====================  ==================================================================
graves                 the core's ``diffusely_increased``: no nodule, uptake >= 3 %
                       (3-20 %, growing with gland size), contrast >= 3, size x1.0-1.6
subacute_thyroiditis   no nodule, uptake < 0.5 % (drawn 0.01-0.15 %), contrast <= 0.7
                       (thyroid fainter than the salivary glands), size x0.9-1.25
thyroid_tumour         exactly one nodule, cold (60 %, <= 0.3x the parenchyma) or hot
                       (40 %, 2.5-6x) of 6-14 mm radius in a normal gland (uptake 0.4-2 %,
                       size x0.9-1.15, contrast >= 0.8): the rest is not suppressed
normal                 the core's normal scan: no nodule, uptake 0.4-2 %, normal size,
                       contrast >= 0.8
=====================  ==================================================================

The default class mix is balanced (the seed gives only the total of 3194 scans, not the
per-class counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from scintipipe.api import (
    NORMAL_MIN_CONTRAST,
    CenterProfile,
    Findings,
    Nodule,
    Nuisance,
    SimulatedCase,
    TaskSimulator,
    draw_findings,
    draw_normal_findings,
    draw_uptake4_findings,
    log_uniform,
    make_findings,
    normal_rule,
    point_in_lobe,
    simulate_patient_view,
    uptake4_rule,
    with_contrast,
)
from scintipipe_disease import LABELS

BALANCED_MIX = {label: 0.25 for label in LABELS}

THYROIDITIS_MAX_UPTAKE_PERCENT = 0.5
THYROIDITIS_MAX_CONTRAST = 0.7
TUMOUR_HOT_AT_LEAST = 2.5
TUMOUR_COLD_AT_MOST = 0.3

LABELLING_RULES = {
    "graves": "no nodule, uptake >= 3 %, thyroid/salivary contrast >= 3",
    "subacute_thyroiditis": "no nodule, uptake < 0.5 %, thyroid/salivary contrast <= 0.7",
    "thyroid_tumour": "exactly one nodule (hot >= 2.5x or cold <= 0.3x), uptake 0.4-2 %, contrast >= 0.8",
    "normal": "no nodule, uptake 0.4-2 %, thyroid/salivary contrast >= 0.8",
}


def _thyroiditis_rule(f: dict[str, Any]) -> bool:
    return (
        f["nodules"] == 0
        and f["thyroid_uptake_percent"] < THYROIDITIS_MAX_UPTAKE_PERCENT
        and f["thyroid_to_salivary_contrast"] <= THYROIDITIS_MAX_CONTRAST
    )


def _tumour_rule(f: dict[str, Any]) -> bool:
    one_clear_nodule = f["nodules"] == 1 and (
        f["max_nodule_to_parenchyma"] >= TUMOUR_HOT_AT_LEAST or f["max_nodule_to_parenchyma"] <= TUMOUR_COLD_AT_MOST
    )
    normal_gland = 0.4 <= f["thyroid_uptake_percent"] <= 2.0 and f["thyroid_to_salivary_contrast"] >= NORMAL_MIN_CONTRAST
    return one_clear_nodule and normal_gland


#: label -> rule on ``metadata["findings"]``
RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "graves": lambda f: uptake4_rule("diffusely_increased", f),
    "subacute_thyroiditis": _thyroiditis_rule,
    "thyroid_tumour": _tumour_rule,
    "normal": normal_rule,
}


def meets_rule(label: str, findings: dict[str, Any]) -> bool:
    """Whether a case's ``metadata["findings"]`` satisfy the labelling rule of ``label``."""
    return RULES[label](findings)


def _subacute_thyroiditis(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Destructive thyroiditis: the inflamed gland traps almost nothing."""
    enlargement = rng.uniform(0.9, 1.25)
    return make_findings(log_uniform(rng, 0.0001, 0.0015), enlargement, nuisance.thyroid_shape(enlargement), nuisance)


def _thyroid_tumour(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """One nodule, cold (60 %) or hot (40 %), in a normal, unsuppressed gland."""
    enlargement = rng.uniform(0.9, 1.15)
    shape = nuisance.thyroid_shape(enlargement)
    side = "right" if rng.random() < 0.5 else "left"
    cx, cy = point_in_lobe(rng, shape.lobe(side), 0.5)
    hot = bool(rng.random() < 0.4)
    relative = rng.uniform(2.5, 6.0) if hot else rng.uniform(0.0, 0.3)
    nodule = Nodule(cx, cy, rng.uniform(6.0, 14.0), relative)
    extra = {"nodule_site": side, "nodule_kind": "hot" if hot else "cold", "nodule_to_parenchyma": round(float(relative), 2)}
    return make_findings(rng.uniform(0.004, 0.02), enlargement, shape, nuisance, (nodule,), extra)


def _repair_thyroiditis(findings: Findings, nuisance: Nuisance) -> Findings:
    return with_contrast(findings, nuisance, THYROIDITIS_MAX_CONTRAST * 0.98)


def _repair_tumour(findings: Findings, nuisance: Nuisance) -> Findings:
    return with_contrast(findings, nuisance, NORMAL_MIN_CONTRAST * 1.02)


def draw_disease_findings(rng: np.random.Generator, nuisance: Nuisance, label: str) -> Findings:
    """The class-defining findings of ``label`` for this patient, meeting the label's rule."""
    if label == "graves":
        return draw_uptake4_findings(rng, nuisance, "diffusely_increased")
    if label == "normal":
        return draw_normal_findings(rng, nuisance)
    if label == "subacute_thyroiditis":
        return draw_findings(rng, nuisance, _subacute_thyroiditis, _thyroiditis_rule, label, repair=_repair_thyroiditis)
    return draw_findings(rng, nuisance, _thyroid_tumour, _tumour_rule, label, repair=_repair_tumour)


def simulate_disease_case(rng: np.random.Generator, center: CenterProfile, label: str) -> SimulatedCase:
    """Simulate one anterior 99mTc-pertechnetate view of class ``label`` (one of :data:`LABELS`).

    Draw order: acquisition (randomised centre only), shared nuisance, then the class's
    findings, so the same random state gives the same camera and patient for every label.
    """
    if label not in RULES:
        raise ValueError(f"disease has no label {label!r}; labels: {', '.join(LABELS)}")
    return simulate_patient_view(rng, center, label, lambda rng, nuisance: draw_disease_findings(rng, nuisance, label))


DISEASE_SIMULATOR = TaskSimulator(
    task="disease",
    labels=LABELS,
    simulate_case=simulate_disease_case,
    class_mix=BALANCED_MIX,
    description="thyroid disease: Graves', subacute thyroiditis, tumour, normal (the multicentre disease study)",
)
