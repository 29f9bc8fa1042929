"""Classical segmentation, quantities and uptake on scans whose truth is known.

Synthetic scans are drawn here with lobes, isthmus, salivary glands and a nodule where we
put them; the real Siemens scan is used when ../shared/reference-scans is present.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from scintipipe.segment import ROI_NAMES, SyringeCount, decay_factor, quantify, segment_neck, thyroid_uptake_percent
from scintipipe.segment.uptake import read_syringe_dicom

SPACING = (2.0, 2.0)
SHAPE = (128, 128)


def ellipse(centre_rc: tuple[float, float], half_axes_rc: tuple[float, float]) -> np.ndarray:
    rows, cols = np.indices(SHAPE)
    return ((rows - centre_rc[0]) / half_axes_rc[0]) ** 2 + ((cols - centre_rc[1]) / half_axes_rc[1]) ** 2 <= 1


def neck_phantom(
    right_level: float = 40.0, left_level: float = 60.0, nodule: bool = False, seed: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """Counts of an anterior neck view (2 mm pixels) with known lobes; returns the counts,
    the true masks and the background level in counts per pixel."""
    background = 3.0
    truth = {
        "thyroid_right": ellipse((80, 54), (13, 5)),  # image left = patient's right
        "thyroid_left": ellipse((80, 74), (13, 5)),
        "isthmus": ellipse((90, 64), (3, 6)),
        "salivary_right": ellipse((35, 38), (8, 5)),
        "salivary_left": ellipse((35, 90), (8, 5)),
        "nodule": ellipse((78, 74), (4, 4)),
    }
    activity = np.full(SHAPE, background)
    body = np.abs(np.indices(SHAPE)[1] - 64) < 45
    activity[~body] = 0.3
    activity[truth["salivary_right"] | truth["salivary_left"]] += 25.0
    activity[truth["isthmus"]] += 0.7 * right_level
    activity[truth["thyroid_right"]] += right_level
    activity[truth["thyroid_left"]] += left_level
    if nodule:
        activity[truth["nodule"]] += 5 * left_level
    expected = ndimage.gaussian_filter(activity, 1.5)
    return np.random.default_rng(seed).poisson(expected).astype(np.float32), truth, background


def centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(np.nonzero(mask)).mean(axis=1)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_lobes_isthmus_salivary_and_background_are_where_they_were_put() -> None:
    counts, truth, _ = neck_phantom()
    rois = segment_neck(counts, SPACING)
    assert set(rois) == set(ROI_NAMES)
    for side in ("thyroid_right", "thyroid_left"):
        assert np.abs(centroid(rois[side]) - centroid(truth[side])).max() < 3, side
        assert dice(rois[side], truth[side] | (truth["isthmus"] & (rois[side]))) > 0.7, side
    gland = rois["thyroid_right"] | rois["thyroid_left"] | rois["isthmus"]
    whole = truth["thyroid_right"] | truth["thyroid_left"] | truth["isthmus"]
    assert dice(gland, whole) > 0.8
    assert rois["isthmus"].any() and abs(centroid(rois["isthmus"])[1] - 64) <= 4
    assert centroid(rois["salivary_right"])[1] < 64 < centroid(rois["salivary_left"])[1]
    assert dice(rois["salivary_right"] | rois["salivary_left"], truth["salivary_right"] | truth["salivary_left"]) > 0.6
    assert rois["background"].any() and not (rois["background"] & whole).any()
    assert not rois["nodules_hot"].any()


def test_ratios_and_areas_are_close_to_the_truth() -> None:
    counts, truth, background = neck_phantom(right_level=40.0, left_level=60.0)
    rois = segment_neck(counts, SPACING)
    q = quantify(counts, rois, SPACING)
    assert q["left_right_ratio"] == pytest.approx(1.5, rel=0.15)
    assert q["background_counts_per_pixel"] == pytest.approx(background, rel=0.25)
    true_area = (truth["thyroid_right"] | truth["thyroid_left"] | truth["isthmus"]).sum() * 4.0
    # camera blur spreads small lobes: the outline at 40 % of the gland's level is wider
    assert true_area < q["thyroid_area_mm2"] < 1.5 * true_area
    assert q["thyroid_right_area_mm2"] + q["thyroid_left_area_mm2"] + q["isthmus_area_mm2"] == pytest.approx(q["thyroid_area_mm2"])
    true_net = (
        40.0 * truth["thyroid_right"].sum()
        + 60.0 * truth["thyroid_left"].sum()
        + 28.0 * (truth["isthmus"] & ~truth["thyroid_right"] & ~truth["thyroid_left"]).sum()
    )
    assert q["thyroid_net_counts"] == pytest.approx(true_net, rel=0.15)
    assert q["thyroid_to_background_ratio"] > 5 and q["thyroid_to_salivary_ratio"] > 1


def test_a_hot_nodule_is_found_in_its_lobe() -> None:
    counts, truth, _ = neck_phantom(nodule=True, seed=3)
    rois = segment_neck(counts, SPACING)
    assert rois["nodules_hot"].any()
    assert np.abs(centroid(rois["nodules_hot"]) - centroid(truth["nodule"])).max() < 3
    assert (rois["nodules_hot"] & rois["thyroid_left"]).sum() == rois["nodules_hot"].sum()
    assert quantify(counts, rois, SPACING)["hot_nodules"] == 1


def test_simulated_scans_match_the_simulator_masks() -> None:
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR

    case = UPTAKE4_SIMULATOR(np.random.default_rng(11), CENTERS["b"], "diffusely_increased")
    rois = segment_neck(case.counts, (case.pixel_mm, case.pixel_mm))
    ours = rois["thyroid_right"] | rois["thyroid_left"] | rois["isthmus"]
    assert dice(ours, case.masks["thyroid"]) > 0.75
    assert dice(rois["thyroid_right"], case.masks["thyroid_right"]) > 0.6


def test_decay_factor_uses_the_tc99m_half_life() -> None:
    assert decay_factor(6.0067 * 3600) == pytest.approx(0.5)
    assert decay_factor(-6.0067 * 3600) == pytest.approx(2.0)


def test_uptake_against_a_known_truth_with_decay_correction() -> None:
    # 100 MBq in the syringe at t=0 (10,000 counts/s); injected at t=5 min leaving 3 MBq
    # behind; the thyroid holds 2 % of what was injected, imaged 30 min after the injection.
    lam = math.log(2) / (6.0067 * 3600)
    sensitivity = 100.0  # counts/s per MBq, same geometry for syringe and thyroid
    injection, scan = 300.0, 300.0 + 1800.0
    empty_time = injection + 120.0
    empty = SyringeCount(counts=3.0 * math.exp(-lam * (empty_time - injection)) * sensitivity * 60, duration_s=60, time_s=empty_time)
    injected_at_injection = 100.0 * math.exp(-lam * injection) - 3.0
    thyroid_mbq_at_scan = 0.02 * injected_at_injection * math.exp(-lam * (scan - injection))
    thyroid_counts = thyroid_mbq_at_scan * sensitivity * 300  # 300 s acquisition
    full = SyringeCount(counts=100.0 * sensitivity * 60, duration_s=60, time_s=0.0)  # 100 MBq at t=0
    truth = 2.0
    measured = thyroid_uptake_percent(thyroid_counts, 300, scan, full, empty)
    assert measured == pytest.approx(truth, rel=1e-6)
    # without decay correction the figure would be ~6 % low: the correction matters
    naive = 100.0 * (thyroid_counts / 300) / (full.rate - empty.rate)
    assert abs(naive - truth) / truth > 0.05
    # without the empty syringe the residual counts as injected: the uptake comes out low
    assert thyroid_uptake_percent(thyroid_counts, 300, scan, full) < measured


def test_uptake_refuses_an_empty_syringe_hotter_than_the_full_one() -> None:
    with pytest.raises(ValueError, match="net count rate"):
        thyroid_uptake_percent(1000, 100, 0, SyringeCount(10, 1, 0), SyringeCount(20, 1, 0))


@pytest.mark.reference
def test_real_siemens_thyroid_and_syringe(reference_scans) -> None:
    import pydicom

    from scintipipe.segment.uptake import dicom_start_seconds

    folder = reference_scans / "siemens-thyroid"
    syringe = read_syringe_dicom(folder / "syringe_full_99mTc_2frames_deid.dcm", "ANT")
    assert syringe.view == "ANT" and syringe.counts == 620150 and syringe.duration_s == pytest.approx(60.0, abs=0.01)
    ds = pydicom.dcmread(folder / "thyroid_99mTc_ANT_deid.dcm")
    counts = ds.pixel_array.astype(np.float32)
    spacing = tuple(float(v) for v in ds.PixelSpacing)
    rois = segment_neck(counts, spacing)
    q = quantify(counts, rois, spacing)
    # two separate lobes of about 40 x 20 mm each, side by side
    for side in ("thyroid_right", "thyroid_left"):
        assert 400 < q[f"{side}_area_mm2"] < 1500
    assert centroid(rois["thyroid_right"])[1] < centroid(rois["thyroid_left"])[1]
    start = dicom_start_seconds(ds)
    assert (start - syringe.time_s) / 60 == pytest.approx(32.3, abs=0.1)
    uptake = thyroid_uptake_percent(q["thyroid_net_counts"], ds.ActualFrameDuration / 1000, start, syringe)
    assert 1.0 < uptake < 3.0  # README: about 1.7 % (no empty syringe)


def test_segmentation_is_repeatable_whatever_ran_before() -> None:
    """GrabCut's random initialisation is seeded: the same scan gives the same regions."""
    import cv2

    from scintipipe.segment.classical import segment_neck

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:128, :128]
    lam = 3 + 60 * np.exp(-(((yy - 70) / 12) ** 2 + ((xx - 52) / 6) ** 2)) + 60 * np.exp(-(((yy - 70) / 12) ** 2 + ((xx - 76) / 6) ** 2))
    counts = rng.poisson(lam).astype(np.float32)
    first = segment_neck(counts, (2.2, 2.2))
    cv2.setRNGSeed(987)  # disturb OpenCV's generator as another call would
    cv2.randu(np.zeros((10, 10), np.float32), 0, 1)
    second = segment_neck(counts, (2.2, 2.2))
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name
