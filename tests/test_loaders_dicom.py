"""DICOM loader on generated NM files: views, rescale, compression, metadata, 3-D data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from dicom_factory import nm_dataset, thyroid_pattern, write_nm_dicom
from loader_fixtures import pixels
from scintipipe.errors import ScanError
from scintipipe.loaders import read_scans
from scintipipe.loaders.dicom import load_dicom


def two_views() -> np.ndarray:
    return np.stack([thyroid_pattern(seed=1, peak=300), thyroid_pattern(seed=2, peak=120)])


def test_single_frame_nm_fills_the_metadata(tmp_path):
    frame = thyroid_pattern(64, 48)
    path = write_nm_dicom(tmp_path / "ant.dcm", frame, spacing=(2.5, 2.0), frame_duration_ms=168_000)
    [scan] = load_dicom(path)
    meta = scan["image"].meta
    assert scan["source"] == str(path)
    assert tuple(scan["image"].shape) == (1, 64, 48)
    np.testing.assert_array_equal(pixels(scan), frame)
    assert meta["spacing"] == (2.5, 2.0)
    assert meta["modality"] == "NM"
    assert meta["radionuclide"] == "Tc-99m"
    assert meta["view"] == "anterior"
    assert meta["frame_duration_s"] == pytest.approx(168.0)
    assert meta["total_counts"] == pytest.approx(float(frame.sum()))
    assert meta["acquisition_datetime"] == "2024-01-02T10:15:00.250000"
    assert meta["is_counts"] is True
    assert meta["patient_id"] == "TEST0001"
    assert meta["energy_window_kev"] == [126.0, 154.0]
    ds = pydicom.dcmread(path)
    assert (meta["study_instance_uid"], meta["series_instance_uid"], meta["sop_instance_uid"]) == (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
    )


def test_two_frames_are_split_by_view(tmp_path):
    frames = two_views()
    path = write_nm_dicom(tmp_path / "pair.dcm", frames, views=("anterior", "posterior"))
    scans = load_dicom(path)
    assert [s["source"] for s in scans] == [f"{path}#anterior", f"{path}#posterior"]
    assert [s["image"].meta["view"] for s in scans] == ["anterior", "posterior"]
    for scan, frame in zip(scans, frames, strict=True):
        np.testing.assert_array_equal(pixels(scan), frame)
        assert scan["image"].meta["total_counts"] == pytest.approx(float(frame.sum()))


def test_detector_vector_maps_frames_to_their_detectors(tmp_path):
    frames = two_views()
    ds = nm_dataset(frames, views=("anterior", "posterior"))
    ds.DetectorVector = [2, 1]  # frame 1 comes from the posterior detector
    path = tmp_path / "swapped.dcm"
    ds.save_as(path, enforce_file_format=True)
    scans = load_dicom(path)
    assert [s["source"].split("#")[1] for s in scans] == ["posterior", "anterior"]
    np.testing.assert_array_equal(pixels(scans[0]), frames[0])


def test_start_angle_names_views_without_view_codes(tmp_path):
    path = write_nm_dicom(tmp_path / "angles.dcm", two_views(), views=(None, None), start_angles=(180, 0))
    assert [s["image"].meta["view"] for s in load_dicom(path)] == ["anterior", "posterior"]


@pytest.mark.parametrize("views", [(None, None), ("anterior", "anterior")])
def test_frames_that_cannot_be_told_apart_are_numbered(tmp_path, views):
    path = write_nm_dicom(tmp_path / "same.dcm", two_views(), views=views)
    assert [s["source"] for s in load_dicom(path)] == [f"{path}#frame1", f"{path}#frame2"]


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    frame = thyroid_pattern()
    path = write_nm_dicom(tmp_path / "rescaled.dcm", frame, rescale=(0.25, 3.0))
    [scan] = load_dicom(path)
    np.testing.assert_allclose(pixels(scan), frame * 0.25 + 3.0)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpeg-ls", "jpeg2000"])
def test_lossless_compression_round_trips(tmp_path, syntax):
    frames = two_views()
    path = write_nm_dicom(tmp_path / "compressed.dcm", frames, views=("anterior", "posterior"), compress=syntax)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    scans = load_dicom(path)
    assert [s["image"].meta["view"] for s in scans] == ["anterior", "posterior"]
    for scan, frame in zip(scans, frames, strict=True):
        np.testing.assert_array_equal(pixels(scan), frame)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"radionuclide_meaning": "Technétium 99m"}, "Tc-99m"),
        ({"radionuclide_meaning": "^123^Iodine"}, "I-123"),
        ({"radionuclide_meaning": None, "energy_window_name": "I131"}, "I-131"),
        ({"radionuclide_meaning": None, "energy_window_kev": (330.0, 400.0)}, "I-131"),
        ({"radionuclide_meaning": None, "energy_window_kev": (143.0, 175.0)}, "I-123"),
        ({"radionuclide_meaning": None, "energy_window_kev": (100.0, 200.0)}, None),
    ],
)
def test_radionuclide_is_normalised(tmp_path, options, expected):
    path = write_nm_dicom(tmp_path / "nuclide.dcm", thyroid_pattern(), **options)
    assert load_dicom(path)[0]["image"].meta["radionuclide"] == expected


def test_acquisition_time_without_date_borrows_the_study_date(tmp_path):
    ds = nm_dataset(thyroid_pattern(), acquisition=None)
    ds.AcquisitionTime = "153436.585"
    path = tmp_path / "time.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert load_dicom(path)[0]["image"].meta["acquisition_datetime"] == "2024-01-02T15:34:36.585000"


def test_imager_pixel_spacing_is_the_fallback(tmp_path):
    ds = nm_dataset(thyroid_pattern(), spacing=None)
    ds.ImagerPixelSpacing = ["3.3", "3.3"]
    path = tmp_path / "imager.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert load_dicom(path)[0]["image"].meta["spacing"] == (3.3, 3.3)


def test_missing_spacing_is_none(tmp_path):
    path = write_nm_dicom(tmp_path / "nospacing.dcm", thyroid_pattern(), spacing=None)
    assert load_dicom(path)[0]["image"].meta["spacing"] is None


@pytest.mark.parametrize("image_type", [("ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"), ("ORIGINAL", "PRIMARY", "TOMO", "EMISSION")])
def test_spect_data_is_refused(tmp_path, image_type):
    path = write_nm_dicom(tmp_path / "spect.dcm", two_views(), views=(None, None), image_type=image_type)
    with pytest.raises(ScanError, match="3-D SPECT volume") as caught:
        load_dicom(path)
    assert str(path) in str(caught.value)


def test_number_of_slices_means_a_volume(tmp_path):
    ds = nm_dataset(two_views(), views=(None, None))
    ds.NumberOfSlices = 2
    path = tmp_path / "slices.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ScanError, match="3-D volume of 2 slices"):
        load_dicom(path)


def test_dicom_without_preamble_is_recognised(tmp_path):
    frame = thyroid_pattern()
    ds = nm_dataset(frame)
    del ds.file_meta
    path = tmp_path / "bare"
    ds.save_as(path, implicit_vr=True, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    [scan] = read_scans(path)
    np.testing.assert_array_equal(pixels(scan), frame)


def test_content_beats_the_extension(tmp_path):
    path = write_nm_dicom(tmp_path / "looks_like.png", thyroid_pattern())
    [scan] = read_scans(path)
    assert scan["image"].meta["modality"] == "NM"


def test_absurd_declared_size_is_refused_before_decoding(tmp_path, monkeypatch):
    ds = nm_dataset(thyroid_pattern())
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 200
    path = tmp_path / "huge.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(
        ScanError,
        match=r"65535x65535 pixels \(4,294,836,225\) exceeds the limit of 16,777,216 pixels per frame; set the environment variable SCINTIPIPE_MAX_PIXELS",
    ):
        load_dicom(path)
    monkeypatch.setenv("SCINTIPIPE_MAX_PIXELS", str(65535 * 65535))  # past the input limits, the decoded-size guard remains
    monkeypatch.setenv("SCINTIPIPE_MAX_FRAMES", "1000")
    with pytest.raises(ScanError, match="absurd for a planar scan"):
        load_dicom(path)


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("FACE ANT", "anterior"),
        ("ANT", "anterior"),
        ("Anterior projection", "anterior"),
        ("POST", "posterior"),
        ("LAO", "left_anterior_oblique"),
        ("Right lateral", "right_lateral"),
        ("SERINGUE PLEINE", None),
        ("Thyroid", None),
    ],
)
def test_view_names_are_normalised(text, view):
    from scintipipe.loaders.views import normalise_view

    assert normalise_view(text) == view


@pytest.mark.parametrize(
    ("angle", "view"), [(180, "anterior"), (0, "posterior"), (355, "posterior"), (90, "left_lateral"), (270, "right_lateral"), (45, None)]
)
def test_start_angle_follows_the_dicom_convention(angle, view):
    from scintipipe.loaders.views import view_from_angle

    assert view_from_angle(angle) == view


def test_monai_load_transform_picks_a_view(tmp_path):
    from scintipipe.transforms.io import LoadScan

    frames = two_views()
    path = write_nm_dicom(tmp_path / "pair.dcm", frames, views=("anterior", "posterior"))
    image = LoadScan(view="posterior")(str(path))
    np.testing.assert_array_equal(image[0].numpy(), frames[1])
    assert image.meta["view"] == "posterior"
