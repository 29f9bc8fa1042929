"""The ``uptake4`` phantom: four 99mTc-pertechnetate uptake patterns (Zhao et al. 2021).

Labelled by the medicine: only the class-defining findings differ between classes (thyroid
uptake, gland size, number, size and contrast of nodules, suppression of the gland around
an autonomous nodule); every other property comes from the one shared distribution of
:mod:`scintipipe.simulate.nuisance`. Uptake is a fraction of the injected activity;
"contrast" is the thyroid's brightness over the hottest salivary gland's (attenuated
activity per projected area, :func:`~scintipipe.simulate.findings.thyroid_to_salivary_contrast`).

Labelling rules (the criteria of Zhao et al. 2021 made measurable; a drawn case that misses its rule is
redrawn, findings only):

=====================  ==================================================================
label                  rule (borderline handling)
=====================  ==================================================================
diffusely_increased    no nodule; uptake >= 3 %; contrast >= 3 (homogeneous gland clearly
                       above the salivary glands); normal-sized or enlarged (x1.0-1.6).
                       Uptake 2-3 % or contrast < 3 is not this class (redrawn).
diffusely_decreased    no nodule; uptake < 0.4 %; contrast <= 0.7 (thyroid fainter than
                       the salivary glands); size x0.85-1.2. A gland as bright as the
                       salivary glands is not this class (redrawn).
focal_increased        exactly one nodule, hot (>= 3x the extranodular gland, i.e. the
                       rest of the gland partly or wholly suppressed), 6-18 mm radius in a
                       lobe or the isthmus; size x0.9-1.6 (a toxic adenoma may sit in a
                       normal or an enlarged gland); uptake 0.5-4 %.
heterogeneous          >= 2 nodules with at least one hot (>= 1.5x) and one cold
                       (<= 0.5x) area; 2-5 nodules of 5-12 mm; size x1.1-1.8 (multinodular
                       goitre); uptake 0.4-3 %. Texture never makes a gland heterogeneous.
=====================  ==================================================================

Default class mixes are the training set of centre 1 (2468 scans) for centre ``a`` and
the external set of centre 2 (302 scans) for ``b`` (Zhao et al. 2021, Table 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from scintipipe.simulate.case import SimulatedCase, TaskSimulator
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.findings import Findings, draw_findings, make_findings, simulate_patient_view, with_contrast
from scintipipe.simulate.neck import log_uniform
from scintipipe.simulate.nuisance import Nuisance
from scintipipe.simulate.thyroid import Nodule, point_in_lobe

LABELS = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous")

CLASS_MIX_CENTER_A = {
    "diffusely_increased": 1040 / 2468,
    "diffusely_decreased": 902 / 2468,
    "focal_increased": 97 / 2468,
    "heterogeneous": 429 / 2468,
}
CLASS_MIX_CENTER_B = {"diffusely_increased": 120 / 302, "diffusely_decreased": 49 / 302, "focal_increased": 13 / 302, "heterogeneous": 120 / 302}

#: rule thresholds (uptake in % of the injected activity)
INCREASED_MIN_UPTAKE_PERCENT = 3.0
INCREASED_MIN_CONTRAST = 3.0
DECREASED_MAX_UPTAKE_PERCENT = 0.4
DECREASED_MAX_CONTRAST = 0.7
FOCAL_MIN_NODULE_RATIO = 3.0
#: the focal nodule's radius (mm) and the gland's size: seed 002's focal class is a hot nodule
#: "with or without suppressed uptake", whatever its size or the gland's, so these ranges
#: overlap heterogeneous's (5-12 mm nodules, gland x1.1-1.8) instead of separating the classes;
#: 6 mm is the smallest radius at which a hot nodule is reliably seen on a planar view
FOCAL_NODULE_RADIUS_MM = (6.0, 18.0)
FOCAL_ENLARGEMENT = (0.9, 1.6)
#: share of hot nodules (any class) drawn within the gland's outline instead of bulging out
#: of it: a nuisance of geometry, the same for every class that has hot nodules
HOT_NODULE_WITHIN_GLAND_PROBABILITY = 0.5

LABELLING_RULES = {
    "diffusely_increased": "no nodule, uptake >= 3 %, thyroid/salivary contrast >= 3",
    "diffusely_decreased": "no nodule, uptake < 0.4 %, thyroid/salivary contrast <= 0.7",
    "focal_increased": "exactly one nodule, hot >= 3x the suppressed extranodular gland",
    "heterogeneous": ">= 2 nodules, at least one hot (>= 1.5x) and one cold (<= 0.5x)",
}


def _diffusely_increased_rule(f: dict[str, Any]) -> bool:
    return (
        f["nodules"] == 0
        and f["thyroid_uptake_percent"] >= INCREASED_MIN_UPTAKE_PERCENT
        and f["thyroid_to_salivary_contrast"] >= INCREASED_MIN_CONTRAST
    )


def _diffusely_decreased_rule(f: dict[str, Any]) -> bool:
    return (
        f["nodules"] == 0
        and f["thyroid_uptake_percent"] < DECREASED_MAX_UPTAKE_PERCENT
        and f["thyroid_to_salivary_contrast"] <= DECREASED_MAX_CONTRAST
    )


def _focal_increased_rule(f: dict[str, Any]) -> bool:
    return f["nodules"] == 1 and f["max_nodule_to_parenchyma"] >= FOCAL_MIN_NODULE_RATIO


def _heterogeneous_rule(f: dict[str, Any]) -> bool:
    return f["nodules"] >= 2 and f["hot_nodules"] >= 1 and f["cold_nodules"] >= 1


#: label -> rule on ``metadata["findings"]``
RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "diffusely_increased": _diffusely_increased_rule,
    "diffusely_decreased": _diffusely_decreased_rule,
    "focal_increased": _focal_increased_rule,
    "heterogeneous": _heterogeneous_rule,
}


def meets_rule(label: str, findings: dict[str, Any]) -> bool:
    """Whether a case's ``metadata["findings"]`` satisfy the labelling rule of ``label``."""
    return RULES[label](findings)


def _hot_nodule_within_gland(rng: np.random.Generator) -> bool:
    """Whether a hot nodule lies within the gland's outline (see :class:`Nodule`)."""
    return bool(rng.random() < HOT_NODULE_WITHIN_GLAND_PROBABILITY)


def _diffusely_increased(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Graves' disease: a homogeneous, avid gland, often enlarged; larger glands trap more."""
    enlargement = rng.uniform(1.0, 1.6)
    uptake = float(np.clip(log_uniform(rng, 0.012, 0.05) * enlargement**2, 0.03, 0.2))
    return make_findings(uptake, enlargement, nuisance.thyroid_shape(enlargement), nuisance)


def _diffusely_decreased(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Thyroiditis, iodine load or suppression: little or no trapping."""
    enlargement = rng.uniform(0.85, 1.2)
    return make_findings(log_uniform(rng, 0.0002, 0.0035), enlargement, nuisance.thyroid_shape(enlargement), nuisance)


def _focal_increased(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Autonomous (toxic) adenoma: one hot nodule, the rest of the gland suppressed."""
    enlargement = rng.uniform(FOCAL_ENLARGEMENT[0], FOCAL_ENLARGEMENT[1])
    shape = nuisance.thyroid_shape(enlargement)
    where = str(rng.choice(["right", "left", "isthmus"], p=[0.46, 0.46, 0.08]) if shape.isthmus is not None else rng.choice(["right", "left"]))
    radius = rng.uniform(FOCAL_NODULE_RADIUS_MM[0], FOCAL_NODULE_RADIUS_MM[1])
    if where == "isthmus" and shape.isthmus is not None:
        cx, cy = shape.isthmus.cx + rng.normal(0, 3), shape.isthmus.cy
    else:
        cx, cy = point_in_lobe(rng, shape.lobe(where), 0.45)
    ratio = log_uniform(rng, 3.0, 40.0)
    within = _hot_nodule_within_gland(rng)
    uptake = log_uniform(rng, 0.005, 0.04)
    extra = {"nodule_site": where, "nodule_to_parenchyma": round(ratio, 2)}
    return make_findings(uptake, enlargement, shape, nuisance, (Nodule(cx, cy, radius, ratio, within),), extra)


def _heterogeneous(rng: np.random.Generator, nuisance: Nuisance) -> Findings:
    """Multinodular goitre: several hot and cold areas in an enlarged gland."""
    enlargement = rng.uniform(1.1, 1.8)
    shape = nuisance.thyroid_shape(enlargement)
    count = int(rng.integers(2, 6))
    kinds = [True, False] + [bool(rng.random() < 0.5) for _ in range(count - 2)]
    nodules = []
    for hot in kinds:
        side = "right" if rng.random() < 0.5 else "left"
        cx, cy = point_in_lobe(rng, shape.lobe(side), 0.7)
        radius = rng.uniform(5.0, 12.0)
        relative = rng.uniform(2.0, 4.5) if hot else rng.uniform(0.0, 0.35)
        nodules.append(Nodule(cx, cy, radius, relative, _hot_nodule_within_gland(rng) if hot else False))
    uptake = log_uniform(rng, 0.004, 0.03)
    extra = {"hot_nodules": sum(kinds), "cold_nodules": count - sum(kinds)}
    return make_findings(uptake, enlargement, shape, nuisance, tuple(nodules), extra)


PATTERNS = {
    "diffusely_increased": _diffusely_increased,
    "diffusely_decreased": _diffusely_decreased,
    "focal_increased": _focal_increased,
    "heterogeneous": _heterogeneous,
}

#: how a draw that keeps missing its contrast rule is moved just inside it
REPAIRS = {
    "diffusely_increased": lambda findings, nuisance: with_contrast(findings, nuisance, INCREASED_MIN_CONTRAST * 1.02),
    "diffusely_decreased": lambda findings, nuisance: with_contrast(findings, nuisance, DECREASED_MAX_CONTRAST * 0.98),
}


def draw_uptake4_findings(rng: np.random.Generator, nuisance: Nuisance, label: str) -> Findings:
    """The class-defining findings of ``label`` for this patient, meeting the label's rule."""
    return draw_findings(rng, nuisance, PATTERNS[label], RULES[label], label, repair=REPAIRS.get(label))


def simulate_uptake4_case(rng: np.random.Generator, center: CenterProfile, label: str) -> SimulatedCase:
    """Simulate one anterior 99mTc-pertechnetate view showing the pattern ``label``.

    Draw order: acquisition (randomised centre only), shared nuisance, then the class's
    findings; the same random state therefore gives the same camera and patient for
    every label.

    Args:
        rng: random generator; the same state gives the same case.
        center: acquisition profile (see :data:`scintipipe.simulate.CENTERS`).
        label: one of :data:`LABELS`.
    """
    if label not in PATTERNS:
        raise ValueError(f"uptake4 has no label {label!r}; labels: {', '.join(LABELS)}")
    return simulate_patient_view(rng, center, label, lambda rng, nuisance: draw_uptake4_findings(rng, nuisance, label))


UPTAKE4_SIMULATOR = TaskSimulator(
    task="uptake4",
    labels=LABELS,
    simulate_case=simulate_uptake4_case,
    class_mix=CLASS_MIX_CENTER_A,
    class_mix_by_center={"a": CLASS_MIX_CENTER_A, "b": CLASS_MIX_CENTER_B},
    description="99mTc-pertechnetate uptake patterns (Zhao et al. 2021)",
)
