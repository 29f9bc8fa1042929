"""Assemble organs into depth layers, image them with a camera, and bin masks.

A :class:`Scene` collects activity (MBq at imaging time) on the fine grid, attenuates each
organ by the tissue in front of it, groups organs into layers by distance from the
collimator (each layer gets its own PSF width) and hands the layers to
:func:`scintipipe.simulate.camera.project`.
"""

from __future__ import annotations

import math

import numpy as np

from scintipipe.simulate.anatomy import Footprint, Grid
from scintipipe.simulate.camera import CameraProfile, Layer, bin_pixels, project

#: organs closer than this in distance share a layer (one PSF width)
LAYER_BIN_MM = 20.0
BACKGROUND_LAYER = -1


class Scene:
    """Activity on a fine grid, ready to be projected.

    Args:
        grid: the fine grid.
        camera: the camera (its attenuation coefficient is used).
        gap_mm: air gap between the anterior skin and the collimator face.
    """

    def __init__(self, grid: Grid, camera: CameraProfile, gap_mm: float) -> None:
        self.grid = grid
        self.camera = camera
        self.gap_mm = gap_mm
        self._layers: dict[int, np.ndarray] = {}
        self._distances: dict[int, float] = {}
        self.footprints: dict[str, list[Footprint]] = {}
        self.activities_mbq: dict[str, float] = {}

    def _layer(self, distance_mm: float) -> np.ndarray:
        key = int(math.floor(distance_mm / LAYER_BIN_MM))
        if key not in self._layers:
            self._layers[key] = np.zeros((self.grid.size, self.grid.size))
            self._distances[key] = (key + 0.5) * LAYER_BIN_MM
        return self._layers[key]

    def add_organ(self, name: str, parts: list[tuple[Footprint, float]], activity_mbq: float, mask: bool = True) -> None:
        """Spread ``activity_mbq`` over footprints in proportion to their thickness.

        Args:
            name: structure name (mask key when ``mask``).
            parts: ``(footprint, tissue depth mm)`` pairs.
            activity_mbq: total activity of the structure at imaging time.
            mask: record the footprints for the ground-truth masks.
        """
        volume = sum(float(fp.thickness.sum()) for fp, _ in parts)
        if volume <= 0:
            return
        for footprint, depth in parts:
            if not footprint.thickness.size:
                continue
            weight = activity_mbq / volume * math.exp(-self.camera.mu_per_mm * depth)
            layer = self._layer(self.gap_mm + depth)
            layer[footprint.rows, footprint.cols] += weight * footprint.thickness
        self.activities_mbq[name] = self.activities_mbq.get(name, 0.0) + activity_mbq
        if mask:
            self.footprints.setdefault(name, []).extend(fp for fp, _ in parts)

    def add_to_background(self, name: str, thickness_mm: np.ndarray, concentration_mbq_per_ml: float, self_attenuation: float) -> None:
        """Add diffuse activity (e.g. the head's soft tissue) to the background layer.

        Call after :meth:`add_background`; ``self_attenuation`` is the mean transmission.
        """
        activity = thickness_mm * self.grid.pixel_mm**2 * concentration_mbq_per_ml / 1000.0
        self._layers[BACKGROUND_LAYER] += activity * self_attenuation
        self.activities_mbq[name] = self.activities_mbq.get(name, 0.0) + float(activity.sum())

    def add_density(self, name: str, density: np.ndarray, activity_mbq: float, depth_mm: float) -> None:
        """Add an activity map given as a relative density on the grid (sums to one)."""
        layer = self._layer(self.gap_mm + depth_mm)
        layer += density * (activity_mbq * math.exp(-self.camera.mu_per_mm * depth_mm))
        self.activities_mbq[name] = self.activities_mbq.get(name, 0.0) + activity_mbq

    def add_background(self, thickness_mm: np.ndarray, concentration_mbq_per_ml: float) -> float:
        """Blood pool and soft tissue: uniform concentration through the body thickness.

        Self-attenuation of a uniform slab of thickness ``T`` averages
        ``(1 - exp(-mu T)) / (mu T)``. Returns the activity added (MBq).
        """
        mu = self.camera.mu_per_mm
        pixel_area = self.grid.pixel_mm**2
        activity = thickness_mm * pixel_area * concentration_mbq_per_ml / 1000.0
        with np.errstate(invalid="ignore", divide="ignore"):
            self_attenuation = np.where(thickness_mm > 0, -np.expm1(-mu * thickness_mm) / (mu * thickness_mm), 1.0)
        mean_half_thickness = float(thickness_mm[thickness_mm > 0].mean()) / 2 if np.any(thickness_mm > 0) else 0.0
        distance = self.gap_mm + mean_half_thickness
        key = BACKGROUND_LAYER
        self._layers[key] = activity * self_attenuation
        self._distances[key] = distance
        total = float(activity.sum())
        self.activities_mbq["background"] = total
        return total

    def rate_cps(self, oversampling: int, motion_mm: float = 0.0, motion_angle_deg: float = 0.0) -> np.ndarray:
        """Expected counts per second per detector pixel (with an optional linear motion
        blur of ``motion_mm`` at ``motion_angle_deg``)."""
        layers = [Layer(self._layers[key], self._distances[key]) for key in sorted(self._layers)]
        fine = project(layers, self.camera, self.grid.pixel_mm, motion_mm, motion_angle_deg)
        return bin_pixels(fine, oversampling)

    def masks(self, oversampling: int) -> dict[str, np.ndarray]:
        """Boolean footprints on the detector grid (a pixel belongs when at least half of
        its fine pixels do)."""
        out = {}
        size = self.grid.size
        for name, footprints in self.footprints.items():
            fine = np.zeros((size, size), dtype=bool)
            for footprint in footprints:
                if footprint.thickness.size:
                    fine[footprint.rows, footprint.cols] |= footprint.thickness > 0
            if oversampling > 1:
                fraction = bin_pixels(fine.astype(np.float32), oversampling) / oversampling**2
                out[name] = fraction >= 0.5
            else:
                out[name] = fine
        return out
