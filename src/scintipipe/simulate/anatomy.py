"""Geometry primitives on the fine grid: projected ellipsoids, body outline, smooth fields.

Coordinates are millimetres in the coronal plane relative to an anchor point (the
thyroid centre for neck views): ``x`` grows towards the image right (the patient's left
on an anterior view) and ``y`` grows towards the head. Structures are 3-D ellipsoids;
what the camera sees is their *projected thickness* (the chord length along the
anterior-posterior axis), which is what :func:`ellipsoid` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Grid:
    """A square fine grid with the anchor point at ``(anchor_row, anchor_col)``.

    Attributes:
        size: rows (= columns).
        pixel_mm: pixel size.
        anchor_row: row (float) of ``y = 0``.
        anchor_col: column (float) of ``x = 0``.
    """

    size: int
    pixel_mm: float
    anchor_row: float
    anchor_col: float

    def col_of(self, x_mm: float) -> float:
        """Column (float) of ``x_mm``."""
        return self.anchor_col + x_mm / self.pixel_mm

    def row_of(self, y_mm: float) -> float:
        """Row (float) of ``y_mm``."""
        return self.anchor_row - y_mm / self.pixel_mm

    def coordinates(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` in mm of the pixel centres in a window, broadcastable."""
        x = (np.arange(cols.start, cols.stop) - self.anchor_col) * self.pixel_mm
        y = (self.anchor_row - np.arange(rows.start, rows.stop)) * self.pixel_mm
        return x[None, :], y[:, None]

    def window(self, cx: float, cy: float, radius_mm: float) -> tuple[slice, slice] | None:
        """Row and column slices covering a disc, clipped to the grid; ``None`` if outside."""
        r = radius_mm / self.pixel_mm + 1
        r0 = max(0, int(math.floor(self.row_of(cy) - r)))
        r1 = min(self.size, int(math.ceil(self.row_of(cy) + r)) + 1)
        c0 = max(0, int(math.floor(self.col_of(cx) - r)))
        c1 = min(self.size, int(math.ceil(self.col_of(cx) + r)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)


@dataclass
class Footprint:
    """Projected thickness (mm) of a structure inside a window of the grid."""

    rows: slice
    cols: slice
    thickness: np.ndarray

    def full(self, size: int) -> np.ndarray:
        """The thickness on the whole grid."""
        image = np.zeros((size, size))
        image[self.rows, self.cols] = self.thickness
        return image

    def mask(self, size: int) -> np.ndarray:
        """Where the structure has any thickness, on the whole grid."""
        return self.full(size) > 0


def ellipsoid(grid: Grid, cx: float, cy: float, ax: float, ay: float, az: float, angle_deg: float = 0.0, taper: float = 0.0) -> Footprint:
    """Projected thickness of an ellipsoid, optionally rotated and pear-shaped.

    Args:
        grid: the fine grid.
        cx, cy: centre in mm.
        ax, ay: in-plane semi-axes in mm (before rotation).
        az: anterior-posterior semi-axis in mm (thickness is ``2*az`` at the centre).
        angle_deg: counter-clockwise rotation as displayed (positive tilts the top left).
        taper: widens the lower half (``ax*(1 - taper*v/ay)``), 0 for a plain ellipsoid.

    Returns:
        The footprint (an empty window when the ellipsoid lies outside the grid).
    """
    reach = max(ax * (1 + abs(taper)), ay)
    window = grid.window(cx, cy, reach)
    if window is None:
        return Footprint(slice(0, 0), slice(0, 0), np.zeros((0, 0)))
    x, y = grid.coordinates(*window)
    theta = math.radians(angle_deg)
    dx, dy = x - cx, y - cy
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    width = ax * (1.0 - taper * np.clip(v / ay, -1, 1))
    inside = 1.0 - (u / width) ** 2 - (v / ay) ** 2
    thickness = 2.0 * az * np.sqrt(np.clip(inside, 0.0, None))
    return Footprint(window[0], window[1], thickness)


def paint(image: np.ndarray, footprint: Footprint, weight: float = 1.0) -> None:
    """Add ``weight * thickness`` of a footprint into ``image`` in place."""
    if footprint.thickness.size:
        image[footprint.rows, footprint.cols] += weight * footprint.thickness


@dataclass(frozen=True)
class BodyOutline:
    """Head, neck, shoulders and upper chest as projected soft-tissue thickness.

    All lengths in mm relative to the anchor (thyroid centre). In an anterior neck view
    the shoulders reach the thyroid's level: their top edge starts at the side of the
    neck at ``shoulder_top`` and drops by ``shoulder_drop`` towards ``shoulder_half_width``.

    Attributes:
        head_cy: centre height of the head ellipsoid.
        head_ax, head_ay, head_az: head semi-axes (width, height, AP).
        neck_half_width: half width of the neck.
        neck_az: AP semi-thickness of the neck.
        shoulder_top: height of the shoulder line where it meets the neck.
        shoulder_drop: how far the shoulder line falls at ``shoulder_half_width``.
        shoulder_half_width: half the width across the shoulders.
        shoulder_rounding: vertical distance over which the shoulder reaches full thickness.
        chest_az: AP semi-thickness of the upper chest.
    """

    head_cy: float
    head_ax: float
    head_ay: float
    head_az: float
    neck_half_width: float
    neck_az: float
    shoulder_top: float
    shoulder_drop: float
    shoulder_half_width: float
    shoulder_rounding: float
    chest_az: float


def head_thickness(grid: Grid, body: BodyOutline) -> np.ndarray:
    """Projected thickness (mm) of the head ellipsoid alone, on the whole grid."""
    full = slice(0, grid.size)
    x, y = grid.coordinates(full, full)
    return 2 * body.head_az * np.sqrt(np.clip(1 - (x / body.head_ax) ** 2 - ((y - body.head_cy) / body.head_ay) ** 2, 0, None))


def body_thickness(grid: Grid, body: BodyOutline) -> np.ndarray:
    """Projected soft-tissue thickness (mm) of head, neck and chest on the whole grid."""
    full = slice(0, grid.size)
    x, y = grid.coordinates(full, full)
    head = head_thickness(grid, body)
    neck = 2 * body.neck_az * np.sqrt(np.clip(1 - (x / body.neck_half_width) ** 2, 0, None))
    neck = neck * (y < body.head_cy)
    lateral = np.clip((np.abs(x) - body.neck_half_width) / (body.shoulder_half_width - body.neck_half_width), 0, None)
    top = body.shoulder_top - body.shoulder_drop * lateral**1.5
    ramp = np.clip((top - y) / body.shoulder_rounding, 0, 1)
    rounding = ramp * ramp * (3 - 2 * ramp)  # smooth: shoulders slope away from the camera
    across = np.clip(1 - (x / body.shoulder_half_width) ** 2, 0, None)  # thinner towards the arms
    chest = 2 * body.chest_az * across * rounding
    return np.maximum(np.maximum(head, neck), chest)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], correlation_px: float) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field with a given correlation length.

    Drawn on a coarse grid and interpolated, which is far cheaper than filtering white
    noise on the fine grid.
    """
    rows, cols = shape
    step = max(correlation_px, 1.0)
    coarse = (int(math.ceil(rows / step)) + 2, int(math.ceil(cols / step)) + 2)
    field = rng.standard_normal(coarse)
    fine = ndimage.zoom(field, (rows / coarse[0], cols / coarse[1]), order=3, mode="nearest", grid_mode=True)
    fine = np.pad(fine, ((0, max(0, rows - fine.shape[0])), (0, max(0, cols - fine.shape[1]))), mode="edge")[:rows, :cols]
    std = fine.std()
    return (fine - fine.mean()) / (std if std > 0 else 1.0)
