"""The thyroid gland: lobes, isthmus, pyramidal lobe, nodules and parenchymal texture.

Sizes follow published normal ranges (lobes 40-60 mm long, 12-18 mm wide, 13-20 mm deep;
isthmus 2-6 mm thick) scaled by an enlargement factor for goitres. The gland sits at the
anchor point of the grid (``x = y = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scintipipe.simulate.anatomy import Footprint, Grid, ellipsoid, paint, smooth_field


@dataclass(frozen=True)
class Lobe:
    """One thyroid lobe (a tapered, tilted ellipsoid); lengths in mm."""

    cx: float
    cy: float
    half_width: float
    half_length: float
    half_depth: float
    tilt_deg: float
    taper: float


@dataclass(frozen=True)
class Nodule:
    """A spherical nodule; ``relative_concentration`` is its activity per volume over the
    surrounding parenchyma's (above 1 hot, below 1 cold).

    A cold nodule always lies within the gland: it removes activity only where there is
    parenchyma. A hot one bulges out of the lobe as a sphere unless ``within_gland``, in
    which case its projected thickness is capped by the gland's, as for a nodule that
    fills part of a lobe without deforming its outline.
    """

    cx: float
    cy: float
    radius: float
    relative_concentration: float
    within_gland: bool = False

    @property
    def is_hot(self) -> bool:
        """Whether it concentrates more than the parenchyma."""
        return self.relative_concentration > 1.0


@dataclass(frozen=True)
class ThyroidShape:
    """Geometry of one gland."""

    right: Lobe
    left: Lobe
    isthmus: Lobe | None
    pyramidal: Lobe | None
    depth_mm: float
    nodules: tuple[Nodule, ...] = field(default_factory=tuple)

    def lobe(self, side: str) -> Lobe:
        """``"right"`` or ``"left"`` lobe."""
        return self.right if side == "right" else self.left


@dataclass(frozen=True)
class GlandAnatomy:
    """A gland of normal size, before any goitrous enlargement: the patient's anatomy.

    Every field is drawn the same way for every class (:func:`sample_gland_anatomy`);
    :func:`build_thyroid_shape` scales it by the class's enlargement. Lengths in mm.

    Attributes:
        lobe_length_mm, lobe_width_mm, lobe_depth_mm: normal lobe size (40-60, 12-18, 13-20).
        trachea_gap_mm: between the lobes' medial borders (6-14).
        right_scale, left_scale: per-lobe size factors (lobe asymmetry).
        right_dx, left_dx, right_dy, left_dy: lobe position jitter.
        right_tilt_deg, left_tilt_deg: how far the upper poles diverge (3-22 degrees).
        right_taper, left_taper: widening of the lower pole (0-0.3).
        isthmus: whether the isthmus carries visible tissue.
        isthmus_dx, isthmus_level, isthmus_extra_half_width, isthmus_half_length,
            isthmus_half_depth, isthmus_tilt_deg: its geometry (drawn even when absent).
        pyramidal: whether a pyramidal lobe is present (needs an isthmus).
        pyramidal_length_mm, pyramidal_dx, pyramidal_half_width, pyramidal_half_depth,
            pyramidal_tilt_deg: its geometry (drawn even when absent).
        depth_mm: skin to gland centre (12-25).
    """

    lobe_length_mm: float
    lobe_width_mm: float
    lobe_depth_mm: float
    trachea_gap_mm: float
    right_scale: float
    left_scale: float
    right_dx: float
    left_dx: float
    right_dy: float
    left_dy: float
    right_tilt_deg: float
    left_tilt_deg: float
    right_taper: float
    left_taper: float
    isthmus: bool
    isthmus_dx: float
    isthmus_level: float
    isthmus_extra_half_width: float
    isthmus_half_length: float
    isthmus_half_depth: float
    isthmus_tilt_deg: float
    pyramidal: bool
    pyramidal_length_mm: float
    pyramidal_dx: float
    pyramidal_half_width: float
    pyramidal_half_depth: float
    pyramidal_tilt_deg: float
    depth_mm: float


def sample_gland_anatomy(
    rng: np.random.Generator,
    asymmetry: float = 0.15,
    isthmus_probability: float = 0.85,
    pyramidal_probability: float = 0.15,
) -> GlandAnatomy:
    """Draw a normal-sized gland within published ranges (always the same number of draws).

    Args:
        rng: random generator.
        asymmetry: each lobe's size factor is uniform in ``1 +- asymmetry``.
        isthmus_probability: chance that the isthmus carries visible tissue.
        pyramidal_probability: chance of a pyramidal lobe (given an isthmus).
    """
    values = {
        "lobe_length_mm": rng.uniform(40.0, 60.0),
        "lobe_width_mm": rng.uniform(12.0, 18.0),
        "lobe_depth_mm": rng.uniform(13.0, 20.0),
        "trachea_gap_mm": rng.uniform(6.0, 14.0),
    }
    for side in ("right", "left"):
        values[f"{side}_scale"] = 1.0 + rng.uniform(-asymmetry, asymmetry)
        values[f"{side}_dx"] = rng.normal(0, 1.5)
        values[f"{side}_dy"] = rng.normal(0.0, 3.0)
        values[f"{side}_tilt_deg"] = rng.uniform(3.0, 22.0)
        values[f"{side}_taper"] = rng.uniform(0.0, 0.3)
    values |= {
        "isthmus": bool(rng.random() < isthmus_probability),
        "isthmus_dx": rng.normal(0.0, 1.5),
        "isthmus_level": rng.uniform(0.2, 0.4),
        "isthmus_extra_half_width": rng.uniform(5.0, 10.0),
        "isthmus_half_length": rng.uniform(5.0, 9.0),
        "isthmus_half_depth": rng.uniform(1.5, 4.0),
        "isthmus_tilt_deg": rng.normal(0.0, 4.0),
    }
    values |= {
        "pyramidal": bool(rng.random() < pyramidal_probability) and values["isthmus"],
        "pyramidal_length_mm": rng.uniform(15.0, 30.0),
        "pyramidal_dx": rng.uniform(-6.0, 6.0),
        "pyramidal_half_width": rng.uniform(2.5, 4.0),
        "pyramidal_half_depth": rng.uniform(2.0, 3.5),
        "pyramidal_tilt_deg": rng.normal(0.0, 8.0),
        "depth_mm": rng.uniform(12.0, 25.0),
    }
    fields: dict[str, Any] = {k: (v if isinstance(v, bool) else float(v)) for k, v in values.items()}
    return GlandAnatomy(**fields)


def build_thyroid_shape(anatomy: GlandAnatomy, enlargement: float = 1.0, depth_scale: float = 1.0) -> ThyroidShape:
    """The gland of ``anatomy`` enlarged by ``enlargement`` (1 normal, 1.2-1.8 goitre).

    Length scales with ``enlargement``, width with its 0.8th and depth with its 0.7th
    power; the trachea gap widens by 4 mm per unit of enlargement. ``depth_scale`` scales
    the skin-to-gland depth (body habitus).
    """
    a = anatomy
    length = a.lobe_length_mm * enlargement
    width = a.lobe_width_mm * enlargement**0.8
    depth = a.lobe_depth_mm * enlargement**0.7
    gap = a.trachea_gap_mm + 4.0 * (enlargement - 1.0)
    lobes = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        scale = getattr(a, f"{side}_scale")
        half_width = width * scale / 2
        lobes[side] = Lobe(
            cx=sign * (gap / 2 + half_width) + getattr(a, f"{side}_dx"),
            cy=getattr(a, f"{side}_dy"),
            half_width=half_width,
            half_length=length * scale / 2,
            half_depth=depth * scale / 2,
            tilt_deg=-sign * getattr(a, f"{side}_tilt_deg"),
            taper=getattr(a, f"{side}_taper"),
        )
    isthmus = None
    if a.isthmus:
        low = min(lobes["right"].cy - lobes["right"].half_length, lobes["left"].cy - lobes["left"].half_length)
        isthmus = Lobe(
            cx=a.isthmus_dx,
            cy=low + a.isthmus_level * length,
            half_width=gap / 2 + a.isthmus_extra_half_width,
            half_length=a.isthmus_half_length * enlargement**0.5,
            half_depth=a.isthmus_half_depth * enlargement**0.5,
            tilt_deg=a.isthmus_tilt_deg,
            taper=0.0,
        )
    pyramidal = None
    if isthmus is not None and a.pyramidal:
        pyramidal = Lobe(
            cx=a.pyramidal_dx,
            cy=isthmus.cy + a.pyramidal_length_mm / 2,
            half_width=a.pyramidal_half_width,
            half_length=a.pyramidal_length_mm / 2,
            half_depth=a.pyramidal_half_depth,
            tilt_deg=a.pyramidal_tilt_deg,
            taper=0.2,
        )
    return ThyroidShape(lobes["right"], lobes["left"], isthmus, pyramidal, depth_mm=a.depth_mm * depth_scale)


def sample_thyroid_shape(
    rng: np.random.Generator,
    enlargement: float = 1.0,
    asymmetry: float = 0.1,
    pyramidal_probability: float = 0.1,
    isthmus_probability: float = 0.85,
) -> ThyroidShape:
    """Draw a gland within published ranges (anatomy, then enlargement).

    Args:
        rng: random generator.
        enlargement: linear scale for lobe length and width (1 normal, 1.2-1.8 goitre).
        asymmetry: relative size difference allowed between the lobes.
        pyramidal_probability: chance of a visible pyramidal lobe.
        isthmus_probability: chance that the isthmus carries visible tissue.

    Returns:
        The shape, with no nodules.
    """
    anatomy = sample_gland_anatomy(rng, asymmetry, isthmus_probability, pyramidal_probability)
    return build_thyroid_shape(anatomy, enlargement)


def projected_area_mm2(shape: ThyroidShape) -> float:
    """In-plane area of the gland's lobes, isthmus and pyramidal lobe (ellipses, overlaps
    counted twice: a small error for a contrast estimate)."""
    parts = [shape.right, shape.left, shape.isthmus, shape.pyramidal]
    return float(sum(np.pi * part.half_width * part.half_length for part in parts if part is not None))


def point_in_lobe(rng: np.random.Generator, lobe: Lobe, fraction: float = 0.6) -> tuple[float, float]:
    """A random point inside the inner ``fraction`` of a lobe (in-plane)."""
    u = rng.uniform(-1, 1) * lobe.half_width * fraction
    v = rng.uniform(-1, 1) * lobe.half_length * fraction
    theta = np.radians(lobe.tilt_deg)
    return (lobe.cx + u * np.cos(theta) - v * np.sin(theta), lobe.cy + u * np.sin(theta) + v * np.cos(theta))


def _lobe_footprint(grid: Grid, lobe: Lobe) -> Footprint:
    return ellipsoid(grid, lobe.cx, lobe.cy, lobe.half_width, lobe.half_length, lobe.half_depth, lobe.tilt_deg, lobe.taper)


@dataclass
class ThyroidActivity:
    """The gland drawn on the fine grid.

    Attributes:
        density: relative activity per pixel (sums to one).
        footprints: per-structure projected thickness (``thyroid_right``, ``thyroid_left``,
            ``isthmus``, ``pyramidal_lobe``, ``nodule_<i>``).
        nodule_activity_fraction: share of the gland's activity in the nodules.
    """

    density: np.ndarray
    footprints: dict[str, Footprint]
    nodule_activity_fraction: float


def draw_thyroid(grid: Grid, shape: ThyroidShape, rng: np.random.Generator, texture_sigma: float = 0.08, texture_mm: float = 8.0) -> ThyroidActivity:
    """Draw a gland's relative activity: parenchyma times a log-normal texture, plus nodules.

    Nodules replace the parenchyma along their chord: a cold nodule removes activity, a
    hot one adds ``(relative_concentration - 1)`` times its chord. The chord of a cold
    nodule, or of a hot one ``within_gland``, is capped by the gland's thickness.

    Args:
        grid: the fine grid.
        shape: the gland.
        rng: random generator (texture).
        texture_sigma: standard deviation of the log texture (0.05-0.1 normal gland).
        texture_mm: correlation length of the texture.
    """
    footprints: dict[str, Footprint] = {
        "thyroid_right": _lobe_footprint(grid, shape.right),
        "thyroid_left": _lobe_footprint(grid, shape.left),
    }
    if shape.isthmus is not None:
        footprints["isthmus"] = _lobe_footprint(grid, shape.isthmus)
    if shape.pyramidal is not None:
        footprints["pyramidal_lobe"] = _lobe_footprint(grid, shape.pyramidal)
    parenchyma = np.zeros((grid.size, grid.size))
    for footprint in footprints.values():
        parenchyma_window = parenchyma[footprint.rows, footprint.cols]
        np.maximum(parenchyma_window, footprint.thickness, out=parenchyma_window)
    rows, cols = np.nonzero(parenchyma)
    if rows.size == 0:
        return ThyroidActivity(parenchyma, footprints, 0.0)
    window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    if texture_sigma > 0:
        shape_px = (window[0].stop - window[0].start, window[1].stop - window[1].start)
        texture = np.exp(texture_sigma * smooth_field(rng, shape_px, texture_mm / grid.pixel_mm) - texture_sigma**2 / 2)
        parenchyma[window] *= texture
    nodular = np.zeros_like(parenchyma)
    for index, nodule in enumerate(shape.nodules):
        footprint = ellipsoid(grid, nodule.cx, nodule.cy, nodule.radius, nodule.radius, nodule.radius)
        footprints[f"nodule_{index}"] = footprint
        local = parenchyma[footprint.rows, footprint.cols]
        bulges = nodule.is_hot and not nodule.within_gland
        chord = footprint.thickness if bulges else np.minimum(footprint.thickness, local)
        paint(nodular, Footprint(footprint.rows, footprint.cols, chord), nodule.relative_concentration - 1.0)
    density = np.clip(parenchyma + nodular, 0.0, None)
    total = density.sum()
    hot = np.clip(nodular, 0, None).sum()
    return ThyroidActivity(density / total, footprints, float(hot / total) if total > 0 else 0.0)
