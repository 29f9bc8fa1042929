"""Gamma-camera models: collimator resolution, septal penetration, scatter and counting.

A camera turns an activity distribution into an expected-counts image in three linear
steps, all done in the Fourier domain on a padded grid:

1. each depth layer is blurred by the collimator's depth-dependent Gaussian PSF
   (``FWHM(d) = sqrt(R_int**2 + (R_col0 + k*d)**2)``);
2. a fraction of the primary photons passes through the septa (high-energy isotopes) and
   lands on a six-armed "star" kernel;
3. scattered photons accepted by the energy window add a broad Gaussian halo;
4. optionally, patient motion during the frame smears everything along a line.

Parallel-hole collimators (``PARA``: LEHR, LEAP, HEGP) have a sensitivity independent of
distance. A pinhole (``PINH``) is modelled in the object plane of the thyroid: its
resolution ``sqrt((a*(1 + d/f))**2 + (R_int*d/f)**2)`` and its sensitivity ``(100/d)**2``
depend on the distance ``d`` from the aperture, while the magnification ``f/d`` is taken
at the thyroid plane for the whole image (structures deeper than the thyroid are not drawn
smaller); the ``cos**3`` fall-off off the axis is applied by the detector response
(:mod:`scintipipe.simulate.acquisition`).

:func:`acquire` then scales the expected image to the count preset and draws Poisson
counts, which is how a count-preset acquisition behaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import fft

#: linear attenuation coefficient of soft tissue per mm, by photon energy (keV)
TISSUE_MU_PER_MM = {140.5: 0.0153, 364.5: 0.0110}


@dataclass(frozen=True)
class CameraProfile:
    """A radionuclide, energy window and collimator.

    Attributes:
        name: short name, e.g. ``tc99m-lehr``.
        radionuclide: e.g. ``Tc-99m``.
        radionuclide_code: (code value, scheme, meaning) for RadionuclideCodeSequence.
        radiopharmaceutical: (name, SNOMED code, meaning) of the usual tracer.
        photopeak_kev: photopeak energy.
        window_percent: full width of the energy window in percent of the photopeak.
        half_life_h: physical half-life in hours.
        collimator: DICOM CollimatorType (``PARA``, ``PINH``).
        collimator_name: free-text collimator name (``LEHR``, ``HEGP``).
        intrinsic_fwhm_mm: detector intrinsic resolution.
        collimator_fwhm_0_mm: collimator geometric resolution at the face.
        collimator_fwhm_slope: increase of collimator FWHM per mm of distance.
        sensitivity_cps_per_mbq: counts per second per MBq of an unattenuated source.
        scatter_fraction: window-accepted scatter relative to primaries (0.2-0.35 at 140 keV).
        scatter_fwhm_mm: width of the scatter halo.
        septal_penetration: fraction of primaries spread onto the star kernel.
        star_arm_length_mm: reach of the star arms.
        window_kev: explicit (lower, upper) window when it is not centred on the peak.
        pinhole_focal_mm: pinhole aperture to crystal distance ``f`` (0 for parallel holes).
        pinhole_aperture_mm: effective pinhole aperture diameter ``a``.
    """

    name: str
    radionuclide: str
    radionuclide_code: tuple[str, str, str]
    radiopharmaceutical: tuple[str, str, str]
    photopeak_kev: float
    window_percent: float
    half_life_h: float
    collimator: str
    collimator_name: str
    intrinsic_fwhm_mm: float
    collimator_fwhm_0_mm: float
    collimator_fwhm_slope: float
    sensitivity_cps_per_mbq: float
    scatter_fraction: float
    scatter_fwhm_mm: float
    septal_penetration: float = 0.0
    star_arm_length_mm: float = 0.0
    window_kev: tuple[float, float] | None = None
    pinhole_focal_mm: float = 0.0
    pinhole_aperture_mm: float = 0.0

    @property
    def is_pinhole(self) -> bool:
        """Whether the collimator is a pinhole (magnifying, distance-dependent sensitivity)."""
        return self.pinhole_focal_mm > 0

    @property
    def energy_window_kev(self) -> tuple[float, float]:
        """Lower and upper limits of the energy window."""
        if self.window_kev is not None:
            return self.window_kev
        half = self.photopeak_kev * self.window_percent / 200.0
        return (self.photopeak_kev - half, self.photopeak_kev + half)

    @property
    def mu_per_mm(self) -> float:
        """Soft-tissue attenuation coefficient at the photopeak."""
        return TISSUE_MU_PER_MM.get(self.photopeak_kev, 0.0153)

    def fwhm_mm(self, distance_mm: float) -> float:
        """System FWHM at ``distance_mm`` from the collimator face (pinhole: from the
        aperture, expressed in the object plane)."""
        if self.is_pinhole:
            ratio = distance_mm / self.pinhole_focal_mm
            return math.hypot(self.pinhole_aperture_mm * (1.0 + ratio), self.intrinsic_fwhm_mm * ratio)
        collimator = self.collimator_fwhm_0_mm + self.collimator_fwhm_slope * distance_mm
        return math.hypot(self.intrinsic_fwhm_mm, collimator)

    def relative_sensitivity(self, distance_mm: float) -> float:
        """Sensitivity at ``distance_mm`` relative to ``sensitivity_cps_per_mbq`` (which holds
        at 100 mm): 1 for parallel holes, ``(100/d)**2`` on the axis of a pinhole."""
        if not self.is_pinhole:
            return 1.0
        return (100.0 / max(distance_mm, 10.0)) ** 2

    def decay_factor(self, minutes: float) -> float:
        """Fraction of activity left after ``minutes``."""
        return 0.5 ** (minutes / (60.0 * self.half_life_h))


#: 99mTc, low-energy high-resolution parallel hole: 7.4 mm system FWHM at 10 cm.
TC99M_LEHR = CameraProfile(
    name="tc99m-lehr",
    radionuclide="Tc-99m",
    radionuclide_code=("72454006", "SCT", "^99m^Technetium"),
    radiopharmaceutical=("Tc99m Pertechnetate", "19495007", "Sodium pertechnetate Tc^99m^"),
    photopeak_kev=140.5,
    window_percent=20.0,
    half_life_h=6.0067,
    collimator="PARA",
    collimator_name="LEHR",
    intrinsic_fwhm_mm=3.8,
    collimator_fwhm_0_mm=1.5,
    collimator_fwhm_slope=0.0485,
    sensitivity_cps_per_mbq=90.0,
    scatter_fraction=0.28,
    scatter_fwhm_mm=45.0,
)

#: 131I, high-energy parallel hole: about 12.5 mm at 10 cm, with septal penetration.
I131_HE = CameraProfile(
    name="i131-he",
    radionuclide="I-131",
    radionuclide_code=("1368003", "SCT", "^131^Iodine"),
    radiopharmaceutical=("I131 Sodium Iodide", "111160004", "Sodium iodide I^131^"),
    photopeak_kev=364.5,
    window_percent=20.0,
    half_life_h=8.0252 * 24.0,
    collimator="PARA",
    collimator_name="HEGP",
    intrinsic_fwhm_mm=4.2,
    collimator_fwhm_0_mm=3.5,
    collimator_fwhm_slope=0.0827,
    sensitivity_cps_per_mbq=60.0,
    scatter_fraction=0.35,
    scatter_fwhm_mm=60.0,
    septal_penetration=0.15,
    star_arm_length_mm=90.0,
)

#: 99mTc, low-energy all-purpose parallel hole: about 9.8 mm at 10 cm, 1.8x LEHR's sensitivity.
TC99M_LEAP = replace(
    TC99M_LEHR, name="tc99m-leap", collimator_name="LEAP", collimator_fwhm_0_mm=2.0, collimator_fwhm_slope=0.07, sensitivity_cps_per_mbq=160.0
)

#: 99mTc, 4 mm pinhole at 230 mm focal length: about 6 mm at 10 cm in the object plane.
TC99M_PINHOLE = replace(
    TC99M_LEHR,
    name="tc99m-pinhole",
    collimator="PINH",
    collimator_name="PINHOLE",
    collimator_fwhm_0_mm=0.0,
    collimator_fwhm_slope=0.0,
    sensitivity_cps_per_mbq=90.0,
    pinhole_focal_mm=230.0,
    pinhole_aperture_mm=4.0,
)

CAMERAS = {camera.name: camera for camera in (TC99M_LEHR, TC99M_LEAP, TC99M_PINHOLE, I131_HE)}


@dataclass
class Layer:
    """Activity at one distance from the collimator.

    Attributes:
        activity_mbq: activity per pixel of the fine grid, already attenuated.
        distance_mm: distance from the collimator face (sets the PSF width).
    """

    activity_mbq: np.ndarray
    distance_mm: float


@lru_cache(maxsize=8)
def _squared_frequencies(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Squared row and column frequencies of a real-FFT grid (cycles per pixel)."""
    return fft.fftfreq(shape[0]) ** 2, fft.rfftfreq(shape[1]) ** 2


def gaussian_otf(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Fourier transform of a unit-sum Gaussian of ``sigma_px`` on a ``shape`` grid.

    Separable: the outer product of two 1-D transforms, so no 2-D ``exp`` is needed.
    """
    fy2, fx2 = _squared_frequencies(shape)
    factor = -2.0 * math.pi**2 * sigma_px**2
    return np.outer(np.exp(factor * fy2), np.exp(factor * fx2))


def _signed_index(n: int) -> np.ndarray:
    """Pixel offsets 0, 1, ..., -2, -1 of an FFT grid (kernel centred on pixel 0)."""
    index = np.arange(n)
    return np.where(index < n / 2, index, index - n)


@lru_cache(maxsize=16)
def star_otf(shape: tuple[int, int], pixel_mm: float, arm_length_mm: float) -> np.ndarray:
    """Fourier transform of a six-armed septal-penetration kernel (hexagonal holes).

    The arms fall off as ``1/r`` out to ``arm_length_mm``; the kernel sums to one.
    """
    rows, cols = shape
    y = _signed_index(rows)[:, None]
    x = _signed_index(cols)[None, :]
    r = np.hypot(y, x) * pixel_mm
    theta = np.arctan2(y, x)
    half_width = 0.5 * pixel_mm  # arms are about one septum-pattern line wide
    start = 6.0  # mm; closer in, penetration hides under the geometric PSF
    kernel = np.zeros(shape)
    for k in range(6):
        angle = math.pi / 2 + k * math.pi / 3
        across = np.abs(r * np.sin(theta - angle))
        along = r * np.cos(theta - angle)
        on_arm = (along > 0) & (across <= half_width + 0.35 * pixel_mm) & (r >= start) & (r <= arm_length_mm)
        kernel += on_arm / np.maximum(r, pixel_mm)
    kernel /= kernel.sum()
    return fft.rfft2(kernel)


def padded_shape(shape: tuple[int, int], pad: int) -> tuple[int, int]:
    """A fast FFT size at least ``pad`` larger on each side."""
    return (fft.next_fast_len(shape[0] + 2 * pad, real=True), fft.next_fast_len(shape[1] + 2 * pad, real=True))


def motion_otf(shape: tuple[int, int], length_px: float, angle_deg: float) -> np.ndarray:
    """Fourier transform of a uniform line blur of ``length_px`` at ``angle_deg`` (0: along
    the rows, 90: along the columns, i.e. head to feet)."""
    fy = fft.fftfreq(shape[0])[:, None]
    fx = fft.rfftfreq(shape[1])[None, :]
    theta = math.radians(angle_deg)
    return np.sinc(length_px * (fx * math.cos(theta) + fy * math.sin(theta)))


def project(layers: list[Layer], camera: CameraProfile, pixel_mm: float, motion_mm: float = 0.0, motion_angle_deg: float = 0.0) -> np.ndarray:
    """Expected count rate (cps per pixel) of attenuated activity layers seen by ``camera``.

    Args:
        layers: activity layers on one grid, each at its own distance.
        camera: the camera profile.
        pixel_mm: pixel size of the grid.
        motion_mm: length of a linear patient motion during the frame (0: none).
        motion_angle_deg: its direction.

    Returns:
        Non-negative float64 image of the grid's shape, in counts per second.
    """
    shape = layers[0].activity_mbq.shape
    pad = int(math.ceil(0.5 * camera.scatter_fwhm_mm / pixel_mm))  # the halo's tails wrap, but weakly
    big = padded_shape(shape, pad)
    primary = np.zeros((big[0], big[1] // 2 + 1), dtype=np.complex128)
    for layer in layers:
        sigma = camera.fwhm_mm(layer.distance_mm) / 2.3548 / pixel_mm
        spectrum = fft.rfft2(layer.activity_mbq, s=big)
        primary += camera.relative_sensitivity(layer.distance_mm) * spectrum * gaussian_otf(big, sigma)
    total = primary
    if camera.septal_penetration > 0:
        total = (1 - camera.septal_penetration) * primary + camera.septal_penetration * primary * star_otf(big, pixel_mm, camera.star_arm_length_mm)
    scatter_sigma = camera.scatter_fwhm_mm / 2.3548 / pixel_mm
    total = total + camera.scatter_fraction * primary * gaussian_otf(big, scatter_sigma)
    if motion_mm > 0:
        total = total * motion_otf(big, motion_mm / pixel_mm, motion_angle_deg)
    image = fft.irfft2(total, s=big)[: shape[0], : shape[1]]
    return np.clip(image, 0.0, None) * camera.sensitivity_cps_per_mbq


def bin_pixels(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks (fine grid to detector matrix)."""
    if factor == 1:
        return image
    rows, cols = image.shape
    return image.reshape(rows // factor, factor, cols // factor, factor).sum(axis=(1, 3))


def acquire(rate_cps: np.ndarray, count_preset: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Acquire until the count preset: scale the rate image and draw Poisson counts.

    Args:
        rate_cps: expected counts per second per pixel.
        count_preset: counts at which the camera stops.
        rng: random generator.

    Returns:
        ``(counts uint16, frame duration in seconds)``. The expected total equals the
        preset; the drawn total scatters around it by about its square root.
    """
    total_rate = float(rate_cps.sum())
    duration_s = count_preset / total_rate
    counts = rng.poisson(rate_cps * duration_s)
    return np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16), duration_s


def acquire_timed(rate_cps: np.ndarray, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Acquire for a fixed time (syringe images): Poisson counts of ``rate * duration``."""
    counts = rng.poisson(rate_cps * duration_s)
    return np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)
