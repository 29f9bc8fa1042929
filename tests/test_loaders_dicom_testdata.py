"""DICOM loader on files nobody here wrote: pydicom's test data."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from loader_fixtures import luminance, pixels
from scintipipe.errors import NotAnImage, ScanError
from scintipipe.loaders import read_scans
from scintipipe.loaders.dicom import load_dicom


def pydicom_file(name: str):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available")
    return path


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_lossy_jpeg_nm_with_a_broken_scan_header_decodes_like_its_fixed_copy():
    # JPEG-lossy.dcm (NEMA WG04 NM1_JPLY) has Se=0 in its scan header; JPGExtended.dcm is
    # the same file with that one byte corrected. Every decoder refuses the original.
    [broken] = load_dicom(pydicom_file("JPEG-lossy.dcm"))
    [fixed] = load_dicom(pydicom_file("JPGExtended.dcm"))
    assert tuple(broken["image"].shape) == (1, 1024, 256)
    np.testing.assert_array_equal(pixels(broken), pixels(fixed))
    reference = pydicom.dcmread(pydicom_file("JPGExtended.dcm")).pixel_array
    np.testing.assert_array_equal(pixels(fixed), reference)
    meta = broken["image"].meta
    assert meta["modality"] == "NM"
    assert meta["is_counts"] is False  # a Secondary Capture export, not NM Image Storage


def test_jpeg2000_nm_export_decodes():
    [scan] = load_dicom(pydicom_file("JPEG2000.dcm"))
    assert tuple(scan["image"].shape) == (1, 1024, 256)
    assert pixels(scan).max() > pixels(scan).min()


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"]
)
def test_compressed_and_other_encodings_equal_the_uncompressed_file(name):
    [plain] = load_dicom(pydicom_file("MR_small.dcm"))
    [other] = load_dicom(pydicom_file(name))
    np.testing.assert_array_equal(pixels(other), pixels(plain))


def test_rgb_secondary_capture_becomes_luminance():
    path = pydicom_file("SC_rgb_rle.dcm")
    rgb = pydicom.dcmread(path).pixel_array
    [scan] = load_dicom(path)
    assert scan["image"].meta["is_counts"] is False
    assert scan["image"].meta["modality"] == "OT"
    np.testing.assert_allclose(pixels(scan), luminance(rgb), atol=1e-3)


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_gdcm_KY.dcm", "SC_rgb_jls_lossy_line.dcm"])
def test_compressed_colour_exports_load_as_grey(name):
    [scan] = load_dicom(pydicom_file(name))
    assert tuple(scan["image"].shape) == (1, 100, 100)
    assert scan["image"].meta["is_counts"] is False


def test_two_frame_colour_export_gives_numbered_frames():
    path = pydicom_file("SC_rgb_rle_2frame.dcm")
    scans = load_dicom(path)
    assert [s["source"] for s in scans] == [f"{path}#frame1", f"{path}#frame2"]


def test_dicom_tiff_dual_personality_file_is_read_as_dicom():
    path = pydicom_file("CT_small.dcm")
    assert open(path, "rb").read(4) == b"II*\x00"
    [scan] = read_scans(path)
    assert scan["image"].meta["modality"] == "CT"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("DICOMDIR", "DICOMDIR"),
        ("DICOMDIR-empty.dcm", "DICOMDIR"),
        ("reportsi.dcm", "structured report"),
        ("test-SR.dcm", "structured report"),
        ("rtplan.dcm", "radiotherapy"),
        ("rtstruct.dcm", "radiotherapy"),
        ("rtdose.dcm", "radiotherapy"),
        ("waveform_ecg.dcm", "waveform"),
        ("liver_1frame.dcm", "segmentation"),
    ],
)
def test_dicom_objects_that_are_not_images(name, reason):
    path = pydicom_file(name)
    with pytest.raises(NotAnImage, match=reason) as caught:
        read_scans(path)
    assert caught.value.source == str(path)


def test_truncated_pixel_data_is_a_scan_error_not_a_skip():
    path = pydicom_file("MR_truncated.dcm")
    with pytest.raises(ScanError, match="truncated or corrupt") as caught:
        load_dicom(path)
    assert not isinstance(caught.value, NotAnImage)
    assert caught.value.source == str(path)


def test_corrupt_jpeg2000_codestream_is_a_scan_error():
    with pytest.raises(ScanError, match="cannot be decoded"):
        load_dicom(pydicom_file("JPEG2000-embedded-sequence-delimiter.dcm"))
