"""Named acquisition profiles: matrix, pixel size, count preset, camera and dose.

``a`` and ``b`` are the two centres of the uptake4 study (Zhao et al. 2021); ``siemens`` matches the
real scan in ``../shared/reference-scans/siemens-thyroid``. Centre ``a``'s paper states
"2.21 mm, 256 x 256, 28 cm": 256 x 2.21 mm is 566 mm, not 28 cm, so 2.21 mm was carried
over from centre ``b`` (128 x 2.21 mm = 283 mm). We keep the stated 28 cm field of view and
256 matrix, which gives 280 / 256 = 1.09375 mm pixels, a zoom of about 2 on that camera.

``randomised`` is not one camera but a distribution over cameras (domain randomisation):
:meth:`CenterProfile.draw` turns it into a concrete profile per case, drawn from the case's
random generator (see :mod:`scintipipe.simulate.acquisition`); the fixed profiles return
themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from scintipipe.simulate.camera import TC99M_LEHR, CameraProfile

#: the fine grid the phantom is drawn on is at most this coarse (mm per pixel)
FINE_GRID_MAX_MM = 1.25


@dataclass(frozen=True)
class CenterProfile:
    """How one centre acquires a planar view.

    Attributes:
        name: profile name used by ``--center``.
        matrix: image rows and columns.
        pixel_mm: pixel spacing.
        count_preset: counts at which acquisition stops.
        camera: radionuclide, energy window and collimator.
        injected_mbq: typical injected activity.
        minutes_post_injection: (min, max) delay from injection to imaging.
        collimator_gap_mm: (min, max) air gap between the neck skin and the collimator.
        manufacturer: DICOM Manufacturer.
        model: DICOM ManufacturerModelName.
        institution: DICOM InstitutionName (synthetic).
        zoom: acquisition zoom (DICOM ZoomFactor): detector field over image field.
        framing_mm: (mean, sd) of how far the thyroid sits below the image centre, then
            (mean, sd) of how far to the image right, in mm.
        motion_mm: length of a linear patient motion during the frame (0: still).
        motion_angle_deg: direction of that motion (0: across, 90: head to feet).
        nonuniformity: peak relative deviation of the detector's smooth flood-field
            non-uniformity (0: perfectly uniform).
        nonuniformity_mm: correlation length of that non-uniformity.
        markers: ``(site, MBq)`` point sources taped on the patient (``chin``,
            ``sternal_notch``, ``shoulder_right``, ``shoulder_left``).
        randomise: a distribution, not a camera: :meth:`draw` returns a concrete profile.
    """

    name: str
    matrix: int
    pixel_mm: float
    count_preset: int
    camera: CameraProfile = TC99M_LEHR
    injected_mbq: float = 185.0
    minutes_post_injection: tuple[float, float] = (15.0, 25.0)
    collimator_gap_mm: tuple[float, float] = (20.0, 60.0)
    manufacturer: str = "scintipipe simulator"
    model: str = "virtual gamma camera"
    institution: str = "Simulated centre"
    zoom: float = 1.0
    framing_mm: tuple[float, float, float, float] = (6.0, 6.0, 0.0, 4.0)
    motion_mm: float = 0.0
    motion_angle_deg: float = 0.0
    nonuniformity: float = 0.0
    nonuniformity_mm: float = 80.0
    markers: tuple[tuple[str, float], ...] = ()
    randomise: bool = False

    def draw(self, rng: np.random.Generator) -> CenterProfile:
        """The concrete profile of one acquisition.

        A fixed centre returns itself and draws nothing from ``rng``; the ``randomised``
        centre draws matrix, field, counts, collimator, scatter, motion, non-uniformity,
        markers and framing (:func:`scintipipe.simulate.acquisition.draw_acquisition`).
        """
        if not self.randomise:
            return self
        from scintipipe.simulate.acquisition import draw_acquisition

        return draw_acquisition(rng, self)

    def acquisition_metadata(self) -> dict[str, Any]:
        """The acquisition as a flat dict of numbers and strings (``metadata["acquisition"]``)."""
        camera = self.camera
        out: dict[str, Any] = {
            "center": self.name,
            "matrix": self.matrix,
            "pixel_mm": round(self.pixel_mm, 6),
            "fov_mm": round(self.fov_mm, 3),
            "zoom": round(self.zoom, 4),
            "count_preset": self.count_preset,
            "collimator": camera.collimator_name,
            "collimator_type": camera.collimator,
            "fwhm_at_100mm": round(camera.fwhm_mm(100.0), 3),
            "intrinsic_fwhm_mm": round(camera.intrinsic_fwhm_mm, 3),
            "sensitivity_cps_per_mbq": round(camera.sensitivity_cps_per_mbq, 3),
            "scatter_fraction": round(camera.scatter_fraction, 4),
            "scatter_fwhm_mm": round(camera.scatter_fwhm_mm, 3),
            "window_percent": camera.window_percent,
            "pinhole_focal_mm": camera.pinhole_focal_mm,
            "pinhole_aperture_mm": round(camera.pinhole_aperture_mm, 3),
            "injected_mbq_nominal": round(self.injected_mbq, 3),
            "collimator_gap_min_mm": round(self.collimator_gap_mm[0], 3),
            "collimator_gap_max_mm": round(self.collimator_gap_mm[1], 3),
            "framing_row_mm": round(self.framing_mm[0], 3),
            "framing_col_mm": round(self.framing_mm[2], 3),
            "motion_mm": round(self.motion_mm, 3),
            "motion_angle_deg": round(self.motion_angle_deg, 2),
            "nonuniformity": round(self.nonuniformity, 4),
            "nonuniformity_mm": round(self.nonuniformity_mm, 2),
            "markers": len(self.markers),
            "oversampling": self.oversampling,
        }
        return out

    @property
    def fov_mm(self) -> float:
        """Side of the field of view."""
        return self.matrix * self.pixel_mm

    @property
    def oversampling(self) -> int:
        """Fine-grid pixels per detector pixel along each axis."""
        return max(1, math.ceil(self.pixel_mm / FINE_GRID_MAX_MM - 1e-9))

    @property
    def fine_pixel_mm(self) -> float:
        """Pixel size of the fine grid the phantom is drawn on."""
        return self.pixel_mm / self.oversampling

    @property
    def fine_matrix(self) -> int:
        """Rows (= columns) of the fine grid."""
        return self.matrix * self.oversampling


CENTERS: Mapping[str, CenterProfile] = MappingProxyType(
    {
        "a": CenterProfile(
            name="a",
            matrix=256,
            pixel_mm=280.0 / 256,
            count_preset=100_000,
            camera=TC99M_LEHR,
            model="Discovery NM/CT 670 (simulated)",
            manufacturer="GE Healthcare (simulated)",
            institution="Simulated centre a",
        ),
        "b": CenterProfile(
            name="b",
            matrix=128,
            pixel_mm=2.21,
            count_preset=300_000,
            camera=replace(TC99M_LEHR, window_percent=15.0),
            model="Discovery NM/CT 670 (simulated)",
            manufacturer="GE Healthcare (simulated)",
            institution="Simulated centre b",
        ),
        "siemens": CenterProfile(
            name="siemens",
            matrix=256,
            pixel_mm=1.1988,
            count_preset=200_000,
            camera=replace(TC99M_LEHR, window_percent=15.0, window_kev=(128.96, 149.88)),
            minutes_post_injection=(25.0, 40.0),
            model="Encore2 (simulated)",
            manufacturer="SIEMENS NM (simulated)",
            institution="Simulated Siemens centre",
        ),
        "randomised": CenterProfile(
            name="randomised",
            matrix=256,
            pixel_mm=1.2,
            count_preset=200_000,
            camera=TC99M_LEHR,
            model="randomised virtual gamma camera",
            institution="Simulated randomised centre",
            randomise=True,
        ),
    }
)
"""The centres scintipipe ships, by name (read-only): ``a``, ``b``, ``siemens`` and ``randomised``.

The built-in plugin ``scintipipe.builtin.simulators`` registers them through
``register_centers``, the hook a task plugin uses for its own (the remnant plugin's 131I
centre, for instance); :func:`get_center` looks names up among the registered ones.
"""


def registered_centers(pm: Any = None) -> dict[str, CenterProfile]:
    """Every centre the plugins of ``pm`` register, by name.

    Args:
        pm: a plugin manager; default the process-wide one (built-in and installed plugins).
    """
    from scintipipe.plugins import centers, default_plugin_manager

    return centers(pm if pm is not None else default_plugin_manager()).centers


def get_center(name: str, pm: Any = None) -> CenterProfile:
    """Return the centre profile registered as ``name``.

    Args:
        name: a centre name (``a``, ``b``, ``siemens``, ``randomised``, or a plugin's).
        pm: the plugin manager whose ``register_centers`` profiles to search; default the
            process-wide one.

    Raises:
        KeyError: with the known names, when ``name`` is unknown.
    """
    known = registered_centers(pm)
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"unknown centre {name!r}; known: {', '.join(sorted(known))}") from None
