"""Named acquisition profiles: matrix, pixel size, count preset, camera and dose.

``a`` and ``b`` are the two centres of seed 002 (Zhao et al. 2021); ``siemens`` matches the
real scan in ``../shared/reference-scans/siemens-thyroid``. Centre ``a``'s paper states
"2.21 mm, 256 x 256, 28 cm": 256 x 2.21 mm is 566 mm, not 28 cm, so 2.21 mm was carried
over from centre ``b`` (128 x 2.21 mm = 283 mm). We keep the stated 28 cm field of view and
256 matrix, which gives 280 / 256 = 1.09375 mm pixels, a zoom of about 2 on that camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scintipipe.simulate.camera import I131_HE, TC99M_LEHR, CameraProfile

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


CENTERS: dict[str, CenterProfile] = {
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
    "remnant": CenterProfile(
        name="remnant",
        matrix=256,
        pixel_mm=2.4,
        count_preset=150_000,
        camera=I131_HE,
        injected_mbq=3700.0,
        minutes_post_injection=(3 * 24 * 60.0, 7 * 24 * 60.0),
        collimator_gap_mm=(20.0, 50.0),
        institution="Simulated 131I centre",
    ),
}


def get_center(name: str) -> CenterProfile:
    """Return the named centre profile.

    Raises:
        KeyError: with the known names, when ``name`` is unknown.
    """
    try:
        return CENTERS[name]
    except KeyError:
        raise KeyError(f"unknown centre {name!r}; known: {', '.join(sorted(CENTERS))}") from None
