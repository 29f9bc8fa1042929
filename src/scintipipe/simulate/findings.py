"""Class-defining findings of a thyroid scan, and drawing them until a labelling rule holds.

A class sampler draws :class:`Findings` (thyroid uptake, gland enlargement, nodules) on top
of a patient's shared :class:`~scintipipe.simulate.nuisance.Nuisance`; the task's written
labelling rule then decides whether the findings show that class. :func:`draw_findings`
redraws the findings (never the nuisance, so the nuisance keeps one distribution for all
classes) until the rule holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scintipipe.simulate.camera import TISSUE_MU_PER_MM
from scintipipe.simulate.nuisance import Nuisance, sample_nuisance
from scintipipe.simulate.thyroid import Nodule, ThyroidShape, projected_area_mm2

#: a nodule at least this many times the parenchyma's concentration is "hot", at most
#: ``COLD_AT_MOST`` "cold"
HOT_AT_LEAST = 1.5
COLD_AT_MOST = 0.5
MU_TC99M = TISSUE_MU_PER_MM[140.5]


@dataclass(frozen=True)
class Findings:
    """What defines the class of one scan.

    Attributes:
        thyroid_uptake: thyroid uptake as a fraction of the injected activity.
        enlargement: linear gland size over the patient's normal-sized gland.
        shape: the enlarged gland with its nodules.
        contrast: thyroid over hottest salivary gland, in attenuated activity per
            projected area (what a reader compares), from :func:`thyroid_to_salivary_contrast`.
        extra: task-specific truth for the metadata (``nodule_site`` ...).
    """

    thyroid_uptake: float
    enlargement: float
    shape: ThyroidShape
    contrast: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nodules(self) -> tuple[Nodule, ...]:
        """The gland's nodules."""
        return self.shape.nodules

    def as_metadata(self) -> dict[str, float | int]:
        """Flat summary for ``metadata["findings"]``: what the labelling rules read."""
        ratios = [n.relative_concentration for n in self.nodules]
        return {
            "thyroid_uptake_percent": round(100.0 * self.thyroid_uptake, 5),
            "enlargement": round(self.enlargement, 4),
            "nodules": len(ratios),
            "hot_nodules": sum(r >= HOT_AT_LEAST for r in ratios),
            "cold_nodules": sum(r <= COLD_AT_MOST for r in ratios),
            "max_nodule_to_parenchyma": round(max(ratios), 4) if ratios else 0.0,
            "min_nodule_to_parenchyma": round(min(ratios), 4) if ratios else 0.0,
            "largest_nodule_radius_mm": round(max((n.radius for n in self.nodules), default=0.0), 3),
            "thyroid_to_salivary_contrast": round(self.contrast, 4),
        }


def thyroid_to_salivary_contrast(shape: ThyroidShape, thyroid_uptake: float, nuisance: Nuisance, mu_per_mm: float = MU_TC99M) -> float:
    """Thyroid brightness over the hottest salivary gland's, before the camera.

    Brightness is activity times the attenuation in front of the organ over its projected
    area: the mean count density a camera would see without blur and background.
    """
    thyroid = thyroid_uptake * math.exp(-mu_per_mm * shape.depth_mm) / max(projected_area_mm2(shape), 1e-9)
    anatomy = nuisance.head_neck
    salivary = []
    for name, uptake in (("parotid", nuisance.parotid), ("submandibular", nuisance.submandibular)):
        for side in ("right", "left"):
            gland = getattr(anatomy, f"{name}_{side}")
            area = math.pi * gland.half_width * gland.half_height
            salivary.append(uptake * math.exp(-mu_per_mm * gland.depth_mm) / area)
    return float(thyroid / max(salivary))


def uptake_for_contrast(shape: ThyroidShape, contrast: float, nuisance: Nuisance) -> float:
    """The thyroid uptake that gives ``contrast`` (contrast is linear in the uptake)."""
    return contrast / thyroid_to_salivary_contrast(shape, 1.0, nuisance)


def make_findings(
    thyroid_uptake: float,
    enlargement: float,
    shape: ThyroidShape,
    nuisance: Nuisance,
    nodules: tuple[Nodule, ...] = (),
    extra: dict[str, Any] | None = None,
) -> Findings:
    """Findings with their contrast computed from the nuisance."""
    shape = replace(shape, nodules=tuple(nodules))
    return Findings(
        float(thyroid_uptake), float(enlargement), shape, thyroid_to_salivary_contrast(shape, thyroid_uptake, nuisance), dict(extra or {})
    )


def draw_findings(
    rng: np.random.Generator,
    nuisance: Nuisance,
    sample: Callable[[np.random.Generator, Nuisance], Findings],
    rule: Callable[[dict[str, Any]], bool],
    label: str,
    repair: Callable[[Findings, Nuisance], Findings] | None = None,
    tries: int = 50,
) -> Findings:
    """Redraw the findings until the labelling rule holds for them.

    Only the findings are redrawn, never the nuisance, so the nuisance keeps its one
    distribution for every class. When ``tries`` draws all miss (a patient whose salivary
    glands are so avid that no uptake in the class's range clears the contrast rule),
    ``repair`` moves the last draw's uptake just inside the rule.

    Args:
        rng: random generator.
        nuisance: the patient's shared nuisance (kept fixed).
        sample: the class sampler.
        rule: the class's rule on :meth:`Findings.as_metadata`.
        label: for the error message.
        repair: makes a missed draw meet the rule.
        tries: how many draws before repairing.

    Raises:
        RuntimeError: no draw met the rule and no repair did either.
    """
    findings = None
    for _ in range(tries):
        findings = sample(rng, nuisance)
        if rule(findings.as_metadata()):
            return findings
    if findings is not None and repair is not None:
        findings = repair(findings, nuisance)
        if rule(findings.as_metadata()):
            return findings
    raise RuntimeError(f"no findings met the rule of {label!r} in {tries} draws")


def with_contrast(findings: Findings, nuisance: Nuisance, contrast: float) -> Findings:
    """The same findings with the uptake that gives ``contrast``."""
    uptake = uptake_for_contrast(findings.shape, contrast, nuisance)
    return replace(findings, thyroid_uptake=uptake, contrast=thyroid_to_salivary_contrast(findings.shape, uptake, nuisance))


def simulate_patient_view(rng: np.random.Generator, center: Any, label: str, draw: Callable[[np.random.Generator, Nuisance], Findings]) -> Any:
    """One anterior neck view of a new patient whose class-defining findings come from ``draw``.

    The draw order every task simulator shares: the acquisition (a randomised centre draws
    its camera), the shared nuisance, then ``draw(rng, nuisance)``. The same random state
    therefore gives the same camera and patient whatever ``draw`` does, so classes (and
    controlled variants of a class) differ only in their findings.

    Args:
        rng: random generator; the same state gives the same camera and patient.
        center: acquisition profile (:data:`scintipipe.simulate.CENTERS`).
        label: the view's label (``metadata["pattern"]``).
        draw: the findings of this patient, e.g. a task's rule-checked draw.
    """
    center = center.draw(rng)
    nuisance = sample_nuisance(rng)
    return simulate_findings_view(rng, center, label, nuisance, draw(rng, nuisance))


def simulate_findings_view(rng: np.random.Generator, center: Any, label: str, nuisance: Nuisance, findings: Findings) -> Any:
    """One anterior neck view of ``findings`` on the patient and scan of ``nuisance``.

    ``metadata`` gets ``pattern``, the findings' ``extra`` truth, ``findings`` (what the
    labelling rule read) and ``nuisance`` (every class-independent draw).
    """
    from scintipipe.simulate.neck import simulate_neck_view

    extra = {"pattern": label, **findings.extra, "findings": findings.as_metadata()}
    activities = nuisance.activities(findings.thyroid_uptake)
    return simulate_neck_view(rng, center, label, findings.shape, nuisance.head_neck, activities, extra_metadata=extra, nuisance=nuisance)
