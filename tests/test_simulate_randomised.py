"""The ``randomised`` centre: domain randomisation of the acquisition, independent of class."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset
from scintipipe.simulate.acquisition import COUNT_RANGE, MATRIX_WEIGHTS, draw_acquisition, flood_field
from scintipipe.simulate.camera import TC99M_LEAP, TC99M_LEHR, TC99M_PINHOLE, Layer, project
from scintipipe.simulate.centers import FINE_GRID_MAX_MM

RANDOMISED = CENTERS["randomised"]


@pytest.fixture(scope="module")
def drawn() -> list:
    return [RANDOMISED.draw(np.random.default_rng(seed)) for seed in range(600)]


def test_fixed_centres_draw_themselves_without_using_the_generator() -> None:
    from scintipipe.simulate.centers import get_center

    for name in ("a", "b", "siemens", "remnant"):  # remnant: the remnant plugin's centre
        center = get_center(name)
        rng = np.random.default_rng(0)
        assert center.draw(rng) is center
        assert rng.random() == np.random.default_rng(0).random()


def test_randomised_centre_covers_its_ranges(drawn) -> None:
    matrices = [p.matrix for p in drawn]
    assert set(matrices) == set(MATRIX_WEIGHTS)
    assert matrices.count(1024) < 0.08 * len(drawn) and matrices.count(128) + matrices.count(256) > 0.6 * len(drawn)
    counts = np.array([p.count_preset for p in drawn])
    assert COUNT_RANGE[0] <= counts.min() < 45_000 and 1_300_000 < counts.max() <= COUNT_RANGE[1]
    assert 0.3 < np.mean(np.log(counts) < math.log(math.sqrt(COUNT_RANGE[0] * COUNT_RANGE[1]))) < 0.7  # log-uniform
    fov = np.array([p.fov_mm for p in drawn])
    assert fov.min() >= 150 and fov.max() <= 450 and fov.min() < 160 and fov.max() > 440
    assert all(p.fine_pixel_mm <= FINE_GRID_MAX_MM for p in drawn)
    assert {p.camera.collimator_name for p in drawn} == {"LEHR", "LEAP", "PINHOLE"}
    scatter = np.array([p.camera.scatter_fraction for p in drawn])
    assert 0.15 <= scatter.min() < 0.17 and 0.38 < scatter.max() <= 0.40
    assert 0.15 < np.mean([p.motion_mm > 0 for p in drawn]) < 0.35
    assert 0.08 < np.mean([len(p.markers) > 0 for p in drawn]) < 0.22
    uniformity = np.array([p.nonuniformity for p in drawn])
    assert 0.02 <= uniformity.min() and uniformity.max() <= 0.08
    rows = np.array([p.framing_mm[0] for p in drawn])
    assert rows.min() < -20 and rows.max() > 60  # thyroid high or low in the field: head out or in
    for p in drawn:
        assert abs(p.framing_mm[0]) <= max(0.0, p.fov_mm / 2 - 65) + 1e-9
        assert not p.randomise and p.name == "randomised"


def test_pinholes_magnify_and_parallel_holes_zoom(drawn) -> None:
    for p in drawn:
        if p.camera.is_pinhole:
            assert p.camera.collimator == "PINH" and 150 <= p.fov_mm <= 250 and p.zoom == 1.0
        else:
            assert p.camera.collimator == "PARA" and p.zoom >= 1.0


def test_same_seed_same_acquisition_and_case_other_seed_another() -> None:
    first = UPTAKE4_SIMULATOR(np.random.default_rng(5), RANDOMISED, "heterogeneous")
    again = UPTAKE4_SIMULATOR(np.random.default_rng(5), RANDOMISED, "heterogeneous")
    other = UPTAKE4_SIMULATOR(np.random.default_rng(6), RANDOMISED, "heterogeneous")
    assert first.metadata["acquisition"] == again.metadata["acquisition"]
    assert np.array_equal(first.counts, again.counts)
    assert first.metadata["acquisition"] != other.metadata["acquisition"]


def test_acquisition_does_not_depend_on_the_class() -> None:
    for seed in range(4):
        acquisitions = [
            UPTAKE4_SIMULATOR(np.random.default_rng(seed), RANDOMISED, label).metadata["acquisition"] for label in UPTAKE4_SIMULATOR.labels
        ]
        assert all(a == acquisitions[0] for a in acquisitions)


def test_a_randomised_case_is_acquired_with_its_drawn_camera() -> None:
    for seed in range(6):
        rng = np.random.default_rng(seed)
        case = UPTAKE4_SIMULATOR(rng, RANDOMISED, "diffusely_increased")
        profile = case.acquisition_profile
        assert profile == RANDOMISED.draw(np.random.default_rng(seed))
        assert case.counts.shape == (profile.matrix, profile.matrix) and case.pixel_mm == profile.pixel_mm
        assert abs(float(case.expected.sum()) - profile.count_preset) < 1e-3 * profile.count_preset
        assert abs(case.total_counts - profile.count_preset) < 5 * math.sqrt(profile.count_preset) + 1e-4 * profile.count_preset
        assert case.metadata["acquisition"]["matrix"] == profile.matrix
        assert case.masks["thyroid"].any() and "markers" in case.masks


def test_writer_writes_the_drawn_matrix_spacing_and_collimator(tmp_path: Path) -> None:
    out = tmp_path / "randomised"
    write_dataset("uptake4", UPTAKE4_SIMULATOR, UPTAKE4_SIMULATOR.labels, RANDOMISED, out, 6, 11, {label: 1.0 for label in UPTAKE4_SIMULATOR.labels})
    records = [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]
    for record in records:
        acquisition = record["acquisition"]
        ds = pydicom.dcmread(out / record["file"])
        detector = ds.DetectorInformationSequence[0]
        assert (ds.Rows, ds.Columns) == (acquisition["matrix"],) * 2
        assert float(ds.PixelSpacing[0]) == pytest.approx(acquisition["pixel_mm"], rel=1e-4)
        assert detector.CollimatorGridName == acquisition["collimator"] and detector.CollimatorType == acquisition["collimator_type"]
        assert float(detector.ZoomFactor[0]) == pytest.approx(acquisition["zoom"], rel=1e-3)
        assert int(ds.CountsAccumulated) == pytest.approx(acquisition["count_preset"], rel=0.02)
    assert len({r["acquisition"]["matrix"] for r in records} | {r["acquisition"]["collimator"] for r in records}) > 2


def _point_image(camera, distance_mm: float, motion_mm: float = 0.0, angle: float = 0.0) -> np.ndarray:
    point = np.zeros((201, 201))
    point[100, 100] = 1.0
    return project([Layer(point, distance_mm)], replace(camera, scatter_fraction=0.0), 0.5, motion_mm, angle)


def _fwhm_mm(profile: np.ndarray) -> float:
    above = np.nonzero(profile >= 0.5 * profile.max())[0]
    return (above[-1] - above[0] + 1) * 0.5


def test_leap_trades_resolution_for_sensitivity() -> None:
    assert 9.0 <= TC99M_LEAP.fwhm_mm(100.0) <= 10.5 and TC99M_LEAP.fwhm_mm(100.0) > TC99M_LEHR.fwhm_mm(100.0)
    assert TC99M_LEAP.sensitivity_cps_per_mbq > 1.5 * TC99M_LEHR.sensitivity_cps_per_mbq
    assert _point_image(TC99M_LEAP, 100.0).sum() == pytest.approx(_point_image(TC99M_LEHR, 100.0).sum() * 160 / 90, rel=1e-6)


def test_pinhole_sensitivity_and_resolution_depend_on_distance() -> None:
    near, far = _point_image(TC99M_PINHOLE, 80.0), _point_image(TC99M_PINHOLE, 160.0)
    assert near.sum() == pytest.approx(4 * far.sum(), rel=1e-6)  # inverse square
    assert _fwhm_mm(far[100]) > _fwhm_mm(near[100])
    assert 5.0 < TC99M_PINHOLE.fwhm_mm(100.0) < 7.0
    assert _point_image(TC99M_LEHR, 80.0).sum() == pytest.approx(_point_image(TC99M_LEHR, 160.0).sum(), rel=1e-6)


def test_motion_smears_along_its_direction_and_keeps_the_counts() -> None:
    still = _point_image(TC99M_LEHR, 100.0)
    moving = _point_image(TC99M_LEHR, 100.0, motion_mm=8.0, angle=0.0)  # along the rows
    assert moving.sum() == pytest.approx(still.sum(), rel=1e-6)
    assert _fwhm_mm(moving[100]) > _fwhm_mm(still[100]) + 1.5
    assert _fwhm_mm(moving[:, 100]) == pytest.approx(_fwhm_mm(still[:, 100]), abs=0.6)


def test_flood_field_stays_within_its_non_uniformity() -> None:
    profile = draw_acquisition(np.random.default_rng(3), RANDOMISED)
    profile = replace(profile, camera=TC99M_LEHR, nonuniformity=0.05)
    field = flood_field(np.random.default_rng(0), profile, 50.0)
    assert field.shape == (profile.matrix, profile.matrix)
    assert np.abs(field - 1).max() == pytest.approx(0.05, rel=1e-6)
    assert flood_field(np.random.default_rng(0), replace(profile, nonuniformity=0.0), 50.0) is None


def test_markers_are_hot_points_with_their_own_mask() -> None:
    profile = replace(
        draw_acquisition(np.random.default_rng(1), RANDOMISED),
        matrix=128,
        pixel_mm=3.0,
        camera=TC99M_LEHR,
        framing_mm=(0.0, 1.0, 0.0, 1.0),
        markers=(("sternal_notch", 0.5), ("shoulder_left", 0.5)),
    )
    case = UPTAKE4_SIMULATOR(np.random.default_rng(0), profile, "diffusely_decreased")
    assert [m["site"] for m in case.metadata["markers"]] == ["sternal_notch", "shoulder_left"]
    assert case.masks["markers"].sum() >= 2 * 3  # a spot of 6 mm radius on 3 mm pixels each
    assert case.expected[case.masks["markers"]].max() > 5 * np.median(case.expected[case.masks["body"] & ~case.masks["markers"]])
    plain = UPTAKE4_SIMULATOR(np.random.default_rng(0), CENTERS["b"], "diffusely_decreased")
    assert not plain.masks["markers"].any() and plain.metadata["markers"] == []


def test_every_task_gets_the_randomised_centre() -> None:
    from scintipipe.simulate.normal import simulate_normal_case

    case = simulate_normal_case(np.random.default_rng(2), RANDOMISED)
    assert case.acquisition_profile.matrix == case.counts.shape[0]
    assert case.metadata["acquisition"]["center"] == "randomised"


def test_simulate_command_takes_the_randomised_centre(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from scintipipe.cli import cli

    out = tmp_path / "rnd"
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--task",
            "uptake4",
            "--n",
            "4",
            "--seed",
            "2",
            "--center",
            "randomised",
            "--out",
            str(out),
            "--class-mix",
            "balanced",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "simulation.json").read_text())["center"]["name"] == "randomised"
    assert len(list(out.glob("case-*.dcm"))) == 4
