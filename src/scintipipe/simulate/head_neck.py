"""Head-and-neck anatomy around the thyroid: body outline, salivary glands, mouth, oesophagus.

Positions are relative to the thyroid centre on an anterior view with the neck extended
(submandibular glands 50-70 mm above it, parotids 85-115 mm above and 50-65 mm lateral,
the oral cavity between them in the midline). Every task that images the neck (uptake
patterns, thyroid disease, 131I remnants) draws these with :func:`sample_head_neck` and
:func:`head_neck_footprints`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scintipipe.simulate.anatomy import BodyOutline, Footprint, Grid, ellipsoid


@dataclass(frozen=True)
class Gland:
    """An ellipsoidal organ; lengths in mm, ``depth_mm`` from the anterior skin."""

    cx: float
    cy: float
    half_width: float
    half_height: float
    half_depth: float
    tilt_deg: float
    depth_mm: float


@dataclass(frozen=True)
class HeadNeck:
    """Everything but the thyroid."""

    body: BodyOutline
    parotid_right: Gland
    parotid_left: Gland
    submandibular_right: Gland
    submandibular_left: Gland
    oral_cavity: tuple[Gland, ...]
    nasal: Gland
    oesophagus: Gland | None
    stomach: Gland | None = None


def sample_head_neck(
    rng: np.random.Generator, oesophagus_probability: float = 0.15, neck_extension_mm: float | None = None, habitus_scale: float = 1.0
) -> HeadNeck:
    """Draw a patient's head-and-neck anatomy.

    Args:
        rng: random generator.
        oesophagus_probability: chance of swallowed activity in the oesophagus.
        neck_extension_mm: extra distance between thyroid and chin (default: random
            -10 to +15 mm, how far the neck is extended).
        habitus_scale: body habitus: scales the neck's width and thickness and the
            chest's thickness (1 average; draws nothing from ``rng``).
    """
    lift = rng.uniform(-10.0, 15.0) if neck_extension_mm is None else neck_extension_mm
    shift = rng.normal(0.0, 3.0)
    head_ay = rng.uniform(95.0, 110.0)
    body = BodyOutline(
        head_cy=rng.uniform(45.0, 60.0) + lift + head_ay,
        head_ax=rng.uniform(70.0, 82.0),
        head_ay=head_ay,
        head_az=rng.uniform(85.0, 100.0),
        neck_half_width=rng.uniform(50.0, 65.0) * habitus_scale,
        neck_az=rng.uniform(50.0, 62.0) * habitus_scale,
        shoulder_top=rng.uniform(-5.0, 20.0) - 0.5 * lift,
        shoulder_drop=rng.uniform(15.0, 45.0),
        shoulder_half_width=rng.uniform(180.0, 220.0),
        shoulder_rounding=rng.uniform(50.0, 100.0),
        chest_az=rng.uniform(90.0, 115.0) * habitus_scale,
    )
    glands = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        parotid_y = rng.uniform(85.0, 110.0) + lift
        glands[f"parotid_{side}"] = Gland(
            cx=sign * rng.uniform(50.0, 64.0) + shift,
            cy=parotid_y + rng.normal(0, 3),
            half_width=rng.uniform(10.0, 15.0),
            half_height=rng.uniform(20.0, 30.0),
            half_depth=rng.uniform(12.0, 18.0),
            tilt_deg=sign * rng.uniform(0.0, 12.0),
            depth_mm=rng.uniform(35.0, 55.0),
        )
        glands[f"submandibular_{side}"] = Gland(
            cx=sign * rng.uniform(25.0, 40.0) + shift,
            cy=rng.uniform(52.0, 70.0) + lift + rng.normal(0, 2),
            half_width=rng.uniform(9.0, 13.0),
            half_height=rng.uniform(6.0, 9.0),
            half_depth=rng.uniform(6.0, 9.0),
            tilt_deg=-sign * rng.uniform(5.0, 25.0),
            depth_mm=rng.uniform(20.0, 35.0),
        )
    mouth_y = rng.uniform(75.0, 92.0) + lift
    mouth_half_width = rng.uniform(18.0, 28.0)
    curvature = rng.uniform(-0.2, 0.9)  # positive: a dome (tongue dorsum, palate)
    oral = []
    for t in np.linspace(-1.0, 1.0, 5):
        oral.append(
            Gland(
                cx=shift + t * mouth_half_width,
                cy=mouth_y - curvature * 12.0 * t * t,
                half_width=mouth_half_width / 4 + 2,
                half_height=rng.uniform(4.0, 7.0),
                half_depth=rng.uniform(8.0, 14.0),
                tilt_deg=-20.0 * t * curvature,
                depth_mm=rng.uniform(25.0, 40.0),
            )
        )
    nasal = Gland(shift + rng.normal(0, 2), mouth_y + rng.uniform(45.0, 60.0), rng.uniform(6, 10), rng.uniform(10, 16), 10.0, 0.0, 30.0)
    oesophagus = None
    if rng.random() < oesophagus_probability:
        oesophagus = Gland(
            rng.uniform(-4.0, 8.0), rng.uniform(-30.0, 0.0), rng.uniform(3.0, 5.0), rng.uniform(40.0, 70.0), 6.0, rng.normal(0, 4), 45.0
        )
    return HeadNeck(
        body,
        glands["parotid_right"],
        glands["parotid_left"],
        glands["submandibular_right"],
        glands["submandibular_left"],
        tuple(oral),
        nasal,
        oesophagus,
    )


def gland_footprint(grid: Grid, gland: Gland) -> Footprint:
    """Projected thickness of one gland."""
    return ellipsoid(grid, gland.cx, gland.cy, gland.half_width, gland.half_height, gland.half_depth, gland.tilt_deg)


def head_neck_footprints(grid: Grid, anatomy: HeadNeck) -> dict[str, list[tuple[Footprint, float]]]:
    """Footprints with their tissue depth, by structure name.

    Returns:
        ``{"parotid_right": [(footprint, depth_mm)], ..., "oral_cavity": [5 blobs]}``;
        ``oesophagus`` and ``stomach`` only when present.
    """
    out: dict[str, list[tuple[Footprint, float]]] = {}
    for name in ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left"):
        gland = getattr(anatomy, name)
        out[name] = [(gland_footprint(grid, gland), gland.depth_mm)]
    out["oral_cavity"] = [(gland_footprint(grid, blob), blob.depth_mm) for blob in anatomy.oral_cavity]
    out["nasal_mucosa"] = [(gland_footprint(grid, anatomy.nasal), anatomy.nasal.depth_mm)]
    for name in ("oesophagus", "stomach"):
        gland = getattr(anatomy, name)
        if gland is not None:
            out[name] = [(gland_footprint(grid, gland), gland.depth_mm)]
    return out
