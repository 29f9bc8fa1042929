"""Every DICOM object scintipipe writes passes dciodvfy (dicom3tools) with no errors.

Checked: the simulator's NM images (one view and the remnant plugin's two-view files,
full and empty syringes) and the run's Comprehensive SR and Secondary Capture, from a
simulated source and from the real Siemens study (whose own header is not conformant).
`.ci/run` installs dicom3tools; without it these tests skip with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REAL_STUDY = Path(__file__).resolve().parents[2] / "shared" / "reference-scans" / "siemens-thyroid"

pytestmark = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian package dicom3tools) is not installed")


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy prints for one file."""
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def assert_conformant(paths: list[Path]) -> None:
    assert paths, "no DICOM files were written"
    problems = {str(path): errors for path in paths if (errors := dciodvfy_errors(path))}
    assert not problems, problems


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """uptake4 scans from the randomised centre with syringes, and remnant two-view scans."""
    from scintipipe.testing import run_cli

    root = tmp_path_factory.mktemp("conformance")
    run_cli("simulate", "--task", "uptake4", "--n", "2", "--center", "randomised", "--syringes", "--seed", "5", "--out", root / "uptake4")
    run_cli("simulate", "--task", "remnant", "--center", "remnant", "--n", "1", "--seed", "5", "--out", root / "remnant")
    return root


def test_simulated_nm_images_are_conformant(simulated):
    paths = sorted(simulated.rglob("*.dcm"))
    assert any("syringes" in p.parts for p in paths) and any("remnant" in p.parts for p in paths)
    assert_conformant(paths)


def test_the_runs_sr_and_secondary_capture_are_conformant(simulated, tmp_path):
    from scintipipe.testing import run_cli

    out = tmp_path / "results"
    run_cli("run", "--bundle", "uptake4", "--no-progress", "--out", out, simulated / "uptake4")
    written = sorted(out.rglob("*.dcm"))
    assert {p.name for p in written} == {"report_sr.dcm", "overlay_sc.dcm"}
    assert_conformant(written)


@pytest.mark.skipif(not REAL_STUDY.is_dir(), reason="../shared/reference-scans is not beside the checkout")
def test_outputs_from_a_non_conformant_real_source_are_conformant(tmp_path):
    from scintipipe.testing import run_cli

    source = tmp_path / "study"
    source.mkdir()
    shutil.copy(REAL_STUDY / "thyroid_99mTc_ANT_deid.dcm", source)
    assert dciodvfy_errors(source / "thyroid_99mTc_ANT_deid.dcm"), "the real header was expected to have its own errors"
    out = tmp_path / "results"
    run_cli("run", "--bundle", "uptake4", "--accept-ood", "--no-progress", "--out", out, source)
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 2
    assert_conformant(written)


def test_the_secondary_capture_burns_in_the_class_and_not_for_clinical_use(simulated, tmp_path):
    import pydicom

    from scintipipe.testing import run_cli

    out = tmp_path / "results"
    run_cli("run", "--bundle", "uptake4", "--no-progress", "--out", out, simulated / "uptake4" / "case-00000.dcm")
    sc = pydicom.dcmread(next(out.rglob("overlay_sc.dcm")))
    assert sc.BurnedInAnnotation == "YES" and "NOT FOR CLINICAL USE" in sc.SeriesDescription
    pixels = sc.pixel_array
    # the caption strip under the pictures: dark grey with a red banner line
    caption = pixels[-90:]
    red = (caption[..., 0] > 150) & (caption[..., 1] < 40) & (caption[..., 2] < 60)
    assert red.mean() > 0.05


def test_a_source_without_its_sop_class_still_gets_conformant_results(simulated, tmp_path):
    """A damaged header (SOP Class UID lost, as in the fuzzing) is referred to by its file meta's class."""
    import pydicom

    from scintipipe.testing import run_cli

    source = tmp_path / "scans" / "damaged.dcm"
    source.parent.mkdir()
    ds = pydicom.dcmread(simulated / "uptake4" / "case-00000.dcm")
    del ds.SOPClassUID
    ds.save_as(source, enforce_file_format=True)
    out = tmp_path / "results"
    run_cli("run", "--bundle", "uptake4", "--no-progress", "--out", out, source.parent)
    written = sorted(out.rglob("*.dcm"))
    assert {p.name for p in written} == {"report_sr.dcm", "overlay_sc.dcm"}
    assert_conformant(written)
