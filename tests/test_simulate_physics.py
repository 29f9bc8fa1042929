"""Physics of the simulator: count preset, Poisson noise, collimator and masks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage

from scintipipe.simulate import CENTERS, I131_HE, TC99M_LEHR, UPTAKE4_SIMULATOR
from scintipipe.simulate.anatomy import Grid, ellipsoid
from scintipipe.simulate.camera import Layer, acquire, project
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.syringe import measured_uptake_percent, simulate_syringes
from scintipipe.simulate.thyroid import Nodule, draw_thyroid, sample_thyroid_shape


def simulate(label: str, seed: int, center: str = "a"):
    return UPTAKE4_SIMULATOR(np.random.default_rng(seed), CENTERS[center], label)


@pytest.mark.parametrize("center", ["a", "b", "siemens"])
def test_total_counts_match_the_preset_within_poisson(center: str) -> None:
    profile = CENTERS[center]
    for seed, label in enumerate(UPTAKE4_SIMULATOR.labels):
        case = simulate(label, seed, center)
        assert case.counts.shape == (profile.matrix, profile.matrix)
        assert case.counts.dtype == np.uint16
        assert abs(float(case.expected.sum()) - profile.count_preset) < 1e-3 * profile.count_preset
        assert abs(case.total_counts - profile.count_preset) < 5 * math.sqrt(profile.count_preset)
        assert case.frame_duration_s > 0


def test_repeated_acquisitions_of_a_flat_region_have_variance_equal_to_mean() -> None:
    rate = np.full((64, 64), 2.0)
    rate[:, :8] = 0.5  # not perfectly flat overall, so the scaling is exercised
    rng = np.random.default_rng(1)
    frames = np.stack([acquire(rate, 40_000, rng)[0].astype(float) for _ in range(300)])
    flat = frames[:, 8:, 8:]
    mean = flat.mean(axis=0)
    ratio = flat.var(axis=0, ddof=1) / mean
    assert 0.95 < ratio.mean() < 1.05
    assert abs(mean.mean() - 40_000 * 2.0 / rate.sum()) < 0.05


def test_simulated_counts_scatter_around_the_expected_image_like_poisson() -> None:
    case = simulate("diffusely_decreased", 3)
    expected = case.expected.astype(float)
    used = expected > 3
    dispersion = ((case.counts[used] - expected[used]) ** 2 / expected[used]).mean()
    assert 0.93 < dispersion < 1.07


def test_system_resolution_is_7_4_mm_at_10_cm_for_lehr() -> None:
    assert TC99M_LEHR.fwhm_mm(100.0) == pytest.approx(7.4, abs=0.1)
    assert 12.0 <= I131_HE.fwhm_mm(100.0) <= 13.0
    pixel = 0.5
    point = np.zeros((201, 201))
    point[100, 100] = 1.0
    profile_camera = TC99M_LEHR.__class__(**{**TC99M_LEHR.__dict__, "scatter_fraction": 0.0})
    image = project([Layer(point, 100.0)], profile_camera, pixel)
    row = image[100] / image[100].max()
    above = np.nonzero(row >= 0.5)[0]
    assert (above[-1] - above[0] + 1) * pixel == pytest.approx(7.4, abs=0.6)


def test_high_energy_collimator_draws_a_six_armed_star_around_an_intense_focus() -> None:
    pixel = 1.0
    point = np.zeros((256, 256))
    point[128, 128] = 1.0
    image = project([Layer(point, 50.0)], I131_HE, pixel)
    radius = 40
    on_arm = np.mean(
        [
            image[128 - int(round(radius * math.sin(math.radians(a)))), 128 + int(round(radius * math.cos(math.radians(a))))]
            for a in range(90, 450, 60)
        ]
    )
    off_arm = np.mean(
        [
            image[128 - int(round(radius * math.sin(math.radians(a)))), 128 + int(round(radius * math.cos(math.radians(a))))]
            for a in range(120, 480, 60)
        ]
    )
    assert on_arm > 1.5 * off_arm  # arms stand out of the scatter halo


def test_lehr_has_no_star() -> None:
    point = np.zeros((256, 256))
    point[128, 128] = 1.0
    image = project([Layer(point, 50.0)], TC99M_LEHR, 1.0)
    assert image[88, 128] == pytest.approx(image[128, 88], rel=1e-6)


def test_ellipsoid_projection_has_the_volume_of_the_ellipsoid() -> None:
    grid = Grid(200, 0.5, 100.0, 100.0)
    footprint = ellipsoid(grid, 0.0, 0.0, 8.0, 20.0, 7.0, angle_deg=17.0)
    volume = footprint.thickness.sum() * grid.pixel_mm**2
    assert volume == pytest.approx(4 / 3 * math.pi * 8 * 20 * 7, rel=0.01)


def _ring(mask: np.ndarray, inner_px: int, outer_px: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=outer_px) & ~ndimage.binary_dilation(mask, iterations=inner_px)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thyroid_mask_sits_where_the_thyroid_activity_is(seed: int) -> None:
    case = simulate("diffusely_increased", seed)
    expected = case.expected
    thyroid = case.masks["thyroid"]
    inside = expected[thyroid].mean()
    ring = _ring(thyroid, 8, 14) & ~case.masks["salivary_glands"]
    assert inside > 4 * expected[ring].mean()
    hottest = np.unravel_index(np.argmax(expected), expected.shape)
    assert ndimage.binary_dilation(thyroid, iterations=2)[hottest]
    rows, cols = np.nonzero(thyroid)
    r0, r1, c0, c1 = rows.min() - 10, rows.max() + 10, cols.min() - 10, cols.max() + 10
    window = expected[r0:r1, c0:c1] - np.median(expected[r0:r1, c0:c1])
    weights = np.clip(window, 0, None)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    centroid = np.array([(rr * weights).sum(), (cc * weights).sum()]) / weights.sum()
    assert np.linalg.norm(centroid - [rows.mean(), cols.mean()]) * case.pixel_mm < 3.0


def test_salivary_masks_sit_where_the_salivary_activity_is() -> None:
    case = simulate("diffusely_decreased", 4)
    for name in ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left"):
        mask = case.masks[name]
        assert mask.sum() > 20
        ring = _ring(mask, 6, 10) & ~case.masks["salivary_glands"] & ~case.masks["oral_cavity"]
        assert case.expected[mask].mean() > 1.3 * case.expected[ring].mean(), name


def test_patient_right_is_on_the_image_left() -> None:
    case = simulate("diffusely_increased", 5)
    right_cols = np.nonzero(case.masks["thyroid_right"])[1]
    left_cols = np.nonzero(case.masks["thyroid_left"])[1]
    assert right_cols.mean() < left_cols.mean()
    parotid_rows = np.nonzero(case.masks["parotid_right"])[0]
    assert parotid_rows.mean() < np.nonzero(case.masks["thyroid"])[0].mean()  # head at the top


def test_syringes_hold_the_injected_activity_and_give_an_attenuated_uptake() -> None:
    center = CENTERS["siemens"]
    case = simulate("diffusely_increased", 6, "siemens")
    injected = case.metadata["injected_mbq"]
    syringes = simulate_syringes(np.random.default_rng(0), center, injected)
    camera = center.camera
    full, empty = syringes["full"], syringes["empty"]
    at_injection = full.activity_mbq * camera.decay_factor(-full.minutes_from_injection) - empty.activity_mbq / camera.decay_factor(
        empty.minutes_from_injection
    )
    assert at_injection == pytest.approx(injected, rel=1e-9)
    rate = full.counts.sum() / full.duration_s
    assert rate == pytest.approx(full.activity_mbq * camera.sensitivity_cps_per_mbq, rel=0.05)
    region = ndimage.binary_dilation(case.masks["thyroid"], iterations=12)
    background = np.median(case.expected[_ring(region, 2, 8)])
    net = float((case.expected[region] - background).sum())
    measured = measured_uptake_percent(net, case.frame_duration_s, case.metadata["minutes_post_injection"], syringes, camera.half_life_h)
    attenuation = math.exp(-camera.mu_per_mm * case.metadata["thyroid_depth_mm"])
    assert measured / case.metadata["true_uptake_percent"] == pytest.approx(attenuation, rel=0.15)


def test_iodine_131_camera_has_the_high_energy_collimator() -> None:
    """The 131I camera a task plugin's centre uses (the remnant plugin registers that centre)."""
    center = CenterProfile(name="i131", matrix=256, pixel_mm=2.4, count_preset=150_000, camera=I131_HE)
    assert center.camera.radionuclide == "I-131" and center.camera.photopeak_kev == 364.5
    assert center.camera.septal_penetration > 0
    assert center.fine_pixel_mm <= 1.25
    assert "remnant" not in CENTERS  # the core ships no task plugin's centre


@pytest.mark.parametrize("within_gland", [False, True])
def test_a_hot_nodule_bulges_out_of_the_gland_unless_within_it(within_gland: bool) -> None:
    grid = Grid(240, 0.5, 120.0, 120.0)
    plain = sample_thyroid_shape(np.random.default_rng(3))
    lobe = plain.lobe("right")
    shape = dataclasses.replace(plain, nodules=(Nodule(lobe.cx + 0.6 * lobe.half_width, lobe.cy, 9.0, 4.0, within_gland),))
    gland = draw_thyroid(grid, plain, np.random.default_rng(0), texture_sigma=0.0).density > 0
    density = draw_thyroid(grid, shape, np.random.default_rng(0), texture_sigma=0.0).density
    assert (density[~gland].sum() > 0) != within_gland  # a bulging nodule lights up tissue outside the lobe
    assert density[gland].max() > 2 * np.median(density[gland])  # either way a hot spot
