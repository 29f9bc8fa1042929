"""Domain randomisation of the acquisition: the ``randomised`` centre and detector effects.

A fixed centre (``a``, ``b``, ``siemens``) is one camera; a network trained on it learns
that camera. The ``randomised`` centre draws a concrete acquisition for every case, from
the case's random generator and independently of the class, over ranges at least as wide
as real thyroid cameras:

====================  ===================================================================
variable              range (reason)
====================  ===================================================================
counts                log-uniform 30 k - 2 M (fast low-count scans to long high-count ones)
matrix                64 / 128 / 256 / 512 / 1024 with weights 10/35/40/12/3 %
field of view         parallel holes 150-450 mm (zoom 1-3.6 on a 380-540 mm detector);
                      pinhole 150-250 mm in the thyroid plane
collimator            LEHR 55 %, LEAP 25 % (worse resolution, 1.8x sensitivity), pinhole
                      20 % (3-6 mm aperture, 200-250 mm focal length)
intrinsic resolution  3.2-4.4 mm FWHM
distance              parallel: skin to collimator 10-100 mm; pinhole: aperture to
                      thyroid plane from the field of view (magnification f/d)
scatter               0.15-0.40 of the primaries, 35-60 mm halo; window 15 or 20 %
activity, delay       74-370 MBq, 10-40 min after injection
motion                25 % of scans: a straight 1-8 mm smear in a random direction
non-uniformity        smooth multiplicative flood field, +-2-8 %, 40-150 mm correlation
markers               15 % of scans: 1-3 point sources (0.05-0.5 MBq) at the chin, the
                      suprasternal notch or a shoulder (mask ``markers``)
framing               thyroid anywhere that keeps the gland in the field: the head may be
                      in or out
====================  ===================================================================

Pinhole approximation: the magnification of the thyroid plane is applied to the whole
image (deeper organs are not drawn smaller); resolution and sensitivity depend on each
organ's distance from the aperture (:class:`scintipipe.simulate.camera.CameraProfile`) and
the flood field carries the ``cos**3`` fall-off off the axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from scintipipe.simulate.anatomy import smooth_field
from scintipipe.simulate.camera import TC99M_LEAP, TC99M_LEHR, TC99M_PINHOLE, CameraProfile
from scintipipe.simulate.centers import CenterProfile

if TYPE_CHECKING:
    from scintipipe.simulate.head_neck import HeadNeck

Key = TypeVar("Key")

COUNT_RANGE = (30_000, 2_000_000)
MATRIX_WEIGHTS = {64: 0.10, 128: 0.35, 256: 0.40, 512: 0.12, 1024: 0.03}
PARALLEL_FOV_MM = (150.0, 450.0)
PINHOLE_FOV_MM = (150.0, 250.0)
DETECTOR_FOV_MM = (380.0, 540.0)
COLLIMATOR_WEIGHTS = {"LEHR": 0.55, "LEAP": 0.25, "PINHOLE": 0.20}
INTRINSIC_FWHM_MM = (3.2, 4.4)
PARALLEL_GAP_MM = (10.0, 100.0)
PINHOLE_FOCAL_MM = (200.0, 250.0)
PINHOLE_APERTURE_MM = (3.0, 6.0)
SCATTER_FRACTION = (0.15, 0.40)
SCATTER_FWHM_MM = (35.0, 60.0)
WINDOW_PERCENT = (15.0, 20.0)
INJECTED_MBQ = (74.0, 370.0)
MINUTES_POST_INJECTION = (10.0, 40.0)
MOTION_PROBABILITY = 0.25
MOTION_MM = (1.0, 8.0)
NONUNIFORMITY = (0.02, 0.08)
NONUNIFORMITY_MM = (40.0, 150.0)
MARKER_PROBABILITY = 0.15
MARKER_SITES = ("chin", "sternal_notch", "shoulder_right", "shoulder_left")
MARKER_MBQ = (0.05, 0.5)
#: the gland's half extent that framing keeps inside the field (mm), rows and columns
GLAND_MARGIN_MM = (65.0, 60.0)
#: typical skin-to-thyroid depth used to place the pinhole's thyroid plane
NOMINAL_THYROID_DEPTH_MM = 18.0

_CAMERAS = {"LEHR": TC99M_LEHR, "LEAP": TC99M_LEAP, "PINHOLE": TC99M_PINHOLE}


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _choice(rng: np.random.Generator, weights: Mapping[Key, float]) -> Key:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def draw_acquisition(rng: np.random.Generator, template: CenterProfile) -> CenterProfile:
    """Draw one concrete acquisition for the ``randomised`` centre.

    Args:
        rng: the case's random generator (the same state gives the same acquisition).
        template: the ``randomised`` profile (name, manufacturer, model, institution).

    Returns:
        A fixed profile (``randomise=False``) for this case only.
    """
    matrix = int(_choice(rng, MATRIX_WEIGHTS))
    counts = int(round(_log_uniform(rng, *COUNT_RANGE)))
    kind = str(_choice(rng, COLLIMATOR_WEIGHTS))
    detector_fov = rng.uniform(*DETECTOR_FOV_MM)
    camera: CameraProfile = replace(
        _CAMERAS[kind],
        intrinsic_fwhm_mm=rng.uniform(*INTRINSIC_FWHM_MM),
        scatter_fraction=rng.uniform(*SCATTER_FRACTION),
        scatter_fwhm_mm=rng.uniform(*SCATTER_FWHM_MM),
        window_percent=float(rng.choice(WINDOW_PERCENT)),
    )
    if kind == "PINHOLE":
        fov = rng.uniform(*PINHOLE_FOV_MM)
        focal = rng.uniform(*PINHOLE_FOCAL_MM)
        aperture = rng.uniform(*PINHOLE_APERTURE_MM)
        camera = replace(
            camera,
            pinhole_focal_mm=focal,
            pinhole_aperture_mm=aperture,
            sensitivity_cps_per_mbq=TC99M_PINHOLE.sensitivity_cps_per_mbq * (aperture / 4.0) ** 2,
        )
        thyroid_distance = focal * fov / detector_fov  # magnification f/d maps the detector onto the field
        gap = max(20.0, thyroid_distance - NOMINAL_THYROID_DEPTH_MM)
        zoom = 1.0
    else:
        fov = rng.uniform(*PARALLEL_FOV_MM)
        gap = rng.uniform(*PARALLEL_GAP_MM)
        detector_fov = max(detector_fov, fov)
        zoom = detector_fov / fov
    row_limit = max(0.0, fov / 2 - GLAND_MARGIN_MM[0])
    col_limit = max(0.0, fov / 2 - GLAND_MARGIN_MM[1])
    framing = (rng.uniform(-0.6, 1.0) * row_limit, min(3.0, row_limit / 3), rng.uniform(-0.5, 0.5) * col_limit, min(3.0, col_limit / 3))
    moving = rng.random() < MOTION_PROBABILITY
    motion = rng.uniform(*MOTION_MM) if moving else 0.0
    angle = rng.uniform(0.0, 180.0) if moving else 0.0
    markers: tuple[tuple[str, float], ...] = ()
    if rng.random() < MARKER_PROBABILITY:
        sites = rng.choice(MARKER_SITES, size=int(rng.integers(1, 4)), replace=False)
        markers = tuple((str(site), _log_uniform(rng, *MARKER_MBQ)) for site in sites)
    return replace(
        template,
        matrix=matrix,
        pixel_mm=fov / matrix,
        count_preset=counts,
        camera=camera,
        injected_mbq=_log_uniform(rng, *INJECTED_MBQ),
        minutes_post_injection=MINUTES_POST_INJECTION,
        collimator_gap_mm=(gap, gap),
        zoom=zoom,
        framing_mm=framing,
        motion_mm=motion,
        motion_angle_deg=angle,
        nonuniformity=rng.uniform(*NONUNIFORMITY),
        nonuniformity_mm=rng.uniform(*NONUNIFORMITY_MM),
        markers=markers,
        randomise=False,
    )


def flood_field(rng: np.random.Generator, center: CenterProfile, gap_mm: float) -> np.ndarray | None:
    """The detector's relative sensitivity per pixel, or ``None`` when it is flat.

    Smooth non-uniformity (peak deviation ``center.nonuniformity``) times, for a pinhole,
    the ``cos**3`` fall-off around its axis (the image centre; ``gap_mm`` from the skin).
    Draws from ``rng`` only when the profile has a non-uniformity.
    """
    field = None
    size = center.matrix
    if center.nonuniformity > 0:
        smooth = smooth_field(rng, (size, size), center.nonuniformity_mm / center.pixel_mm)
        field = 1.0 + center.nonuniformity * smooth / max(float(np.abs(smooth).max()), 1e-9)
    if center.camera.is_pinhole:
        rows, cols = np.mgrid[0:size, 0:size]
        radius = np.hypot(rows - size / 2, cols - size / 2) * center.pixel_mm
        distance = gap_mm + NOMINAL_THYROID_DEPTH_MM
        fall_off = (1.0 + (radius / distance) ** 2) ** -1.5
        field = fall_off if field is None else field * fall_off
    return field


def marker_positions(rng: np.random.Generator, markers: tuple[tuple[str, float], ...], anatomy: HeadNeck) -> list[tuple[str, float, float, float]]:
    """Where the taped markers sit on this patient: ``(site, x_mm, y_mm, MBq)``.

    Args:
        rng: random generator (a few mm of placement jitter).
        markers: the profile's ``(site, MBq)`` pairs.
        anatomy: the patient's :class:`scintipipe.simulate.head_neck.HeadNeck`.
    """
    body = anatomy.body
    mouth_y = float(np.mean([blob.cy for blob in anatomy.oral_cavity]))
    out = []
    for site, mbq in markers:
        if site == "chin":
            x, y = rng.normal(0.0, 3.0), mouth_y - rng.uniform(20.0, 35.0)
        elif site == "sternal_notch":
            x, y = rng.normal(0.0, 3.0), -rng.uniform(30.0, 45.0)
        else:
            sign = -1.0 if site == "shoulder_right" else 1.0
            x = sign * (body.neck_half_width + rng.uniform(40.0, 90.0))
            y = body.shoulder_top - rng.uniform(10.0, 40.0)
        out.append((site, float(x), float(y), float(mbq)))
    return out
