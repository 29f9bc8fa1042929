"""The real Siemens thyroid scans in ../shared/reference-scans load correctly."""

from __future__ import annotations

import numpy as np
import pytest

from loader_fixtures import siemens_scan
from scintipipe.loaders import read_scans

pytestmark = pytest.mark.reference


def test_siemens_thyroid_anterior():
    path = siemens_scan("thyroid_99mTc_ANT_deid.dcm")
    [scan] = read_scans(path)
    image = scan["image"]
    meta = image.meta
    assert scan["source"] == str(path)
    assert tuple(image.shape) == (1, 256, 256)
    assert meta["spacing"] == pytest.approx((1.1988, 1.1988), abs=1e-4)
    assert meta["total_counts"] == 199_862
    assert float(image.max()) == 86
    assert meta["modality"] == "NM"
    assert meta["radionuclide"] == "Tc-99m"
    assert meta["view"] == "anterior"
    assert meta["frame_duration_s"] == pytest.approx(167.961)
    assert meta["acquisition_datetime"] == "15:34:36.585000"  # de-identified: no dates left
    assert meta["is_counts"] is True
    assert meta["zoom"] == [2.0, 2.0]
    assert meta["acquisition_termination"] == "CNTS"


def test_siemens_two_frame_syringe_is_split_into_views():
    path = siemens_scan("syringe_full_99mTc_2frames_deid.dcm")
    scans = read_scans(path)
    assert [s["source"] for s in scans] == [f"{path}#anterior", f"{path}#posterior"]
    assert [s["image"].meta["total_counts"] for s in scans] == [620_150, 399_083]
    for scan in scans:
        meta = scan["image"].meta
        assert meta["frame_duration_s"] == pytest.approx(60.002)
        assert meta["radionuclide"] == "Tc-99m"
        assert meta["series_description"] == "SERINGUE PLEINE"
        assert meta["acquisition_datetime"] == "15:02:16.140000"


def test_siemens_display_png_is_an_export():
    path = siemens_scan("thyroid_99mTc_ANT_deid.png")
    [scan] = read_scans(path)
    assert scan["image"].meta["is_counts"] is False
    assert scan["image"].meta["spacing"] is None
    assert np.ptp(scan["image"][0].numpy()) > 0
