"""A second, independent simulator of planar 99mTc thyroid scintigrams, and the shipped bundles on it.

Run from the repository root::

    python benchmarks/second_simulator.py --n-per-class 50 --seed 7 --out /tmp/second_sim
    python benchmarks/second_simulator.py --n-per-class 50 --seed 7 --format png --out /tmp/second_sim_png
    python benchmarks/second_simulator.py --simulate-only --n-per-class 5 --out /tmp/look
    python benchmarks/second_simulator.py --bundle uptake4 --no-results --contact-sheets benchmarks/results/second_simulator_inputs
    python benchmarks/second_simulator.py --bundle-folder uptake4=data/uptake4-seed-runs/seed-1 --out /tmp/second_sim_runs

The shipped classifiers (``uptake4``, ``disease``) were trained on the project's own
simulator only. They will be judged on a simulator written elsewhere, which we do not have.
This file is a stand-in for it: written without reading or importing the project's
simulator, its documentation or the training code, from the class definitions of the
published studies (``../shared/seeds``) and from first principles. It uses numpy, scipy,
pydicom and Pillow only; the benchmark part runs ``scintipipe run`` in child processes
(:func:`_common.run_no_report`) and reads ``predictions.csv`` and ``errors.csv`` back.

How the images are made (all lengths in mm, a patient frame with the origin at the middle
of the thyroid, ``u`` to the image's right, ``v`` cranial):

* **Anatomy.** Each thyroid lobe is a rotated, tapered *superellipse* (exponent 1.7-2.8,
  wider at the lower pole, upper poles tilted outward); its projected thickness is the
  dome ``sqrt(1 - rho)`` over the superellipse radius ``rho``. An isthmus (a flat
  superellipse band across the lower third, absent in 15 %) and sometimes a pyramidal lobe
  join them. Two parotid and two submandibular glands, an oral (saliva) and a nasal
  blob, jugular/carotid blood-pool strips, a neck cylinder, a head ellipsoid, shoulders and
  a mediastinal blood pool make the rest, each with its own amplitude.
* **Intensity scale.** Everything is relative to the *salivary reference*: the mean peak
  projected activity of the four salivary glands is 1. The thyroid's peak amplitude above
  the soft tissue, and its concentration pattern, are what the class defines (below). The
  soft-tissue (blood-pool) level is drawn independently of the class, 0.05-0.25 of the
  salivary reference.
* **Camera.** Parallel-hole (80 %): matrix 128 (1.8-3.6 mm pixels) or 256 (0.9-2.0 mm),
  rectangular field; pinhole (20 %): a circular field of 115-160 mm at the object with
  ``cos^3`` vignetting. The point-spread function is a Gaussian core (FWHM 6-12 mm,
  pinhole 3.5-6 mm) plus an exponential scatter tail (5-25 % of the counts, decay length
  12-35 mm); a smooth 0-3 % non-uniformity; Poisson noise at a count preset of 60-500 k
  counts (pinhole 50-250 k). The whole scene is rendered on a grid of at most 1 mm and
  binned down to the matrix.
* **Nuisances drawn independently of the class.** Every nuisance (camera, matrix, pixel
  size, counts, blur, scatter, body size, gland position and rotation in the field,
  whether the head is in the field, background level, salivary, oral and nasal activity,
  lobe shape, isthmus, pyramidal lobe, an occasional anatomical marker source) comes from
  a random stream seeded by ``(seed, case, 1)`` that never sees the class; the class's
  own draws come from ``(seed, case, 2)``. So a case's nuisances are the same whatever its
  class (``tests/test_second_simulator.py`` checks).

The classes (medical definitions, ``../shared/seeds/000_*``, ``001_*``, ``002_*``); the
generator's five *patterns* map to the two bundles' labels (:data:`UPTAKE4_OF`,
:data:`DISEASE_OF`):

==================== ====================== ====================================================
pattern              disease                definition used here
==================== ====================== ====================================================
diffusely_increased  graves                 enlarged gland (x1.25-1.7), homogeneous, peak 2.5-7 x
                                            the salivary reference
diffusely_decreased  subacute_thyroiditis   normal-size gland, peak 0.3-2.5 x the soft-tissue
                                            level and at most 0.8 x the salivary reference
focal_increased      thyroid_tumour         1 (70 %), 2 or 3 hot nodules (5-14 mm radius), peak
                                            1.5-6 x salivary; the rest 3-30 % of the nodule
heterogeneous        thyroid_tumour         normal-size or enlarged gland (x0.95-1.6), base peak
                                            0.8-3 x salivary, patchy texture (15-35 %) and 2-5
                                            nodules, cold (5-45 %) and/or warm (1.4-2.2 x)
normal               normal                 normal size (x0.85-1.12), homogeneous, peak 0.9-2 x
                                            the salivary reference
==================== ====================== ====================================================

A toxic adenoma (focal increased) is a benign thyroid tumour, so ``focal_increased`` cases
count as ``thyroid_tumour`` for the disease bundle; ``normal`` cases have no uptake4 label
(the four uptake patterns are all abnormal). The benchmark therefore simulates ``n`` cases
of each of the five patterns: ``4 n`` for uptake4 and ``5 n`` for disease (``2 n`` tumours;
the disease table adds the balanced accuracy, the mean of the per-class recalls).

Outputs: ``OUT/images/case_NNNN.dcm`` (NM Image Storage, uint16 counts, Tc-99m) or
``.png`` (8-bit display export), ``OUT/labels.csv`` (``file,uptake4,disease``),
``OUT/cases.csv`` (each case's nuisances and truth measures), ``OUT/run_<bundle>/`` (the
runs), and ``benchmarks/results/second_simulator[_png].{md,json}``.

It was written inside this project, by the same team that wrote the first simulator, so
it is a weaker check than a truly external one: shared assumptions about what a
scintigram looks like are not tested by it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, signal

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: the stand-in draw the README and model cards quote first; other seeds are further draws
DEFAULT_SEED = 7
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

#: the generator's patterns, in the order of the tables
PATTERNS = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous", "normal")
UPTAKE4_LABELS = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous")
DISEASE_LABELS = ("graves", "subacute_thyroiditis", "thyroid_tumour", "normal")
#: pattern -> uptake4 label ("" for normal: not one of the four uptake patterns)
UPTAKE4_OF = {p: p for p in UPTAKE4_LABELS} | {"normal": ""}
#: pattern -> disease label
DISEASE_OF = {
    "diffusely_increased": "graves",
    "diffusely_decreased": "subacute_thyroiditis",
    "focal_increased": "thyroid_tumour",
    "heterogeneous": "thyroid_tumour",
    "normal": "normal",
}
BUNDLE_LABELS = {"uptake4": UPTAKE4_LABELS, "disease": DISEASE_LABELS}
BUNDLE_COLUMN = {"uptake4": "uptake4", "disease": "disease"}

#: the render grid's largest spacing (mm); the camera matrix is binned from it
FINE_MM = 1.0
#: the truth grid (canonical patient frame): spacing and extent (mm)
TRUTH_MM = 1.0
TRUTH_HALF_WIDTH = 110.0
TRUTH_V_RANGE = (-70.0, 150.0)

# ---- parameters -------------------------------------------------------------------------


@dataclass
class Camera:
    """The acquisition: geometry, resolution, counts (nuisances only)."""

    pinhole: bool
    matrix: int
    pixel_mm: float
    fwhm_mm: float
    scatter_fraction: float
    scatter_length_mm: float
    total_counts: int
    count_rate_cps: float
    nonuniformity: float
    vignetting: float  # pinhole: field radius over the focal distance (0 for parallel-hole)
    gland_x_fraction: float  # the gland's position in the field, fractions of the field from its centre
    gland_y_fraction: float  # fraction of the field height from the top
    rotation_deg: float

    @property
    def fov_mm(self) -> float:
        return self.matrix * self.pixel_mm


@dataclass
class Anatomy:
    """The patient (nuisances only): body, salivary and other activity, gland shape that no class defines."""

    body_scale: float
    background: float  # soft tissue / blood pool at full neck thickness, in salivary units
    neck_half_width: float
    head_level: float
    chest_level: float
    heart_level: float
    vessel_level: float
    vessel_x: float
    parotid: tuple[float, float]  # amplitudes (left, right) before normalisation
    submandibular: tuple[float, float]
    parotid_pos: tuple[float, float]  # (|u|, v) of the parotid centres
    submandibular_pos: tuple[float, float]
    salivary_jitter: tuple[float, float, float, float]  # vertical jitter of the four glands (mm)
    mouth: float
    mouth_v: float
    nasal: float
    # gland shape that no class defines
    lobe_half_length: float
    lobe_half_width: float
    lobe_gap: float
    lobe_exponent: tuple[float, float]
    lobe_tilt_deg: tuple[float, float]
    lobe_taper: tuple[float, float]
    lobe_asymmetry: float  # right/left size difference (fraction)
    isthmus: float  # isthmus thickness relative to the lobes (0: absent)
    isthmus_height: float
    pyramidal: float  # pyramidal lobe thickness (0: absent)
    pyramidal_length: float
    texture_mm: float  # correlation length of the gland's texture
    marker: str  # "", "notch" or "chin": an anatomical marker source
    marker_level: float  # the marker's peak over the brightest other structure


@dataclass
class Nodule:
    lobe: int  # -1 left, +1 right (image sides)
    u: float
    v: float
    radius: float
    multiplier: float  # concentration relative to the gland's base concentration


@dataclass
class Gland:
    """What the class defines: size, uptake amplitude, homogeneity, nodules."""

    pattern: str
    size: float  # the gland's linear scale (1 = average normal gland)
    amplitude: float  # base peak activity above soft tissue, in salivary units
    texture: float  # relative amplitude of the patchy texture
    extra_asymmetry: float
    nodules: list[Nodule] = field(default_factory=list)


# ---- drawing the parameters ---------------------------------------------------------------


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_camera(rng: np.random.Generator) -> Camera:
    """The camera and the gland's place in its field (a nuisance stream: no class here)."""
    pinhole = bool(rng.random() < 0.2)
    if pinhole:
        matrix = int(rng.choice([128, 256]))
        fov = rng.uniform(115.0, 160.0)
        pixel = fov / matrix
        fwhm = rng.uniform(3.5, 6.0)
        counts = int(_loguniform(rng, 50e3, 250e3))
        x_frac, y_frac = rng.uniform(-0.06, 0.06), rng.uniform(0.42, 0.58)
        vignetting = rng.uniform(0.3, 0.6)
    else:
        matrix = int(rng.choice([128, 256], p=[0.45, 0.55]))
        pixel = rng.uniform(1.8, 3.6) if matrix == 128 else rng.uniform(0.9, 2.0)
        fwhm = rng.uniform(6.0, 12.0)
        counts = int(_loguniform(rng, 60e3, 500e3))
        x_frac, y_frac = rng.uniform(-0.1, 0.1), rng.uniform(0.42, 0.72)
        vignetting = 0.0
    return Camera(
        pinhole=pinhole,
        matrix=matrix,
        pixel_mm=float(pixel),
        fwhm_mm=float(fwhm),
        scatter_fraction=float(rng.uniform(0.05, 0.25)),
        scatter_length_mm=float(rng.uniform(12.0, 35.0)),
        total_counts=counts,
        count_rate_cps=float(rng.uniform(300.0, 1500.0)),
        nonuniformity=float(rng.uniform(0.0, 0.03)),
        vignetting=float(vignetting),
        gland_x_fraction=float(x_frac),
        gland_y_fraction=float(y_frac),
        rotation_deg=float(rng.uniform(-8.0, 8.0)),
    )


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """The patient's body, salivary and other activity and the gland shape no class defines (nuisances)."""
    s = float(rng.uniform(0.88, 1.15))
    background = float(rng.uniform(0.05, 0.25))
    marker = str(rng.choice(["", "notch", "chin"], p=[0.9, 0.07, 0.03]))
    return Anatomy(
        body_scale=s,
        background=background,
        neck_half_width=float(rng.uniform(45.0, 60.0) * s),
        head_level=float(rng.uniform(0.7, 1.2)),
        chest_level=float(rng.uniform(0.8, 1.4)),
        heart_level=float(rng.uniform(1.5, 3.0)),
        vessel_level=float(rng.uniform(0.3, 1.0)),
        vessel_x=float(rng.uniform(22.0, 32.0) * s),
        parotid=(float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.6, 1.3))),
        submandibular=(float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.7, 1.3))),
        parotid_pos=(float(rng.uniform(52.0, 66.0) * s), float(rng.uniform(85.0, 105.0) * s)),
        submandibular_pos=(float(rng.uniform(30.0, 40.0) * s), float(rng.uniform(48.0, 64.0) * s)),
        salivary_jitter=tuple(float(x) for x in rng.uniform(-6.0, 6.0, 4)),  # type: ignore[arg-type]
        mouth=float(rng.uniform(0.0, 1.6)),
        mouth_v=float(rng.uniform(72.0, 92.0) * s),
        nasal=float(rng.uniform(0.0, 0.6)),
        lobe_half_length=float(rng.uniform(18.0, 25.0)),
        lobe_half_width=float(rng.uniform(7.0, 10.5)),
        lobe_gap=float(rng.uniform(8.0, 18.0)),
        lobe_exponent=(float(rng.uniform(1.7, 2.8)), float(rng.uniform(1.7, 2.8))),
        lobe_tilt_deg=(float(rng.uniform(4.0, 20.0)), float(rng.uniform(4.0, 20.0))),
        lobe_taper=(float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.0, 0.3))),
        lobe_asymmetry=float(rng.uniform(-0.15, 0.15)),
        isthmus=float(rng.uniform(0.15, 0.6)) if rng.random() > 0.15 else 0.0,
        isthmus_height=float(rng.uniform(5.0, 11.0)),
        pyramidal=float(rng.uniform(0.2, 0.45)) if rng.random() < 0.12 else 0.0,
        pyramidal_length=float(rng.uniform(15.0, 25.0)),
        texture_mm=float(rng.uniform(3.0, 7.0)),
        marker=marker,
        marker_level=float(rng.uniform(0.4, 1.5)),
    )


def _lobe_geometry(anatomy: Anatomy, size: float, extra_asymmetry: float) -> list[dict[str, float]]:
    """The two lobes' centres and axes (patient frame, mm)."""
    lobes = []
    for index, side in enumerate((-1, 1)):
        factor = size * (1.0 + side * (anatomy.lobe_asymmetry + extra_asymmetry) / 2.0)
        a = anatomy.lobe_half_length * factor
        b = anatomy.lobe_half_width * factor**0.85
        cx = side * (anatomy.lobe_gap * size**0.5 / 2.0 + b)
        lobes.append(
            {
                "side": side,
                "cx": cx,
                "cy": 0.1 * a,
                "a": a,
                "b": b,
                "n": anatomy.lobe_exponent[index],
                "tilt": math.radians(side * anatomy.lobe_tilt_deg[index]),
                "taper": anatomy.lobe_taper[index],
            }
        )
    return lobes


def _inside_lobe(rng: np.random.Generator, lobe: dict[str, float], reach: float) -> tuple[float, float]:
    """A random point inside a lobe, at most ``reach`` of the way to its edge."""
    while True:
        lx, ly = rng.uniform(-1, 1, 2)
        if abs(lx) ** 2 + abs(ly) ** 2 <= reach**2:
            break
    lx *= lobe["b"]
    ly *= lobe["a"]
    c, s = math.cos(lobe["tilt"]), math.sin(lobe["tilt"])
    return lobe["cx"] + lx * c + ly * s, lobe["cy"] - lx * s + ly * c


def draw_gland(rng: np.random.Generator, pattern: str, anatomy: Anatomy) -> Gland:
    """What the class defines (the class stream). ``anatomy`` places nodules and scales the decreased uptake.

    Args:
        rng: the class stream.
        pattern: one of :data:`PATTERNS`.
        anatomy: the case's anatomy (nuisances, drawn before and independently).
    """
    if pattern == "diffusely_increased":
        gland = Gland(pattern, float(rng.uniform(1.25, 1.7)), float(rng.uniform(2.5, 7.0)), float(rng.uniform(0.0, 0.06)), 0.0)
    elif pattern == "normal":
        gland = Gland(pattern, float(rng.uniform(0.85, 1.12)), float(rng.uniform(0.9, 2.0)), float(rng.uniform(0.0, 0.06)), 0.0)
    elif pattern == "diffusely_decreased":
        amplitude = min(0.8, anatomy.background * float(rng.uniform(0.3, 2.5)))
        gland = Gland(pattern, float(rng.uniform(0.8, 1.2)), amplitude, float(rng.uniform(0.0, 0.1)), 0.0)
    elif pattern == "focal_increased":
        peak = float(rng.uniform(1.5, 6.0))
        rest = peak * float(rng.uniform(0.03, 0.3))
        gland = Gland(pattern, float(rng.uniform(0.9, 1.25)), rest, float(rng.uniform(0.0, 0.08)), 0.0)
        lobes = _lobe_geometry(anatomy, gland.size, 0.0)
        count = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
        for _ in range(count):
            lobe = lobes[int(rng.integers(2))]
            u, v = _inside_lobe(rng, lobe, 0.75)
            radius = float(rng.uniform(5.0, 14.0))
            gland.nodules.append(Nodule(int(lobe["side"]), u, v, radius, peak / rest * float(rng.uniform(0.9, 1.0))))
    elif pattern == "heterogeneous":
        size = float(rng.uniform(0.95, 1.6))
        gland = Gland(pattern, size, float(rng.uniform(0.8, 3.0)), float(rng.uniform(0.15, 0.35)), float(rng.uniform(-0.3, 0.3)))
        lobes = _lobe_geometry(anatomy, size, gland.extra_asymmetry)
        count = int(rng.integers(2, 6))
        kinds = ["cold" if rng.random() < 0.6 else "warm" for _ in range(count)]
        if rng.random() < 0.85 and "cold" not in kinds:
            kinds[0] = "cold"
        for kind in kinds:
            lobe = lobes[int(rng.integers(2))]
            u, v = _inside_lobe(rng, lobe, 0.7)
            radius = float(rng.uniform(5.0, 14.0) * size**0.5)
            multiplier = float(rng.uniform(0.05, 0.45)) if kind == "cold" else float(rng.uniform(1.4, 2.2))
            gland.nodules.append(Nodule(int(lobe["side"]), u, v, radius, multiplier))
    else:
        raise ValueError(f"unknown pattern {pattern!r}; expected one of {', '.join(PATTERNS)}")
    return gland


# ---- rendering ---------------------------------------------------------------------------


def _superellipse_dome(
    u: np.ndarray, v: np.ndarray, cx: float, cy: float, a: float, b: float, n: float, tilt: float = 0.0, taper: float = 0.0
) -> np.ndarray:
    """Projected thickness (peak 1) of a tapered superellipse: ``a`` half-length along ``v``, ``b`` half-width."""
    du, dv = u - cx, v - cy
    c, s = math.cos(tilt), math.sin(tilt)
    across = du * c - dv * s
    along = du * s + dv * c
    half_width = b * (1.0 - taper * np.clip(along / a, -1.0, 1.0))
    rho = np.abs(across / half_width) ** n + np.abs(along / a) ** n
    return np.sqrt(np.clip(1.0 - rho, 0.0, None))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ``sigma_px``."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), max(sigma_px, 0.5), mode="reflect")
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def render_scene(
    u: np.ndarray, v: np.ndarray, spacing: float, anatomy: Anatomy, gland: Gland, texture_rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Projected activity of every structure on a grid of patient coordinates.

    Args:
        u, v: the grid's patient coordinates (mm).
        spacing: the grid spacing (mm), for the texture's correlation length.
        anatomy: the nuisances.
        gland: the class's gland.
        texture_rng: the stream for the gland's texture (a nuisance realisation).

    Returns:
        ``thyroid`` (above soft tissue), ``thickness`` (the gland's shape, peak 1),
        ``salivary`` (above soft tissue), ``salivary_shape``, ``background`` (soft tissue,
        blood pool, oral and nasal activity), ``nodules`` (the nodules' weight, 0-1),
        ``marker``.
    """
    s = anatomy.body_scale
    # the thyroid: lobes, isthmus, pyramidal lobe (max: no seams where they overlap)
    lobes = _lobe_geometry(anatomy, gland.size, gland.extra_asymmetry)
    thickness = np.zeros_like(u)
    for lobe in lobes:
        dome = _superellipse_dome(u, v, lobe["cx"], lobe["cy"], lobe["a"], lobe["b"], lobe["n"], lobe["tilt"], lobe["taper"])
        thickness = np.maximum(thickness, dome)
    if anatomy.isthmus > 0:
        half = abs(lobes[0]["cx"])
        band = _superellipse_dome(u, v, 0.0, -0.35 * lobes[0]["a"], anatomy.isthmus_height / 2 * gland.size**0.5, half, 4.0)
        thickness = np.maximum(thickness, anatomy.isthmus * band)
    if anatomy.pyramidal > 0:
        length = anatomy.pyramidal_length * gland.size
        strip = _superellipse_dome(u, v, 0.4 * lobes[0]["b"], -0.35 * lobes[0]["a"] + length / 2, length / 2, 2.5, 2.2, math.radians(-6))
        thickness = np.maximum(thickness, anatomy.pyramidal * strip)
    texture = _smooth_field(texture_rng, u.shape, anatomy.texture_mm / spacing)
    concentration = np.clip(1.0 + gland.texture * texture, 0.05, None)
    nodule_weight = np.zeros_like(u)
    for nodule in gland.nodules:
        distance = np.hypot(u - nodule.u, v - nodule.v)
        weight = 1.0 / (1.0 + np.exp((distance - nodule.radius) / 1.2))  # a soft disc
        concentration = concentration * (1 - weight) + nodule.multiplier * weight
        if nodule.multiplier > 1:  # a hot nodule bulges: at least a sphere's thickness
            sphere = np.sqrt(np.clip(1.0 - (distance / nodule.radius) ** 2, 0.0, None)) * min(1.0, nodule.radius / 10.0)
            thickness = np.maximum(thickness, sphere * (thickness > 0.05))
        nodule_weight = np.maximum(nodule_weight, weight)
    thyroid = gland.amplitude * concentration * thickness

    # salivary glands: amplitudes normalised so that their mean peak is 1 (the reference)
    amplitudes = np.array([*anatomy.parotid, *anatomy.submandibular])
    amplitudes = amplitudes / amplitudes.mean()
    salivary = np.zeros_like(u)
    salivary_shape = np.zeros_like(u)
    pu, pv = anatomy.parotid_pos
    su, sv = anatomy.submandibular_pos
    jitter = anatomy.salivary_jitter
    glands = [
        (-pu, pv + jitter[0], 20.0 * s, 12.0 * s, math.radians(-12)),
        (pu, pv + jitter[1], 20.0 * s, 12.0 * s, math.radians(12)),
        (-su, sv + jitter[2], 10.0 * s, 13.0 * s, math.radians(25)),
        (su, sv + jitter[3], 10.0 * s, 13.0 * s, math.radians(-25)),
    ]
    for amplitude, (cu, cv, a, b, tilt) in zip(amplitudes, glands, strict=True):
        dome = _superellipse_dome(u, v, cu, cv, a, b, 2.2, tilt)
        salivary += amplitude * dome
        salivary_shape = np.maximum(salivary_shape, dome)

    # soft tissue and blood pool (levels in units of the background), oral and nasal activity
    bg = anatomy.background
    w = anatomy.neck_half_width
    neck = np.sqrt(np.clip(1.0 - (u / w) ** 2, 0.0, None)) * (v < 75 * s) * (v > -95 * s)
    head = anatomy.head_level * _superellipse_dome(u, v, 0.0, 125 * s, 105 * s, 78 * s, 2.0)
    # shoulders and upper chest: below a line that slopes down from the neck's base, with a soft edge
    shoulder_line = -70 * s - 0.35 * np.clip(np.abs(u) - w, 0.0, None)
    shoulders = anatomy.chest_level * np.sqrt(np.clip(1.0 - (u / (190 * s)) ** 2, 0.0, None)) / (1.0 + np.exp((v - shoulder_line) / 12.0))
    heart = anatomy.heart_level * np.exp(-(((u - 20 * s) / (50 * s)) ** 2 + ((v + 190 * s) / (45 * s)) ** 2))
    vessels = sum(np.exp(-(((u - side * anatomy.vessel_x) / 4.0) ** 2)) * (v < 90 * s) * (v > -110 * s) for side in (-1, 1))
    tissue = np.maximum(np.maximum(neck, head), shoulders) + heart + anatomy.vessel_level * vessels
    mouth = anatomy.mouth * np.exp(-((u / (18 * s)) ** 2 + ((v - anatomy.mouth_v) / (8 * s)) ** 2))
    nasal = anatomy.nasal * np.exp(-((u / (10 * s)) ** 2 + ((v - 125 * s) / (18 * s)) ** 2))
    background = bg * tissue + mouth + nasal

    marker = np.zeros_like(u)
    if anatomy.marker:
        mv = -55 * s if anatomy.marker == "notch" else 75 * s
        brightest = max(float(gland.amplitude * max([1.0] + [n.multiplier for n in gland.nodules])), 1.0, anatomy.mouth)
        marker = anatomy.marker_level * brightest * np.exp(-((u**2 + (v - mv) ** 2) / (2 * 2.0**2)))
    return {
        "thyroid": thyroid,
        "thickness": thickness,
        "salivary": salivary,
        "salivary_shape": salivary_shape,
        "background": background,
        "nodules": nodule_weight,
        "marker": marker,
    }


def _psf(camera: Camera, spacing: float) -> np.ndarray:
    """The point-spread function on the render grid: Gaussian core plus an exponential scatter tail."""
    sigma = camera.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / spacing
    length = camera.scatter_length_mm / spacing
    radius = int(math.ceil(max(4 * sigma, 4 * length)))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    r = np.hypot(x, y)
    core = np.exp(-(r**2) / (2 * sigma**2))
    tail = np.exp(-r / length)
    return (1 - camera.scatter_fraction) * core / core.sum() + camera.scatter_fraction * tail / tail.sum()


@dataclass
class SimulatedCase:
    pattern: str
    counts: np.ndarray  # uint16, rows x cols
    expected: np.ndarray  # the noiseless expected counts
    camera: Camera
    anatomy: Anatomy
    gland: Gland
    truth: dict[str, float]

    @property
    def uptake4(self) -> str:
        return UPTAKE4_OF[self.pattern]

    @property
    def disease(self) -> str:
        return DISEASE_OF[self.pattern]


def _streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator, np.random.Generator]:
    """The case's streams: nuisances, class, texture realisation, counting noise."""
    return tuple(np.random.default_rng([seed, index, k]) for k in (1, 2, 3, 4))  # type: ignore[return-value]


def truth_measures(anatomy: Anatomy, gland: Gland, texture_seed: tuple[int, ...]) -> dict[str, float]:
    """Class-defining quantities on the noiseless, unblurred scene (canonical patient grid, 1 mm).

    Returns:
        ``thyroid_mean`` and ``salivary_mean`` (mean activity above soft tissue within each
        structure's shape), ``thyroid_salivary`` (their ratio), ``thyroid_background`` (the
        gland's mean activity over the soft-tissue level), ``thyroid_area_mm2``,
        ``thyroid_cv`` (coefficient of variation of the gland's concentration, nodules
        included), ``nodule_rest`` (hottest nodule's mean over the rest of the gland; 1
        without hot nodules) and ``cold_fraction`` (gland area below half the median).
    """
    us = np.arange(-TRUTH_HALF_WIDTH, TRUTH_HALF_WIDTH + TRUTH_MM / 2, TRUTH_MM)
    vs = np.arange(TRUTH_V_RANGE[1], TRUTH_V_RANGE[0] - TRUTH_MM / 2, -TRUTH_MM)
    u, v = np.meshgrid(us, vs)
    scene = render_scene(u, v, TRUTH_MM, anatomy, gland, np.random.default_rng(list(texture_seed)))
    gland_mask = scene["thickness"] > 0.3
    salivary_mask = scene["salivary_shape"] > 0.3
    thyroid_mean = float(scene["thyroid"][gland_mask].mean())
    salivary_mean = float(scene["salivary"][salivary_mask].mean())
    concentration = scene["thyroid"][gland_mask] / np.maximum(scene["thickness"][gland_mask], 1e-6)
    hot = [n for n in gland.nodules if n.multiplier > 1]
    nodule_rest = 1.0
    if hot:
        rest = gland_mask & (scene["nodules"] < 0.05)
        rest_mean = float(scene["thyroid"][rest].mean()) if rest.any() else 1e-9
        best = 0.0
        for n in hot:
            disc = np.hypot(u - n.u, v - n.v) <= 0.7 * n.radius
            if disc.any():
                best = max(best, float(scene["thyroid"][disc].mean()))
        nodule_rest = best / max(rest_mean, 1e-9)
    return {
        "thyroid_mean": thyroid_mean,
        "salivary_mean": salivary_mean,
        "thyroid_salivary": thyroid_mean / salivary_mean,
        "thyroid_background": thyroid_mean / anatomy.background,
        "thyroid_area_mm2": float(gland_mask.sum() * TRUTH_MM**2),
        "thyroid_cv": float(concentration.std() / concentration.mean()),
        "nodule_rest": float(nodule_rest),
        "cold_fraction": float((concentration < 0.5 * np.median(concentration)).mean()),
    }


def draw_parameters(seed: int, index: int, pattern: str) -> tuple[Camera, Anatomy, Gland]:
    """A case's camera and anatomy (the nuisance stream, the same for every pattern) and gland (the class stream)."""
    nuisance_rng, class_rng = _streams(seed, index)[:2]
    camera = draw_camera(nuisance_rng)
    anatomy = draw_anatomy(nuisance_rng)
    return camera, anatomy, draw_gland(class_rng, pattern, anatomy)


def simulate_case(seed: int, index: int, pattern: str) -> SimulatedCase:
    """One case: draw the nuisances and the class, render, blur, bin and count.

    Args:
        seed: the data set's seed.
        index: the case number (the nuisance stream is ``(seed, index, 1)`` whatever the pattern).
        pattern: one of :data:`PATTERNS`.
    """
    camera, anatomy, gland = draw_parameters(seed, index, pattern)
    texture_rng, noise_rng = _streams(seed, index)[2:]

    # the render grid: an integer subdivision of the camera pixel, at most FINE_MM
    factor = max(1, math.ceil(camera.pixel_mm / FINE_MM - 1e-9))
    spacing = camera.pixel_mm / factor
    side = camera.matrix * factor
    fov = camera.fov_mm
    centres = (np.arange(side) - (side - 1) / 2.0) * spacing
    x, y = np.meshgrid(centres, -centres)  # camera frame, y up (row 0 at the top)
    gx = camera.gland_x_fraction * fov
    gy = fov / 2.0 - camera.gland_y_fraction * fov
    phi = math.radians(camera.rotation_deg)
    dx, dy = x - gx, y - gy
    u = dx * math.cos(phi) + dy * math.sin(phi)
    v = -dx * math.sin(phi) + dy * math.cos(phi)
    scene = render_scene(u, v, spacing, anatomy, gland, texture_rng)
    activity = scene["thyroid"] + scene["salivary"] + scene["background"] + scene["marker"]

    image = signal.fftconvolve(activity, _psf(camera, spacing), mode="same")
    image = np.clip(image, 0.0, None)
    if camera.nonuniformity > 0:
        image *= 1.0 + camera.nonuniformity * _smooth_field(noise_rng, image.shape, 30.0 / spacing)
    if camera.pinhole:
        r = np.hypot(x, y) / (fov / 2.0)
        image *= (1.0 + (camera.vignetting * r) ** 2) ** -1.5
        image *= r <= 0.97
    image = image.reshape(camera.matrix, factor, camera.matrix, factor).sum(axis=(1, 3))
    expected = image * (camera.total_counts / image.sum())
    counts = np.minimum(noise_rng.poisson(expected), 65535).astype(np.uint16)

    truth = truth_measures(anatomy, gland, (seed, index, 6))
    # is the head in the field: both submandibular glands inside it
    inside = []
    for su_sign in (-1, 1):
        su, sv = su_sign * anatomy.submandibular_pos[0], anatomy.submandibular_pos[1]
        cx = gx + su * math.cos(phi) - sv * math.sin(phi)
        cy = gy + su * math.sin(phi) + sv * math.cos(phi)
        if camera.pinhole:
            inside.append(math.hypot(cx, cy) <= 0.97 * fov / 2)
        else:
            inside.append(abs(cx) <= fov / 2 and abs(cy) <= fov / 2)
    truth["head_in_field"] = float(all(inside))
    return SimulatedCase(pattern, counts, expected, camera, anatomy, gland, truth)


# ---- writing -------------------------------------------------------------------------------


def _uid(seed: int, index: int, what: str) -> str:
    """A deterministic UID under the 2.25 (UUID) root."""
    digest = hashlib.sha256(f"second-simulator:{seed}:{index}:{what}".encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def write_dicom(path: Path, case: SimulatedCase, seed: int, index: int) -> None:
    """Write a case as a single-frame NM Image Storage file (uint16 counts, Tc-99m, anterior view)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import UID, ExplicitVRLittleEndian, NuclearMedicineImageStorage

    camera = case.camera
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NuclearMedicineImageStorage
    meta.MediaStorageSOPInstanceUID = UID(_uid(seed, index, "sop"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("2.25.1947239482103948572019384756")
    ds = Dataset()
    ds.file_meta = meta
    day = dt.date(2024, 1, 1) + dt.timedelta(days=int(index % 365))
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    ds.SOPClassUID = NuclearMedicineImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = day.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101500"
    ds.AccessionNumber = ""
    ds.Modality = "NM"
    ds.Manufacturer = "Second Simulator"
    ds.ManufacturerModelName = "pinhole" if camera.pinhole else "parallel LEHR"
    ds.StudyDescription = "THYROID SCINTIGRAPHY 99MTC"
    ds.SeriesDescription = "ANT"
    ds.BodyPartExamined = "THYROID"
    ds.PatientName = f"SIM^{index:04d}"
    ds.PatientID = f"SS{seed:03d}{index:05d}"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = _uid(seed, index, "study")
    ds.SeriesInstanceUID = _uid(seed, index, "series")
    ds.FrameOfReferenceUID = _uid(seed, index, "frame")
    ds.StudyID = str(index)
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ActualFrameDuration = int(round(1000 * camera.total_counts / camera.count_rate_cps))
    ds.AcquisitionTerminationCondition = "CNTS"
    ds.CountsAccumulated = int(case.counts.sum())
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = 1
    ds.FrameIncrementPointer = [0x00540010, 0x00540020]
    ds.Rows, ds.Columns = case.counts.shape
    ds.PixelSpacing = [f"{camera.pixel_mm:.4f}", f"{camera.pixel_mm:.4f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.EnergyWindowVector = [1]
    ds.NumberOfEnergyWindows = 1
    window_range = Dataset()
    window_range.EnergyWindowLowerLimit = "126.0"
    window_range.EnergyWindowUpperLimit = "154.0"
    window = Dataset()
    window.EnergyWindowRangeSequence = Sequence([window_range])
    window.EnergyWindowName = "TC99M"
    ds.EnergyWindowInformationSequence = Sequence([window])
    code = Dataset()
    code.CodeValue = "C-163A8"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = "^99m^Technetium"
    pharm = Dataset()
    pharm.Radiopharmaceutical = "Tc-99m pertechnetate"
    pharm.RadionuclideTotalDose = "185"
    pharm.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([pharm])
    ds.DetectorVector = [1]
    ds.NumberOfDetectors = 1
    detector = Dataset()
    detector.CollimatorType = "PINH" if camera.pinhole else "PARA"
    detector.FieldOfViewShape = "ROUND" if camera.pinhole else "RECTANGLE"
    view = Dataset()
    view.CodeValue = "R-10206"
    view.CodingSchemeDesignator = "SRT"
    view.CodeMeaning = "antero-posterior"
    detector.ViewCodeSequence = Sequence([view])
    ds.DetectorInformationSequence = Sequence([detector])
    ds.PixelData = np.ascontiguousarray(case.counts, dtype="<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def display_png(case: SimulatedCase, seed: int, index: int) -> Any:
    """An 8-bit display export (a PIL image): windowed at a high percentile, resampled to a display size."""
    from PIL import Image

    rng = np.random.default_rng([seed, index, 5])
    counts = case.counts.astype(np.float64)
    top = float(np.percentile(counts, rng.uniform(99.5, 100.0))) * float(rng.uniform(0.85, 1.05))
    gray = (255 * np.clip(counts / max(top, 1.0), 0, 1)).round().astype(np.uint8)
    size = int(rng.integers(200, 401))
    return Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR)


def plan(n_per_class: int, seed: int) -> list[str]:
    """The patterns of a data set in case order: ``n_per_class`` of each, shuffled under ``seed``."""
    patterns = [p for p in PATTERNS for _ in range(n_per_class)]
    order = np.random.default_rng([seed, 0]).permutation(len(patterns))
    return [patterns[i] for i in order]


def case_row(name: str, case: SimulatedCase) -> dict[str, Any]:
    """A ``cases.csv`` row: labels, nuisances and truth measures."""
    camera = case.camera
    return {
        "file": name,
        "pattern": case.pattern,
        "uptake4": case.uptake4,
        "disease": case.disease,
        "camera": "pinhole" if camera.pinhole else "parallel",
        "matrix": camera.matrix,
        "pixel_mm": round(camera.pixel_mm, 3),
        "fwhm_mm": round(camera.fwhm_mm, 2),
        "scatter_fraction": round(camera.scatter_fraction, 3),
        "total_counts": camera.total_counts,
        "max_count": int(case.counts.max()),
        "background": round(case.anatomy.background, 3),
        "marker": case.anatomy.marker,
        "head_in_field": int(case.truth["head_in_field"]),
        "gland_size": round(case.gland.size, 3),
        "amplitude": round(case.gland.amplitude, 3),
        "n_nodules": len(case.gland.nodules),
        **{key: round(value, 4) for key, value in case.truth.items() if key != "head_in_field"},
    }


def simulate_dataset(out: Path, n_per_class: int, seed: int, fmt: str = "dicom", log: Any = print) -> list[dict[str, Any]]:
    """Write ``n_per_class`` cases of each pattern into ``out/images`` with ``labels.csv`` and ``cases.csv``.

    File names carry only the case number (``case_0007.dcm``), never the class.

    Returns:
        The ``cases.csv`` rows.
    """
    if fmt not in ("dicom", "png"):
        raise ValueError(f"format must be dicom or png, not {fmt!r}")
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    patterns = plan(n_per_class, seed)
    for index, pattern in enumerate(patterns):
        case = simulate_case(seed, index, pattern)
        name = f"images/case_{index:04d}.{'dcm' if fmt == 'dicom' else 'png'}"
        if fmt == "dicom":
            write_dicom(out / name, case, seed, index)
        else:
            display_png(case, seed, index).save(out / name)
        rows.append(case_row(name, case))
        if log and (index + 1) % 50 == 0:
            log(f"simulated {index + 1}/{len(patterns)}")
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "uptake4", "disease"])
        writer.writerows([row["file"], row["uptake4"], row["disease"]] for row in rows)
    with (out / "cases.csv").open("w", newline="") as handle:
        table = csv.DictWriter(handle, fieldnames=list(rows[0]))
        table.writeheader()
        table.writerows(rows)
    return rows


# ---- the benchmark -----------------------------------------------------------------------


def rate(k: int, n: int) -> dict[str, Any]:
    """``k`` of ``n`` with its Wilson 95 % interval (``None`` for ``n == 0``)."""
    from scintipipe.evaluation.intervals import wilson_interval

    interval = wilson_interval(k, n)
    return {"k": k, "n": n, "value": k / n if n else None, "wilson95": list(interval) if interval else None}


def fmt_rate(entry: dict[str, Any]) -> str:
    if not entry["n"]:
        return "-"
    lo, hi = entry["wilson95"]
    return f"{100 * entry['value']:.1f} % ({entry['k']}/{entry['n']}; {100 * lo:.1f}-{100 * hi:.1f})"


def read_run(out: Path, log: str = "") -> tuple[dict[str, dict[str, str]], dict[str, tuple[str, str]]]:
    """A run's predictions and errors keyed by the resolved source file.

    Args:
        out: the run's folder (``predictions.csv``, ``errors.csv``).
        log: the run's log (stderr): its ``skipped PATH: REASON`` lines give the inputs the
            gate skipped (syringe, flood), which ``errors.csv`` does not list.

    Returns:
        ``(predictions, errors)``; an error is ``(stage, reason)``, a skip ``("skipped: REASON", REASON)``.
    """
    predictions: dict[str, dict[str, str]] = {}
    with (out / "predictions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            predictions.setdefault(str(Path(row["source"].split("#")[0]).resolve()), row)
    errors: dict[str, tuple[str, str]] = {}
    if (out / "errors.csv").is_file():
        with (out / "errors.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                errors[str(Path(row["source"].split("#")[0]).resolve())] = (row.get("stage", ""), row.get("error", ""))
    for line in log.splitlines():
        match = SKIPPED_LINE.match(line.strip())
        if match:
            errors.setdefault(str(Path(match["source"].split("#")[0]).resolve()), (f"skipped: {match['reason']}", match["reason"]))
    return predictions, errors


#: a ``scintipipe run`` log line for an input the gate skipped
SKIPPED_LINE = re.compile(r"^skipped (?P<source>.+?): (?P<reason>.+)$")


#: the case measures compared between right and wrong answers (``cases.csv`` columns)
PROFILE_KEYS = ("thyroid_salivary", "nodule_rest", "thyroid_cv", "gland_size", "background", "pixel_mm", "fwhm_mm", "total_counts")


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    return float(np.median([float(r[key]) for r in rows])) if rows else None


#: the strata the accuracy is broken down by: (name, cases.csv column or function)
STRATA = (
    ("camera", lambda r: r["camera"]),
    ("matrix", lambda r: str(r["matrix"])),
    ("head (submandibular glands) in field", lambda r: "yes" if int(r["head_in_field"]) else "no"),
    ("marker source", lambda r: r["marker"] or "none"),
    ("total counts", lambda r: "< 170 k" if int(r["total_counts"]) < 170_000 else ">= 170 k"),
    # seed 002 calls "multiple areas of focal increased and suppressed uptake" heterogeneous,
    # so focal cases with 2 or 3 hot nodules are where this definition and the paper's may part
    (
        "focal increased cases by hot nodules",
        lambda r: "other patterns" if r["pattern"] != "focal_increased" else ("1 nodule" if int(r["n_nodules"]) == 1 else "2-3 nodules"),
    ),
)


def score_bundle(bundle: str, rows: list[dict[str, Any]], folder: Path, predictions: dict, errors: dict) -> dict[str, Any]:
    """Accuracy, per-class recall, confusion matrix, refusals and strata of one bundle's run."""
    column = BUNDLE_COLUMN[bundle]
    labels = BUNDLE_LABELS[bundle]
    scored = [r for r in rows if r[column]]
    confusion = {t: dict.fromkeys([*labels, "refused/failed"], 0) for t in labels}
    outcomes = []
    refusals: dict[str, int] = {}
    for row in scored:
        key = str((folder / row["file"]).resolve())
        pred = predictions.get(key)
        if pred is None:
            stage = errors.get(key, ("no prediction", ""))[0] or "no prediction"
            refusals[stage] = refusals.get(stage, 0) + 1
            confusion[row[column]]["refused/failed"] += 1
            outcomes.append((row, None))
            continue
        label = pred["label"]
        confusion[row[column]][label] = confusion[row[column]].get(label, 0) + 1
        outcomes.append((row, label))
    correct = sum(1 for row, label in outcomes if label == row[column])
    classified = [(row, label) for row, label in outcomes if label is not None]
    recall = {t: rate(sum(1 for r, lab in outcomes if r[column] == t and lab == t), sum(1 for r, _ in outcomes if r[column] == t)) for t in labels}
    result: dict[str, Any] = {
        "n": len(outcomes),
        "accuracy": rate(correct, len(outcomes)),
        "accuracy_classified": rate(correct, len(classified)),
        "balanced_accuracy": float(np.mean([recall[t]["value"] for t in labels if recall[t]["n"]])),
        "recall": recall,
        "confusion": confusion,
        "refused": sum(refusals.values()),
        "refused_by_stage": refusals,
        "by_pattern": {},
        "strata": {},
        "systematic": [],
        "error_profile": {},
    }
    for pattern in PATTERNS:
        group = [(r, lab) for r, lab in outcomes if r["pattern"] == pattern]
        if group and len({r[column] for r, _ in group}) == 1:
            predicted: dict[str, int] = {}
            for _, lab in group:
                predicted[lab or "refused/failed"] = predicted.get(lab or "refused/failed", 0) + 1
            result["by_pattern"][pattern] = {"recall": rate(sum(1 for r, lab in group if lab == r[column]), len(group)), "predicted": predicted}
    for pattern in PATTERNS:
        right_rows = [r for r, lab in outcomes if r["pattern"] == pattern and lab == r[column]]
        wrong_rows = [r for r, lab in outcomes if r["pattern"] == pattern and lab != r[column]]
        if len(wrong_rows) >= 5:
            result["error_profile"][pattern] = {
                "right": len(right_rows),
                "wrong": len(wrong_rows),
                "medians": {k: [_median(right_rows, k), _median(wrong_rows, k)] for k in PROFILE_KEYS},
            }
    for name, value_of in STRATA:
        groups: dict[str, list[bool]] = {}
        for row, label in outcomes:
            groups.setdefault(value_of(row), []).append(label == row[column])
        result["strata"][name] = {value: rate(sum(hits), len(hits)) for value, hits in sorted(groups.items())}
    for truth_label in labels:
        wrong = {p: c for p, c in confusion[truth_label].items() if p != truth_label and c}
        total = sum(confusion[truth_label].values())
        if wrong and total:
            worst, count = max(wrong.items(), key=lambda item: item[1])
            if count / total >= 0.2:
                result["systematic"].append({"true": truth_label, "predicted": worst, "count": count, "n": total})
    return result


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def render_markdown(results: dict[str, Any]) -> str:
    """The results file: header, per-bundle accuracy, recall, confusion, refusals and strata."""
    lines = [
        "# Bundles on a second, independent simulator",
        "",
        f"`{results['command']}` ({results['date']}, commit {results['commit']}). "
        f"{results['n_cases']} simulated cases ({results['n_per_class']} per pattern x {len(PATTERNS)} patterns, seed {results['seed']}, "
        f"{results['format']} files), classified with `scintipipe run --bundle B --no-report --no-explain` on the CPU. "
        f"Simulation {results['seconds']['simulate']:.0f} s; runs "
        + ", ".join(f"{b} {s:.0f} s" for b, s in results["seconds"]["runs"].items())
        + ".",
        "",
        "The simulator (`benchmarks/second_simulator.py`) was written without reading the project's own simulator or "
        "training code: its own anatomy (superellipse lobes, salivary, oral and nasal activity, blood pool), camera "
        "(parallel-hole or pinhole, Gaussian core + exponential scatter tail, count preset, Poisson noise) and intensity "
        "scale (relative to the salivary glands); every nuisance is drawn from a stream that never sees the class. "
        "It was still written inside this project, so it is a weaker check than a truly external simulator. "
        "Intervals are Wilson 95 %. Accuracy counts refused and failed inputs as wrong; "
        "'classified only' leaves them out. uptake4 is scored on the four uptake patterns (normal cases have no "
        "uptake4 label); disease on all five patterns, with focal increased (toxic adenoma) and heterogeneous both "
        "`thyroid_tumour`.",
        "",
    ]
    for bundle, r in results["bundles"].items():
        labels = BUNDLE_LABELS[r.get("task", bundle)]
        lines += [
            f"## {bundle}",
            "",
            f"- accuracy **{fmt_rate(r['accuracy'])}**; classified only {fmt_rate(r['accuracy_classified'])}; "
            f"balanced accuracy (mean recall) {100 * r['balanced_accuracy']:.1f} %",
            f"- refused or failed: {r['refused']}/{r['n']}"
            + (" (" + ", ".join(f"{stage} {count}" for stage, count in sorted(r["refused_by_stage"].items())) + ")" if r["refused"] else ""),
        ]
        if r["systematic"]:
            lines.append(
                "- systematic errors (>= 20 % of a class to one wrong answer): "
                + "; ".join(f"{s['true']} -> {s['predicted']} {s['count']}/{s['n']}" for s in r["systematic"])
            )
        lines += ["", "| true class | recall (95 % CI) |", "|---|---|"]
        lines += [f"| {t} | {fmt_rate(r['recall'][t])} |" for t in labels]
        columns = [*labels, "refused/failed"]
        lines += ["", "Confusion matrix (rows: truth, columns: prediction):", ""]
        lines += ["| truth \\ prediction | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {t} | " + " | ".join(str(r["confusion"][t].get(c, 0)) for c in columns) + " |" for t in labels]
        lines += ["", "By generator pattern:", "", "| pattern | recall | predicted |", "|---|---|---|"]
        lines += [
            f"| {p} | {fmt_rate(e['recall'])} | " + ", ".join(f"{k} {v}" for k, v in sorted(e["predicted"].items(), key=lambda kv: -kv[1])) + " |"
            for p, e in r["by_pattern"].items()
        ]
        if r["error_profile"]:
            lines += [
                "",
                "What the errors have in common: medians of the case's truth measures and nuisances, right vs wrong answers "
                "(patterns with >= 5 wrong; thyroid_salivary and nodule_rest as in `cases.csv`):",
                "",
                "| pattern | right / wrong | " + " | ".join(PROFILE_KEYS) + " |",
                "|---|---|" + "---|" * len(PROFILE_KEYS),
            ]
            for pattern, profile in r["error_profile"].items():
                cells = [f"{_num(a)} / {_num(b)}" for a, b in (profile["medians"][k] for k in PROFILE_KEYS)]
                lines.append(f"| {pattern} | {profile['right']} / {profile['wrong']} | " + " | ".join(cells) + " |")
        lines += ["", "Accuracy by nuisance (should not depend on it):", "", "| nuisance | value | accuracy |", "|---|---|---|"]
        for name, groups in r["strata"].items():
            lines += [f"| {name} | {value} | {fmt_rate(entry)} |" for value, entry in groups.items()]
        lines.append("")
    return "\n".join(lines)


def bundle_folder(text: str) -> tuple[str, Path]:
    """``--bundle-folder``'s ``TASK=FOLDER``: a bundle folder scored as ``TASK`` (``uptake4`` or ``disease``).

    The folder is read with :class:`scintipipe.bundle.Bundle`, which names what is missing,
    and its declared task must be ``TASK``.

    Raises:
        argparse.ArgumentTypeError: no ``=``, an unknown task, a folder that is not a
            complete bundle, or a bundle of another task.
    """
    from scintipipe.bundle import Bundle, BundleError

    task, sep, folder = text.partition("=")
    if not sep or task not in BUNDLE_LABELS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TASK=FOLDER with TASK one of {', '.join(sorted(BUNDLE_LABELS))}")
    try:
        declared = Bundle(folder).task
    except BundleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if declared != task:
        raise argparse.ArgumentTypeError(f"{folder} is a {declared} bundle, not {task}")
    return task, Path(folder)


def run_benchmark(
    out: Path,
    n_per_class: int,
    seed: int,
    fmt: str,
    bundles: list[str],
    threads: int,
    command: str,
    sheets: Path | None = None,
    folders: Sequence[tuple[str, Path]] = (),
) -> dict[str, Any]:
    """Simulate, run every bundle, score; with ``sheets``, save each bundle's :func:`contact_sheet` there.

    ``folders`` are ``(task, bundle folder)`` pairs (``--bundle-folder``), reported as
    ``TASK FOLDER`` and scored as ``task``.
    """
    from _common import git_commit, run_no_report

    start = time.perf_counter()
    rows = simulate_dataset(out, n_per_class, seed, fmt)
    simulate_seconds = time.perf_counter() - start
    results: dict[str, Any] = {
        "command": command,
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "seed": seed,
        "n_per_class": n_per_class,
        "n_cases": len(rows),
        "format": fmt,
        "seconds": {"simulate": simulate_seconds, "runs": {}},
        "bundles": {},
    }
    runs = [(bundle, bundle, bundle, out / f"run_{bundle}") for bundle in bundles]
    runs += [(f"{task} {folder}", task, str(folder), out / f"run_folder_{index}") for index, (task, folder) in enumerate(folders)]
    for key, task, bundle, run_out in runs:
        start = time.perf_counter()
        print(f"running {key} on {len(rows)} files ...", flush=True)
        proc = run_no_report(bundle, [out / "images"], run_out, threads)
        results["seconds"]["runs"][key] = time.perf_counter() - start
        predictions, errors = read_run(run_out, proc.stderr)
        results["bundles"][key] = {**score_bundle(task, rows, out, predictions, errors), "task": task}
        if sheets is not None:
            from PIL import Image

            sheets.mkdir(parents=True, exist_ok=True)
            Image.fromarray(contact_sheet(out, rows, predictions, task)).save(sheets / f"inputs_{run_out.name.removeprefix('run_')}_{fmt}.png")
    return results


def contact_sheet(folder: Path, rows: list[dict[str, Any]], predictions: dict, bundle: str, per_row: int = 8) -> np.ndarray:
    """What the network sees: each case's input after ``bundle``'s scan transforms, one row per class.

    A row holds up to ``per_row`` cases of one of the bundle's classes, the wrongly
    classified ones first; inputs are shown on 0-1.5, the transforms' output range.

    Args:
        folder: the data set's folder (``rows`` name their files relative to it).
        rows: the data set's case rows (:func:`simulate_dataset`).
        predictions: :func:`read_run`'s predictions of ``bundle``'s run.
        bundle: a registered bundle name.
        per_row: cases per row.

    Returns:
        An 8-bit image of ``len(labels)`` rows of ``per_row`` inputs.
    """
    from scintipipe.bundle import Bundle
    from scintipipe.loaders import read_scans
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    entry = tasks_and_bundles(make_plugin_manager()).bundles[bundle]
    transform = Bundle(entry.path, name=bundle).scan_transform
    column = BUNDLE_COLUMN[bundle]
    tiles = []
    for label in BUNDLE_LABELS[bundle]:
        cases = [r for r in rows if r[column] == label]
        right = [r for r in cases if predictions.get(str((folder / r["file"]).resolve()), {}).get("label") == label]
        row = []
        for case in ([r for r in cases if r not in right] + right)[:per_row]:
            image = transform({"image": read_scans(folder / case["file"])[0]["image"]})["image"]
            row.append((255 * np.clip(np.asarray(image)[0] / 1.5, 0, 1)).astype(np.uint8))
        side = row[0].shape if row else (96, 96)
        row += [np.zeros(side, np.uint8)] * (per_row - len(row))
        tiles.append(np.hstack(row))
    return np.vstack(tiles)


#: the model cards' section this benchmark writes (``scintipipe.docs_markers``)
CARD_MARKER = "second-simulator"


def card_section(bundle: str, runs: dict[str, dict[str, Any]]) -> str:
    """The model card's section for ``bundle``: accuracy and recall per input format, with intervals.

    Args:
        bundle: the bundle's name.
        runs: ``{format: results}`` as this script writes them (``second_simulator*.json``).
    """
    lines = [
        "## On a second simulator (stand-in for an independent one)",
        "",
        "`benchmarks/second_simulator.py` was written without the simulator this bundle was trained on (its own anatomy, camera and "
        "intensity scale, nuisances drawn independently of the class), from the published class definitions. It was written in the "
        "same project, so it is a weaker check than an external simulator or real scans. Wilson 95 % intervals; refused inputs count as wrong.",
        "",
        "| input | n | accuracy | recall per class | systematic errors | measured |",
        "|---|---|---|---|---|---|",
    ]
    for fmt, results in runs.items():
        r = results["bundles"].get(bundle)
        if r is None:
            continue
        recall = "; ".join(f"{label.replace('_', ' ')} {fmt_rate(entry)}" for label, entry in r["recall"].items())
        errors = "; ".join(f"{e['true']} -> {e['predicted']} {e['count']}/{e['n']}" for e in r["systematic"]) or "none"
        lines.append(f"| {fmt} | {r['n']} | {fmt_rate(r['accuracy'])} | {recall} | {errors} | {results['date']}, commit {results['commit']} |")
    lines += pooled_rows(bundle, runs)
    lines += ["", "Rerun: `python benchmarks/second_simulator.py` (and `--format png`; further draws: `--seed N`)."]
    return "\n".join(lines)


def results_stem(seed: int, fmt: str) -> str:
    """The file stem of one draw's results: ``second_simulator`` for the default seed's DICOM
    draw, ``_seed<N>`` for any other seed, ``_png`` for display exports."""
    return "second_simulator" + ("" if seed == DEFAULT_SEED else f"_seed{seed}") + ("_png" if fmt == "png" else "")


def saved_draws(results_dir: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """``{"DICOM, seed 7": results, ...}``: every draw saved in ``results_dir``, the default
    seed first, then by seed, DICOM before PNG exports."""
    found = []
    for path in results_dir.glob("second_simulator*.json"):
        if re.fullmatch(r"second_simulator(_seed\d+)?(_png)?", path.stem):
            results = json.loads(path.read_text())
            found.append((results["seed"] != DEFAULT_SEED, results["seed"], results["format"] == "png", results))
    found.sort(key=lambda item: item[:3])
    return {f"{'PNG exports' if png else 'DICOM'}, seed {seed}": results for _, seed, png, results in found}


def pooled_rows(bundle: str, runs: dict[str, dict[str, Any]]) -> list[str]:
    """Card rows pooling every draw of one input format, where there are several (each case
    counted once; the draws are independent, so the interval is the pooled Wilson one)."""
    rows = []
    for fmt in ("DICOM", "PNG exports"):
        draws = [
            (results["seed"], results["bundles"][bundle])
            for name, results in runs.items()
            if name.startswith(fmt + ",") and bundle in results["bundles"]
        ]
        if len(draws) < 2:
            continue
        total = rate(sum(r["accuracy"]["k"] for _, r in draws), sum(r["accuracy"]["n"] for _, r in draws))
        labels = list(draws[0][1]["recall"])
        recall = "; ".join(
            f"{label.replace('_', ' ')} {fmt_rate(rate(sum(r['recall'][label]['k'] for _, r in draws), sum(r['recall'][label]['n'] for _, r in draws)))}"
            for label in labels
        )
        seeds = " + ".join(str(seed) for seed, _ in draws)
        rows.append(f"| **{fmt}, seeds {seeds} pooled** | {total['n']} | **{fmt_rate(total)}** | {recall} | - | the rows above |")
    return rows


def update_model_cards(bundles: list[str]) -> list[Path]:
    """Write :func:`card_section` into each bundle's model card from the saved results; returns the cards written."""
    from scintipipe.docs_markers import update_file
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    runs = saved_draws()
    registered = tasks_and_bundles(make_plugin_manager()).bundles
    written = []
    for bundle in bundles:
        card = Path(registered[bundle].path) / "docs" / "README.md"
        if card.is_file() and any(bundle in results["bundles"] for results in runs.values()):
            update_file(card, CARD_MARKER, card_section(bundle, runs))
            written.append(card)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-per-class", type=int, default=50, help="cases per generator pattern (five patterns)")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="the draw; results of a seed other than %(default)s go to second_simulator_seed<N>*"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/second_sim"), help="working folder (emptied of earlier images first)")
    parser.add_argument("--format", choices=["dicom", "png"], default="dicom", help="NM DICOM counts or 8-bit PNG display exports")
    parser.add_argument(
        "--bundle", action="append", choices=sorted(BUNDLE_LABELS), help="shipped bundles to run (default: both, unless --bundle-folder is given)"
    )
    parser.add_argument(
        "--bundle-folder",
        action="append",
        type=bundle_folder,
        default=[],
        metavar="TASK=FOLDER",
        help="also run the bundle in FOLDER, scored as TASK (uptake4 or disease), e.g. a training run; repeatable. "
        "Results then go to OUT/second_simulator.{md,json} only",
    )
    parser.add_argument("--threads", type=int, default=1, help="--threads of the runs")
    parser.add_argument("--simulate-only", action="store_true", help="write the data set and stop")
    parser.add_argument(
        "--contact-sheets",
        type=Path,
        default=None,
        metavar="DIR",
        help="save, per bundle, the network's inputs for 8 cases of each class (wrong answers first) as DIR/inputs_BUNDLE_FORMAT.png",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write benchmarks/results/ and the model cards' section")
    args = parser.parse_args(argv)
    folders = [str(folder.resolve()) for _, folder in args.bundle_folder]
    repeated = sorted({folder for folder in folders if folders.count(folder) > 1})
    if repeated:
        parser.error(f"--bundle-folder names {', '.join(repeated)} more than once")

    import shutil

    for sub in ["images", *(f"run_{b}" for b in BUNDLE_LABELS)]:
        shutil.rmtree(args.out / sub, ignore_errors=True)
    for stale in args.out.glob("run_folder_*"):
        shutil.rmtree(stale, ignore_errors=True)
    if args.simulate_only:
        rows = simulate_dataset(args.out, args.n_per_class, args.seed, args.format)
        print(f"wrote {len(rows)} cases to {args.out}")
        return 0
    command = f"python benchmarks/second_simulator.py --n-per-class {args.n_per_class} --seed {args.seed}" + (
        " --format png" if args.format == "png" else ""
    )
    shipped = args.bundle or ([] if args.bundle_folder else ["uptake4", "disease"])
    command += "".join(f" --bundle {b}" for b in args.bundle or []) + "".join(f" --bundle-folder {t}={f}" for t, f in args.bundle_folder)
    results = run_benchmark(
        args.out, args.n_per_class, args.seed, args.format, shipped, args.threads, command, args.contact_sheets, args.bundle_folder
    )
    text = render_markdown(results)
    if args.bundle_folder:
        (args.out / "second_simulator.md").write_text(text)
        (args.out / "second_simulator.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
        print(f"wrote {args.out / 'second_simulator.md'}")
    elif not args.no_results:
        stem = results_stem(args.seed, args.format)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{stem}.md").write_text(text)
        (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
        for card in update_model_cards(list(results["bundles"])):
            print(f"updated {card}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
