"""The thyroid gland: lobes, isthmus, pyramidal lobe, nodules and parenchymal texture.

Sizes follow published normal ranges (lobes 40-60 mm long, 12-18 mm wide, 13-20 mm deep;
isthmus 2-6 mm thick) scaled by an enlargement factor for goitres. The gland sits at the
anchor point of the grid (``x = y = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    surrounding parenchyma's (above 1 hot, below 1 cold)."""

    cx: float
    cy: float
    radius: float
    relative_concentration: float

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


def sample_thyroid_shape(
    rng: np.random.Generator,
    enlargement: float = 1.0,
    asymmetry: float = 0.1,
    pyramidal_probability: float = 0.1,
    isthmus_probability: float = 0.85,
) -> ThyroidShape:
    """Draw a gland within published ranges.

    Args:
        rng: random generator.
        enlargement: linear scale for lobe length and width (1 normal, 1.2-1.8 goitre).
        asymmetry: relative size difference allowed between the lobes.
        pyramidal_probability: chance of a visible pyramidal lobe.
        isthmus_probability: chance that the isthmus carries visible tissue.

    Returns:
        The shape, with no nodules (see :func:`place_nodules`).
    """
    length = rng.uniform(40.0, 60.0) * enlargement
    width = rng.uniform(12.0, 18.0) * enlargement**0.8
    depth = rng.uniform(13.0, 20.0) * enlargement**0.7
    gap = rng.uniform(6.0, 14.0) + 4.0 * (enlargement - 1.0)  # between the lobes' medial borders (trachea)
    lobes = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        scale = 1.0 + rng.uniform(-asymmetry, asymmetry)
        half_width = width * scale / 2
        lobes[side] = Lobe(
            cx=sign * (gap / 2 + half_width) + rng.normal(0, 1.5),
            cy=rng.normal(0.0, 3.0),
            half_width=half_width,
            half_length=length * scale / 2,
            half_depth=depth * scale / 2,
            tilt_deg=-sign * rng.uniform(3.0, 22.0),
            taper=rng.uniform(0.0, 0.3),
        )
    isthmus = None
    if rng.random() < isthmus_probability:
        low = min(lobes["right"].cy - lobes["right"].half_length, lobes["left"].cy - lobes["left"].half_length)
        isthmus = Lobe(
            cx=rng.normal(0.0, 1.5),
            cy=low + rng.uniform(0.2, 0.4) * length,
            half_width=gap / 2 + rng.uniform(5.0, 10.0),
            half_length=rng.uniform(5.0, 9.0) * enlargement**0.5,
            half_depth=rng.uniform(1.5, 4.0) * enlargement**0.5,
            tilt_deg=rng.normal(0.0, 4.0),
            taper=0.0,
        )
    pyramidal = None
    if isthmus is not None and rng.random() < pyramidal_probability:
        p_length = rng.uniform(15.0, 30.0)
        pyramidal = Lobe(
            cx=rng.uniform(-6.0, 6.0),
            cy=isthmus.cy + p_length / 2,
            half_width=rng.uniform(2.5, 4.0),
            half_length=p_length / 2,
            half_depth=rng.uniform(2.0, 3.5),
            tilt_deg=rng.normal(0.0, 8.0),
            taper=0.2,
        )
    return ThyroidShape(lobes["right"], lobes["left"], isthmus, pyramidal, depth_mm=rng.uniform(12.0, 25.0))


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
    hot one adds ``(relative_concentration - 1)`` times its chord.

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
        chord = np.minimum(footprint.thickness, local) if not nodule.is_hot else footprint.thickness
        paint(nodular, Footprint(footprint.rows, footprint.cols, chord), nodule.relative_concentration - 1.0)
    density = np.clip(parenchyma + nodular, 0.0, None)
    total = density.sum()
    hot = np.clip(nodular, 0, None).sum()
    return ThyroidActivity(density / total, footprints, float(hot / total) if total > 0 else 0.0)
