"""131I neck scans after total thyroidectomy, anterior and posterior.

As in the remnant study (ResNet-18 fine-tuning on 446 131I SPECT neck images).

One simulated *study* is one patient imaged 2-3 days after a diagnostic 185 MBq (5 mCi)
oral dose of Na-131I, with a high-energy parallel-hole collimator, 364 keV photopeak with
a 20 % window and a 256 x 256 matrix (the plugin's ``remnant`` centre, :mod:`scintipipe_remnant.center`,
with the ``I131_HE`` camera, whose septal penetration draws the six-armed star around hot spots).

=========  ==========================================================================
label      what is simulated
=========  ==========================================================================
absent     empty thyroid bed: no thyroid tissue left
present    1-3 residual tissue foci in the thyroid bed (shrunken lobe remnants at the
           poles, or tissue at the isthmus/pyramidal lobe), 0.03-2 % of the dose
=========  ==========================================================================

Both classes carry the physiological 131I uptake the paper's images show: parotid and
submandibular glands, mouth (saliva), nasal mucosa, swallowed saliva in the oesophagus
(in 40 %), and gastric mucosa in the stomach (the stomach is at the lower edge of a neck
field). The default class mix is the paper's: 346 present, 100 absent.

Both views come from the same patient geometry and activities; each organ's depth seen
from the back is the local anteroposterior thickness minus its depth from the front, so
the thyroid bed (1-2.5 cm below the anterior skin) is brighter on the anterior view and
relatively fainter on the posterior. The posterior view is displayed as seen from behind:
the patient's left is on the viewer's left (the anterior view is mirrored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scintipipe.api import (
    CenterProfile,
    Gland,
    Grid,
    HeadNeck,
    Lobe,
    NeckActivities,
    Scene,
    SimulatedCase,
    TaskSimulator,
    ThyroidShape,
    acquire,
    body_thickness,
    draw_thyroid,
    head_neck_footprints,
    head_thickness,
    log_uniform,
    place_grid,
    sample_head_neck,
    sample_thyroid_shape,
)
from scintipipe_remnant import LABELS

#: the paper's 446 patients: 346 with residual tissue, 100 without (the remnant study, section 2.1)
PAPER_CLASS_MIX = {"absent": 100 / 446, "present": 346 / 446}
#: air gap between the patient's back and the posterior detector (table included)
POSTERIOR_GAP_MM = (15.0, 30.0)


@dataclass
class RemnantCase(SimulatedCase):
    """A simulated study: the anterior view as the case, the posterior view alongside.

    Attributes:
        posterior: the posterior view (same patient, own noise), displayed from behind.
    """

    posterior: SimulatedCase | None = field(default=None)


def sample_remnant_shape(rng: np.random.Generator, bed: ThyroidShape) -> tuple[ThyroidShape, list[str]]:
    """Shrink the pre-operative gland to 1-3 small remnants in its bed.

    Returns:
        The remnant shape (its "lobes" are the remnants) and the remnant sites.
    """
    sites = list(rng.choice(["right_upper", "right_lower", "left_upper", "left_lower", "isthmus"], size=int(rng.integers(1, 4)), replace=False))
    remnants = []
    for site in sites:
        if site == "isthmus":
            remnants.append(
                Lobe(rng.normal(0, 3), bed.right.cy - 0.25 * bed.right.half_length, rng.uniform(3, 7), rng.uniform(3, 6), rng.uniform(2, 4), 0.0, 0.0)
            )
            continue
        side, pole = site.split("_")
        lobe = bed.lobe(side)
        sign = 1.0 if pole == "upper" else -1.0
        remnants.append(
            Lobe(
                cx=lobe.cx + rng.normal(0, 2),
                cy=lobe.cy + sign * lobe.half_length * rng.uniform(0.4, 0.8),
                half_width=lobe.half_width * rng.uniform(0.3, 0.7),
                half_length=lobe.half_length * rng.uniform(0.12, 0.3),
                half_depth=lobe.half_depth * rng.uniform(0.3, 0.6),
                tilt_deg=lobe.tilt_deg,
                taper=0.0,
            )
        )
    second = remnants[1] if len(remnants) > 1 else remnants[0]  # a repeated lobe adds nothing
    third = remnants[2] if len(remnants) > 2 else None
    return ThyroidShape(remnants[0], second, third, None, depth_mm=bed.depth_mm), [str(s) for s in sites]


def sample_activities(rng: np.random.Generator, label: str) -> NeckActivities:
    """Uptake fractions of the dose, decay-corrected, 2-3 days after oral 131I.

    Salivary glands, mouth and stomach concentrate iodide in every patient; residual
    thyroid tissue traps 0.03-2 % of the dose; most of the rest has left in the urine.
    """
    thyroid = log_uniform(rng, 0.0003, 0.02) if label == "present" else 0.0
    return NeckActivities(
        thyroid=thyroid,
        parotid=log_uniform(rng, 0.0006, 0.003),
        submandibular=log_uniform(rng, 0.0003, 0.0015),
        oral_cavity=log_uniform(rng, 0.0005, 0.003),
        nasal_mucosa=log_uniform(rng, 0.00005, 0.0003),
        oesophagus=log_uniform(rng, 0.0002, 0.002),
        stomach=log_uniform(rng, 0.002, 0.02),
        blood_pool_scale=rng.uniform(0.03, 0.08),  # whole-body retention at 48-72 h
        head_excess=rng.uniform(0.2, 0.6),
    )


def add_gut(rng: np.random.Generator, anatomy: HeadNeck) -> HeadNeck:
    """Give the anatomy a stomach (always) and an oesophagus (40 %)."""
    stomach = Gland(
        rng.uniform(40, 90),
        rng.uniform(-290, -230),
        rng.uniform(35, 55),
        rng.uniform(30, 45),
        rng.uniform(25, 35),
        rng.uniform(-30, 0),
        rng.uniform(60, 80),
    )
    oesophagus = anatomy.oesophagus
    if oesophagus is None and rng.random() < 0.3:
        oesophagus = Gland(
            rng.uniform(-4.0, 8.0), rng.uniform(-30.0, 0.0), rng.uniform(3.0, 5.0), rng.uniform(40.0, 70.0), 6.0, rng.normal(0, 4), 45.0
        )
    return replace(anatomy, stomach=stomach, oesophagus=oesophagus)


def posterior_depth(name: str, depth_mm: float, anatomy: HeadNeck) -> float:
    """Depth of a structure below the posterior skin: local AP thickness minus its anterior depth."""
    body = anatomy.body
    thickness = {"stomach": 2 * body.chest_az, "oesophagus": 2 * body.neck_az, "thyroid": 2 * body.neck_az}.get(name, 2 * body.head_az)
    return max(5.0, thickness - depth_mm)


@dataclass
class _Study:
    grid: Grid
    anatomy: HeadNeck
    bed: ThyroidShape
    remnant: ThyroidShape | None
    activities: NeckActivities
    remaining_mbq: float


def _project_view(
    rng: np.random.Generator, center: CenterProfile, study: _Study, view: str
) -> tuple[np.ndarray, dict[str, np.ndarray], float, float]:
    """Expected rates to counts for one view; returns counts, masks, duration, gap."""
    camera, grid, anatomy, acts = center.camera, study.grid, study.anatomy, study.activities
    posterior = view == "posterior"
    gap = rng.uniform(*(POSTERIOR_GAP_MM if posterior else center.collimator_gap_mm))
    scene = Scene(grid, camera, gap)
    depth = (lambda name, d: posterior_depth(name, d, anatomy)) if posterior else (lambda name, d: d)
    bed = draw_thyroid(grid, study.bed, rng, texture_sigma=0.0)
    scene.footprints["thyroid_bed"] = [fp for name, fp in bed.footprints.items() if name in ("thyroid_right", "thyroid_left", "isthmus")]
    if study.remnant is not None and acts.thyroid > 0:
        tissue = draw_thyroid(grid, study.remnant, rng, texture_sigma=0.1)
        scene.add_density("remnant", tissue.density, acts.thyroid * study.remaining_mbq, depth("thyroid", study.remnant.depth_mm))
        scene.footprints["remnant"] = list(tissue.footprints.values())
    per_organ = {
        "parotid_right": acts.parotid,
        "parotid_left": acts.parotid,
        "submandibular_right": acts.submandibular,
        "submandibular_left": acts.submandibular,
    }
    per_organ |= {"oral_cavity": acts.oral_cavity, "nasal_mucosa": acts.nasal_mucosa, "oesophagus": acts.oesophagus, "stomach": acts.stomach}
    for name, parts in head_neck_footprints(grid, anatomy).items():
        parts = [(fp, depth(name, d)) for fp, d in parts]
        scene.add_organ(name, parts, per_organ[name] * study.remaining_mbq, mask=name != "nasal_mucosa")
    organ_fraction = sum(scene.activities_mbq.values()) / max(study.remaining_mbq, 1e-9)
    concentration = study.remaining_mbq * max(0.0, 1.0 - organ_fraction) / acts.body_volume_ml * acts.blood_pool_scale
    thickness = body_thickness(grid, anatomy.body)
    scene.add_background(thickness, concentration)
    scene.add_to_background(
        "head_soft_tissue", head_thickness(grid, anatomy.body), concentration * acts.head_excess, math.exp(-camera.mu_per_mm * 70.0)
    )
    rate = scene.rate_cps(center.oversampling)
    counts, duration = acquire(rate, center.count_preset, rng)
    masks = scene.masks(center.oversampling)
    masks.setdefault("remnant", np.zeros_like(masks["thyroid_bed"]))
    if posterior:  # seen from behind: mirror left-right for display
        counts = np.ascontiguousarray(counts[:, ::-1])
        masks = {name: np.ascontiguousarray(mask[:, ::-1]) for name, mask in masks.items()}
    return counts, masks, float(duration), float(gap)


def simulate_remnant_case(rng: np.random.Generator, center: CenterProfile, label: str) -> RemnantCase:
    """Simulate one two-view 131I neck study.

    Args:
        rng: random generator; the same state gives the same study.
        center: acquisition profile with an I-131 camera (``remnant``).
        label: ``absent`` or ``present``.

    Returns:
        The anterior view as a :class:`RemnantCase` whose ``posterior`` holds the other
        view. Masks: ``thyroid_bed`` (where the gland was), ``remnant`` (residual
        tissue, empty when absent) and every physiological organ.

    Raises:
        ValueError: the centre's camera is not an I-131 camera.
    """
    if center.camera.radionuclide != "I-131":
        raise ValueError(
            f"the remnant simulator images 131I: use --center remnant (centre {center.name!r} has a {center.camera.radionuclide} camera)"
        )
    bed = sample_thyroid_shape(rng, enlargement=rng.uniform(0.9, 1.2), pyramidal_probability=0.0, isthmus_probability=1.0)
    remnant, sites = sample_remnant_shape(rng, bed) if label == "present" else (None, [])
    anatomy = add_gut(rng, sample_head_neck(rng, oesophagus_probability=0.15))
    activities = sample_activities(rng, label)
    injected = center.injected_mbq * rng.uniform(0.9, 1.1)
    minutes = rng.uniform(*center.minutes_post_injection)
    study = _Study(place_grid(rng, center), anatomy, bed, remnant, activities, injected * center.camera.decay_factor(minutes))
    metadata: dict[str, Any] = {
        "center": center.name,
        "camera": center.camera.name,
        "radionuclide": center.camera.radionuclide,
        "injected_mbq": round(injected, 3),
        "minutes_post_injection": round(minutes, 3),
        "true_uptake_percent": round(100.0 * activities.thyroid, 5),
        "remnant_sites": sites,
        "oesophagus": anatomy.oesophagus is not None,
        "pixel_mm": center.pixel_mm,
    }
    views = {}
    for view in ("anterior", "posterior"):
        counts, masks, duration, gap = _project_view(rng, center, study, view)
        views[view] = SimulatedCase(counts, masks, label, center.pixel_mm, duration, {**metadata, "view": view, "collimator_gap_mm": round(gap, 2)})
    front = views["anterior"]
    return RemnantCase(front.counts, front.masks, label, front.pixel_mm, front.frame_duration_s, front.metadata, posterior=views["posterior"])


REMNANT_SIMULATOR = TaskSimulator(
    task="remnant",
    labels=LABELS,
    simulate_case=simulate_remnant_case,
    class_mix=PAPER_CLASS_MIX,
    description="131I neck scans after thyroidectomy, residual thyroid tissue absent/present (the remnant study)",
)
