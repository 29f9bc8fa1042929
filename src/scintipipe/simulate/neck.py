"""A complete anterior neck acquisition from a thyroid, head-and-neck anatomy and activities.

Task plugins (uptake patterns, thyroid disease, 131I remnants) choose the gland and the
activities for a label and call :func:`simulate_neck_view`; everything physical (decay,
attenuation, collimator blur, scatter, motion, detector non-uniformity, marker sources,
count preset, Poisson noise, masks) happens here. A randomised centre is drawn into a
concrete acquisition here too (:meth:`CenterProfile.draw`), so every task gets domain
randomisation without code of its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scintipipe.simulate.acquisition import flood_field, marker_positions
from scintipipe.simulate.anatomy import Footprint, Grid, body_thickness, ellipsoid, head_thickness
from scintipipe.simulate.camera import acquire
from scintipipe.simulate.case import SimulatedCase
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.head_neck import HeadNeck, head_neck_footprints
from scintipipe.simulate.scene import Scene
from scintipipe.simulate.thyroid import ThyroidShape, draw_thyroid

if TYPE_CHECKING:
    from scintipipe.simulate.nuisance import Nuisance

SALIVARY = ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left")
THYROID_PARTS = ("thyroid_right", "thyroid_left", "isthmus", "pyramidal_lobe")


@dataclass(frozen=True)
class NeckActivities:
    """Uptake of each compartment as a fraction of the injected activity (decay-corrected).

    Attributes:
        thyroid: thyroid uptake (0.004-0.02 normal 99mTc-pertechnetate).
        parotid: per parotid gland.
        submandibular: per submandibular gland.
        oral_cavity: saliva and mucosa in the mouth.
        nasal_mucosa: nasal mucosa.
        oesophagus: swallowed saliva (used only when the anatomy has an oesophagus).
        stomach: gastric mucosa (only when the anatomy has a stomach).
        blood_pool_scale: background concentration relative to an even spread of the
            remaining activity over the body volume.
        head_excess: extra concentration in the head (well-perfused face, scalp and
            mucosa) relative to the background, which makes the head outline visible.
        body_volume_ml: distribution volume for that spread.
    """

    thyroid: float
    parotid: float
    submandibular: float
    oral_cavity: float
    nasal_mucosa: float = 0.0003
    oesophagus: float = 0.001
    stomach: float = 0.0
    blood_pool_scale: float = 1.0
    head_excess: float | None = None
    body_volume_ml: float = 52_000.0


def place_grid(rng: np.random.Generator, center: CenterProfile) -> Grid:
    """Fine grid with the thyroid where the centre frames it (``framing_mm``), jittered."""
    size = center.fine_matrix
    pixel = center.fine_pixel_mm
    row_mean, row_sd, col_mean, col_sd = center.framing_mm
    return Grid(
        size=size,
        pixel_mm=pixel,
        anchor_row=size / 2 + rng.normal(row_mean, row_sd) / pixel,
        anchor_col=size / 2 + rng.normal(col_mean, col_sd) / pixel,
    )


#: radius of a taped marker source (mm), on the anterior skin
MARKER_RADIUS_MM = 2.0
#: radius of its mask: the blurred spot (about one LEHR FWHM), at least one detector pixel
MARKER_MASK_RADIUS_MM = 6.0


def add_markers(rng: np.random.Generator, scene: Scene, center: CenterProfile, anatomy: HeadNeck) -> list[dict[str, Any]]:
    """Put the centre's marker point sources on the skin; return where they went."""
    placed = []
    mask_radius = max(MARKER_MASK_RADIUS_MM, center.pixel_mm)
    for site, x, y, mbq in marker_positions(rng, center.markers, anatomy):
        source = ellipsoid(scene.grid, x, y, MARKER_RADIUS_MM, MARKER_RADIUS_MM, MARKER_RADIUS_MM)
        scene.add_organ("markers", [(source, 0.0)], mbq, mask=False)
        scene.footprints.setdefault("markers", []).append(ellipsoid(scene.grid, x, y, mask_radius, mask_radius, 1.0))
        placed.append({"site": site, "x_mm": round(x, 2), "y_mm": round(y, 2), "mbq": round(mbq, 4)})
    return placed


def simulate_neck_view(
    rng: np.random.Generator,
    center: CenterProfile,
    label: str,
    thyroid: ThyroidShape,
    anatomy: HeadNeck,
    activities: NeckActivities,
    texture_sigma: float = 0.08,
    texture_mm: float = 8.0,
    extra_metadata: dict[str, Any] | None = None,
    nuisance: Nuisance | None = None,
) -> SimulatedCase:
    """Simulate one anterior count-preset acquisition of the neck.

    Args:
        rng: random generator (acquisition of a randomised centre, geometry jitter,
            texture, noise).
        center: acquisition profile; a randomised one is drawn here.
        label: class label to store.
        thyroid: gland geometry (with nodules).
        anatomy: head-and-neck anatomy.
        activities: uptake fractions.
        texture_sigma: log-standard deviation of parenchymal texture (ignored when
            ``nuisance`` is given).
        texture_mm: its correlation length (ignored when ``nuisance`` is given).
        extra_metadata: task-specific truth to store in ``metadata``.
        nuisance: the shared class-independent draws of this case; its texture is used
            and its values go to ``metadata["nuisance"]``.

    Returns:
        The case; ``metadata["true_uptake_percent"]`` is the thyroid's share of the
        injected activity, decay-corrected to the injection time;
        ``metadata["acquisition"]`` the drawn acquisition, ``metadata["nuisance"]`` every
        class-independent draw; ``case.acquisition_profile`` the concrete profile.
    """
    center = center.draw(rng)
    if nuisance is not None:
        texture_sigma, texture_mm = nuisance.texture_sigma, nuisance.texture_mm
    camera = center.camera
    grid = place_grid(rng, center)
    injected = center.injected_mbq * rng.uniform(0.85, 1.1)
    minutes = rng.uniform(*center.minutes_post_injection)
    remaining = injected * camera.decay_factor(minutes)
    gap = rng.uniform(*center.collimator_gap_mm)
    scene = Scene(grid, camera, gap)
    view_draws: dict[str, float | bool] = {
        "injected_mbq": round(injected, 4),
        "minutes_post_injection": round(minutes, 4),
        "collimator_gap_mm": round(gap, 3),
        "anchor_below_centre_mm": round((grid.anchor_row - grid.size / 2) * grid.pixel_mm, 3),
        "anchor_right_of_centre_mm": round((grid.anchor_col - grid.size / 2) * grid.pixel_mm, 3),
    }

    gland = draw_thyroid(grid, thyroid, rng, texture_sigma, texture_mm)
    if activities.thyroid > 0:
        scene.add_density("thyroid", gland.density, activities.thyroid * remaining, thyroid.depth_mm)
    for name, footprint in gland.footprints.items():
        key = "nodules" if name.startswith("nodule_") else name
        scene.footprints.setdefault(key, []).append(footprint)
        if key == "nodules":
            hot = thyroid.nodules[int(name.split("_")[1])].is_hot
            scene.footprints.setdefault("nodules_hot" if hot else "nodules_cold", []).append(footprint)

    per_gland = {
        "parotid_right": activities.parotid,
        "parotid_left": activities.parotid,
        "submandibular_right": activities.submandibular,
        "submandibular_left": activities.submandibular,
        "oral_cavity": activities.oral_cavity,
        "nasal_mucosa": activities.nasal_mucosa,
        "oesophagus": activities.oesophagus,
        "stomach": activities.stomach,
    }
    jitter = {name: rng.uniform(0.85, 1.15) for name in per_gland}  # drawn for absent organs too: same draws for every case
    view_draws |= {f"{name}_jitter": round(value, 5) for name, value in jitter.items()}
    for name, parts in head_neck_footprints(grid, anatomy).items():
        scene.add_organ(name, parts, per_gland[name] * remaining * jitter[name], mask=name != "nasal_mucosa")

    organ_fraction = sum(scene.activities_mbq.values()) / max(remaining, 1e-9)
    concentration = remaining * max(0.0, 1.0 - organ_fraction - 0.1) / activities.body_volume_ml * activities.blood_pool_scale
    thickness = body_thickness(grid, anatomy.body)
    scene.add_background(thickness, concentration)
    head_excess = rng.uniform(0.3, 1.0) if activities.head_excess is None else activities.head_excess
    head = head_thickness(grid, anatomy.body)
    scene.add_to_background("head_soft_tissue", head, concentration * head_excess, math.exp(-camera.mu_per_mm * 70.0))
    scene.footprints["body"] = [Footprint(slice(0, grid.size), slice(0, grid.size), thickness)]
    markers = add_markers(rng, scene, center, anatomy)

    rate = scene.rate_cps(center.oversampling, center.motion_mm, center.motion_angle_deg)
    flood = flood_field(rng, center, gap)
    if flood is not None:
        rate = rate * flood
    counts, duration = acquire(rate, center.count_preset, rng)
    masks = scene.masks(center.oversampling)
    empty = np.zeros(counts.shape, dtype=bool)
    for key in (*SALIVARY, "oral_cavity", "nodules", "nodules_hot", "nodules_cold", "markers"):
        masks.setdefault(key, empty.copy())  # outside a tight field, or absent
    masks["thyroid"] = np.logical_or.reduce([masks[name] for name in THYROID_PARTS if name in masks])
    masks["salivary_glands"] = np.logical_or.reduce([masks[name] for name in SALIVARY])

    pixel = center.pixel_mm
    metadata: dict[str, Any] = {
        "center": center.name,
        "camera": camera.name,
        "radionuclide": camera.radionuclide,
        "count_preset": center.count_preset,
        "injected_mbq": round(injected, 3),
        "minutes_post_injection": round(minutes, 3),
        "true_uptake_percent": round(100.0 * activities.thyroid, 5),
        "thyroid_activity_mbq_at_imaging": round(activities.thyroid * remaining, 5),
        "collimator_gap_mm": round(gap, 2),
        "thyroid_depth_mm": round(thyroid.depth_mm, 2),
        "activities_mbq": {name: round(value, 5) for name, value in scene.activities_mbq.items()},
        "activities_fraction": {k: v for k, v in asdict(activities).items()},
        "lobe_length_mm": {side: round(2 * thyroid.lobe(side).half_length, 2) for side in ("right", "left")},
        "lobe_width_mm": {side: round(2 * thyroid.lobe(side).half_width, 2) for side in ("right", "left")},
        "pyramidal_lobe": thyroid.pyramidal is not None,
        "oesophagus": anatomy.oesophagus is not None,
        "nodules": [
            {
                "x_mm": round(n.cx, 2),
                "y_mm": round(n.cy, 2),
                "radius_mm": round(n.radius, 2),
                "relative_concentration": round(n.relative_concentration, 3),
                "within_gland": n.within_gland,
            }
            for n in thyroid.nodules
        ],
        "anchor_rc": (round(grid.anchor_row / center.oversampling, 2), round(grid.anchor_col / center.oversampling, 2)),
        "pixel_mm": pixel,
        "markers": markers,
        "acquisition": center.acquisition_metadata(),
        "nuisance": {**(nuisance.as_metadata() if nuisance is not None else {}), **view_draws},
    }
    metadata.update(extra_metadata or {})
    return SimulatedCase(
        counts=counts,
        masks=masks,
        label=label,
        pixel_mm=pixel,
        frame_duration_s=float(duration),
        metadata=metadata,
        expected=(rate * duration).astype(np.float32),
        acquisition_profile=center,
    )


def typical_salivary_uptake(rng: np.random.Generator, scale: float = 1.0) -> dict[str, float]:
    """Salivary, oral, nasal and oesophageal uptake fractions of a 99mTc-pertechnetate scan.

    Each parotid 0.1-0.3 % and each submandibular gland 0.05-0.15 % of the injected
    activity, times ``scale``. The per-gland ranges date from an earlier version that set them
    against the real scans (docs/simulator.md, Limits); the class samplers draw ``scale``
    from one class-independent range (:mod:`scintipipe.simulate.nuisance`).
    """
    return {
        "parotid": scale * rng.uniform(0.001, 0.003),
        "submandibular": scale * rng.uniform(0.0005, 0.0015),
        "oral_cavity": scale * rng.uniform(0.0003, 0.002),
        "nasal_mucosa": scale * rng.uniform(0.0001, 0.0005),
        "oesophagus": rng.uniform(0.0005, 0.002),
    }


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A value spread evenly on a log scale between ``low`` and ``high``."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
