"""`scintipipe run` end to end on simulated DICOM: report.json, report.html (checked in a
real headless Chromium), index.html, the DICOM SR (validated with highdicom) and the
Secondary Capture, the PDF, and the syringe uptake against the simulator's truth.

The bundle is the shape-only test bundle (random weights): these tests check what the
reports contain and that they are valid, never what the classes say.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image

from scintipipe.cli import cli
from scintipipe.report.chromium import find_chromium, run_headless

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated centre-b DICOM scans (diffusely increased) with syringe images."""
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset

    out = tmp_path_factory.mktemp("simulated")
    write_dataset("uptake4", UPTAKE4_SIMULATOR, UPTAKE4_SIMULATOR.labels, CENTERS["b"], out, 2, 5, {"diffusely_increased": 1.0}, syringes=True)
    return out


@pytest.fixture(scope="module")
def truth(simulated: Path) -> dict[str, dict[str, str]]:
    with (simulated / "truth.csv").open() as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def results(simulated: Path, truth: dict[str, dict[str, str]], tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run over both scans with case 0's syringes, Grad-CAM++ and an extra class."""
    out = tmp_path_factory.mktemp("results")
    first = truth["case-00000.dcm"]
    args = [
        "run",
        "--bundle",
        str(tiny_bundle),
        str(simulated / "case-00000.dcm"),
        str(simulated / "case-00001.dcm"),
        "--out",
        str(out),
        "--explain-method",
        "gradcampp",
        "--explain-class",
        "heterogeneous",
        "--syringe-full",
        str(simulated / first["syringe_full"]),
        "--syringe-empty",
        str(simulated / first["syringe_empty"]),
    ]
    if find_chromium() is not None:
        args.append("--pdf")
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_report_json_has_rois_quantities_and_input_uids(results: Path, simulated: Path) -> None:
    report = json.loads((results / "case-00000" / "report.json").read_text())
    source = pydicom.dcmread(simulated / "case-00000.dcm", stop_before_pixels=True)
    assert report["input_uids"] == {
        "study_instance_uid": source.StudyInstanceUID,
        "series_instance_uid": source.SeriesInstanceUID,
        "sop_instance_uid": source.SOPInstanceUID,
    }
    assert report["prediction"]["label"] in LABELS and report["model"]["name"] == "tiny"
    assert {"thyroid_right", "thyroid_left", "isthmus", "salivary_right", "salivary_left", "background"} <= set(report["rois"])
    assert report["rois"]["thyroid_right"]["pixels"] > 0 and report["rois"]["thyroid_right"]["area_mm2"] > 100
    quantities = report["quantities"]
    for key in (
        "thyroid_right_counts",
        "thyroid_left_area_mm2",
        "left_right_ratio",
        "thyroid_to_background_ratio",
        "thyroid_to_salivary_ratio",
        "uptake_percent",
    ):
        assert np.isfinite(quantities[key]), key
    assert report["explanation"]["method"] == "gradcampp"
    assert "heterogeneous" in report["explanation"]["classes"]
    assert "Not for clinical use" in report["notice"]


def test_report_json_has_a_provenance_block_naming_the_plugins_that_ran(results: Path) -> None:
    from scintipipe import __version__

    provenance = json.loads((results / "case-00000" / "report.json").read_text())["provenance"]
    assert provenance["scintipipe_version"] == __version__
    assert provenance["bundle"]["name"] == "tiny" and provenance["bundle"]["version"]
    plugins = provenance["plugins"]
    assert "scintipipe.builtin.load_dicom" in plugins["load_scans"]
    assert plugins["classify_batch"] == ["scintipipe.builtin.stage_timing", "scintipipe.builtin.classify_bundle"]
    assert "scintipipe.builtin.explain_gradcam" in plugins["explain_batch"]
    assert "scintipipe.builtin.segment_stage" in plugins["segment_scan"]
    reporters = {"scintipipe.builtin.provenance", "scintipipe.builtin.report_json", "scintipipe.builtin.report_html"}
    assert reporters <= set(plugins["report_case"])
    assert provenance["options"]["explain_method"] == "gradcampp" and provenance["options"]["device"] in ("cpu", "cuda")


def test_uptake_against_the_simulator_truth(results: Path, truth: dict[str, dict[str, str]]) -> None:
    measured = json.loads((results / "case-00000" / "report.json").read_text())["quantities"]["uptake_percent"]
    true = float(truth["case-00000.dcm"]["true_uptake_percent"])
    # planar uptake without attenuation correction reads low by the neck's attenuation
    # (about 25-35 % for 2-3 cm of tissue at 140 keV): the simulator's truth is the activity
    assert 0.5 * true < measured < 1.05 * true


def test_html_report_and_index_are_written_with_their_pictures(results: Path) -> None:
    case = results / "case-00000"
    html = (case / "report.html").read_text()
    for picture in ("scan.png", "regions.png", "heatmap_heterogeneous.png"):
        assert (case / picture).is_file() and f'src="{picture}"' in html
    assert "Grad-CAM++" in html and "Not for clinical use" in html and "Model card" in html
    assert "Thyroid uptake" in html and "Left / right lobe" in html
    with Image.open(case / "scan.png") as scan:
        assert scan.size[0] >= 400 and np.asarray(scan).std() > 5
    index = (results / "index.html").read_text()
    assert index.count('href="case-0000') >= 2 and 'src="case-00000/scan.png"' in index


def test_dicom_sr_is_valid_and_filed_with_the_source(results: Path, simulated: Path) -> None:
    from highdicom.sr import ComprehensiveSR

    source = pydicom.dcmread(simulated / "case-00000.dcm", stop_before_pixels=True)
    dataset = pydicom.dcmread(results / "case-00000" / "report_sr.dcm")
    sr = ComprehensiveSR.from_dataset(dataset)
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert dataset.get(keyword) == source.get(keyword), keyword
    evidence = [
        ref.ReferencedSOPInstanceUID
        for study in dataset.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    ]
    assert evidence == [source.SOPInstanceUID]
    (scan_group,) = sr.content.get_image_measurement_groups()
    measurements = {m.name.meaning: m.value for m in scan_group.get_measurements()}
    assert {f"Probability of {label.replace('_', ' ')}" for label in LABELS} <= set(measurements)
    assert sum(measurements[f"Probability of {label.replace('_', ' ')}"] for label in LABELS) == pytest.approx(100.0, abs=0.01)
    assert "Thyroid uptake of injected 99mTc activity" in measurements
    report = json.loads((results / "case-00000" / "report.json").read_text())
    (pattern,) = scan_group.get_qualitative_evaluations()
    assert pattern.value.meaning == report["prediction"]["label"].replace("_", " ")
    regions = {str(group.tracking_identifier): group for group in sr.content.get_planar_roi_measurement_groups()}
    assert {"thyroid_right", "thyroid_left"} <= set(regions)
    right = regions["thyroid_right"]
    assert right.finding_type.value == "29565003"  # SNOMED CT right lobe of thyroid
    region_source = right.roi.ContentSequence[0].ReferencedSOPSequence[0]
    assert region_source.ReferencedSOPInstanceUID == source.SOPInstanceUID
    outline = right.roi.value
    assert outline.shape[1] == 2 and np.array_equal(outline[0], outline[-1])  # closed (column, row) polyline
    assert {m.name.meaning for m in right.get_measurements()} == {"Total counts in region", "Area"}


def test_secondary_capture_reads_back_with_patient_study_and_source(results: Path, simulated: Path) -> None:
    source = pydicom.dcmread(simulated / "case-00000.dcm", stop_before_pixels=True)
    capture = pydicom.dcmread(results / "case-00000" / "overlay_sc.dcm")
    assert capture.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert (capture.PatientID, capture.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    assert capture.SeriesInstanceUID != source.SeriesInstanceUID
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    pixels = capture.pixel_array
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.shape[1] > pixels.shape[0]
    assert pixels.std() > 5 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


@needs_chromium
def test_pdf_is_printed(results: Path) -> None:
    pdf = (results / "case-00000" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


@needs_chromium
def test_html_renders_its_images_in_chromium(results: Path, tmp_path: Path) -> None:
    case = results / "case-00000"
    probe = case / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => {"
        "const images = [...document.images];"
        "document.body.dataset.images = images.length;"
        "document.body.dataset.loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;"
        "});</script></body>"
    )
    probe.write_text((case / "report.html").read_text().replace("</body>", script))
    dom = run_headless(probe, "--dump-dom", "--virtual-time-budget=5000").stdout
    images, loaded = int(re.search(r'data-images="(\d+)"', dom).group(1)), int(re.search(r'data-loaded="(\d+)"', dom).group(1))
    html_images = (case / "report.html").read_text().count("<img ")
    assert images == html_images >= 3 and loaded == images  # scan, regions, one heatmap per class explained
    screenshot = tmp_path / "report.png"
    run_headless(case / "report.html", f"--screenshot={screenshot}", "--window-size=1280,1600", "--virtual-time-budget=5000")
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    assert pixels.std() > 20  # not a blank page
    dark = (pixels.sum(axis=2) < 60).mean()
    assert dark > 0.05  # the black picture panels are drawn
    notice_red = ((abs(pixels[..., 0] - 176) < 20) & (pixels[..., 1] < 30) & (pixels[..., 2] < 50)).mean()
    assert notice_red > 0.005  # the not-for-clinical-use banner


def test_non_dicom_source_gets_reports_but_no_dicom(tiny_bundle: Path, tmp_path: Path) -> None:
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR

    case = UPTAKE4_SIMULATOR(np.random.default_rng(3), CENTERS["b"], "diffusely_increased")
    export = tmp_path / "export.png"
    Image.fromarray(np.clip(case.counts * (255.0 / case.counts.max()), 0, 255).astype(np.uint8)).save(export)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), str(export), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = out / "export"
    assert (folder / "report.html").is_file() and (folder / "report.json").is_file()
    assert not (folder / "report_sr.dcm").exists() and "not DICOM" in (folder / "dicom_skipped.txt").read_text()
    assert "report_sr.dcm" not in (folder / "report.html").read_text()
    notes = json.loads((folder / "report.json").read_text())["notes"]
    assert any("display image" in note for note in notes)


def test_report_options_are_checked_before_the_run(tiny_bundle: Path, simulated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = str(simulated / "case-00000.dcm")
    empty = str(simulated / "syringes" / "case-00000_empty.dcm")
    result = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), scan, "--syringe-empty", empty])
    assert result.exit_code == 2 and "--syringe-empty needs --syringe-full" in result.output
    monkeypatch.setattr("scintipipe.report.chromium.find_chromium", lambda: None)
    result = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), scan, "--pdf"])
    assert result.exit_code == 2 and "apt-get install -y chromium" in result.output
    result = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), scan, "--explain-method", "lime"])
    assert result.exit_code == 2


#: for every legend item: is its swatch on the same line as its name? (Range over the text node)
LEGEND_PROBE = (
    "<script>window.addEventListener('load', () => {"
    "const items = [...document.querySelectorAll('.legend-item')];"
    "const apart = items.filter(item => {"
    "  const swatch = item.querySelector('.swatch').getBoundingClientRect();"
    "  const range = document.createRange(); range.selectNodeContents(item.lastChild);"
    "  const rects = [...range.getClientRects()];"
    "  return rects.length !== 1 || Math.abs((rects[0].top + rects[0].bottom) / 2 - (swatch.top + swatch.bottom) / 2) > 8;"
    "});"
    "document.body.dataset.items = items.length; document.body.dataset.apart = apart.length;"
    "document.body.dataset.names = [...document.querySelectorAll('td')].map(td => td.textContent).join('|');"
    "document.body.dataset.overflow = document.documentElement.scrollWidth > window.innerWidth ? 1 : 0;"
    "});</script></body>"
)


@needs_chromium
@pytest.mark.parametrize("width", [1400, 800])
def test_report_layout_at_desktop_and_narrow_widths(results: Path, tmp_path: Path, width: int) -> None:
    """No legend swatch wraps away from its name, no sideways scrolling, labels in words;
    screenshots at 1400 and 800 px are kept beside the test's temporary files."""
    case = results / "case-00000"
    probe = case / f"layout-{width}.html"
    probe.write_text((case / "report.html").read_text().replace("</body>", LEGEND_PROBE))
    dom = run_headless(probe, "--dump-dom", f"--window-size={width},1600", "--virtual-time-budget=5000").stdout
    items, apart = (int(re.search(rf'data-{key}="(\d+)"', dom).group(1)) for key in ("items", "apart"))
    assert items >= 2 and apart == 0
    assert re.search(r'data-overflow="0"', dom)
    names = re.search(r'data-names="([^"]*)"', dom).group(1)
    assert "focal increased" in names and "focal_increased" not in names
    screenshot = tmp_path / f"report-{width}.png"
    run_headless(case / "report.html", f"--screenshot={screenshot}", f"--window-size={width},1600", "--virtual-time-budget=5000")
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    top = pixels[: pixels.shape[0] // 2]
    # the three pictures share one row at both widths: the black panels span most of the width
    dark_columns = ((top.sum(axis=2) < 60).mean(axis=0) > 0.2).mean()
    assert dark_columns > 0.6, f"pictures cover {dark_columns:.0%} of the width at {width} px"
