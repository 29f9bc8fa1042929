"""What the reports say about the input gate: report.json's gate record, the HTML banner
(case page, index, PDF), the SR's warning and verdict items, the Secondary Capture's strip.

The bundle is the shape-only test bundle (random weights) with a ``configs/gate.json``
whose learned score is a stand-in plugin (the spread of the network input): threshold
``1e6`` lets every view through, ``-1`` none, so ``--accept-ood`` classifies it against
the gate's advice. Only what the reports say about the gate is checked.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from dicom_factory import nm_dataset, thyroid_pattern
from scintipipe import hookimpl
from scintipipe.bundle import Bundle
from scintipipe.pipeline import Pipeline, RunOptions
from scintipipe.plugins import make_plugin_manager
from scintipipe.report.chromium import find_chromium, run_headless

BANNER = "Classified against the input gate's advice (--accept-ood): ood: stand-in score"


class StandInScore:
    @hookimpl
    def gate_batch(self, inputs: Any, bundle: Any, device: str) -> list[dict[str, Any]] | None:
        threshold = bundle.gate.threshold
        scores = inputs.flatten(1).std(1).tolist()
        return [{"ood_score": s, "in_distribution": s <= threshold, "reason": f"stand-in score {s:.3f} above {threshold}"} for s in scores]


def run_gated(tiny: Path, folder: Path, threshold: float, accept_ood: bool, pdf: bool = False) -> Path:
    bundle_dir = shutil.copytree(tiny, folder / "bundle")
    (bundle_dir / "configs" / "gate.json").write_text(
        json.dumps({"ood": {"method": "stand-in", "statistics": "models/ood.pt", "threshold": threshold}})
    )
    scans = folder / "scans"
    scans.mkdir()
    nm_dataset(thyroid_pattern(64, 64, peak=150, seed=4)).save_as(scans / "neck.dcm", enforce_file_format=True)
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(StandInScore(), name="stand-in-score")
    options = RunOptions(batch_size=4, progress=False, accept_ood=accept_ood, plugin_options={"pdf": pdf})
    summary = Pipeline(pm, Bundle(bundle_dir, name="tiny"), options, log=lambda message: None).run([scans / "neck.dcm"], folder / "results")
    assert summary.classified == 1 and not summary.failures, summary.failures
    return folder / "results"


@pytest.fixture(scope="module")
def forced(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A view the learned score refuses, classified with --accept-ood (and --pdf when Chromium is here)."""
    return run_gated(tiny_bundle, tmp_path_factory.mktemp("forced"), -1.0, accept_ood=True, pdf=find_chromium() is not None)


@pytest.fixture(scope="module")
def passed(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same view under a threshold it passes."""
    return run_gated(tiny_bundle, tmp_path_factory.mktemp("passed"), 1e6, accept_ood=False)


def test_report_json_carries_the_gate_record(forced: Path, passed: Path) -> None:
    against = json.loads((forced / "neck" / "report.json").read_text())
    assert against["gate"]["against_advice"] is True and against["gate"]["in_distribution"] is False
    assert against["gate"]["ood_threshold"] == -1.0 and against["gate"]["ood_score"] > 0
    assert against["gate"]["overridden"][0]["layer"] == "ood" and against["warning"].startswith(BANNER)
    plain = json.loads((passed / "neck" / "report.json").read_text())
    assert plain["gate"]["against_advice"] is False and plain["gate"]["in_distribution"] is True and "warning" not in plain


def test_html_banner_appears_only_against_advice(forced: Path, passed: Path) -> None:
    page = html.unescape((forced / "neck" / "report.html").read_text())
    banner = page.index('<div class="warning" role="alert">')
    assert banner < page.index("<header>") and BANNER in page[banner:] and "the label may be meaningless." in page
    assert "Out-of-distribution score" in page and "threshold -1.00" in page and "In distribution</td><td>no" in page
    index = html.unescape((forced / "index.html").read_text())
    assert 'class="against-advice"' in index and "1 of 1 views were classified against the input gate's advice" in index
    plain = html.unescape((passed / "neck" / "report.html").read_text())
    assert 'class="warning"' not in plain and "against the input gate" not in plain
    assert "In distribution</td><td>yes" in plain and "threshold 1000000.00" in plain
    plain_index = (passed / "index.html").read_text()
    assert 'class="warning"' not in plain_index and 'class="against-advice"' not in plain_index


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")
def test_banner_is_drawn_at_the_top_and_printed(forced: Path, tmp_path: Path) -> None:
    assert (forced / "neck" / "report.pdf").read_bytes().startswith(b"%PDF")  # printed from the same page
    screenshot = tmp_path / "page.png"
    run_headless(forced / "neck" / "report.html", f"--screenshot={screenshot}", "--window-size=1000,800", "--virtual-time-budget=5000")
    from PIL import Image

    top = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)[:120]
    banner_fill = (abs(top[..., 0] - 255) < 6) & (abs(top[..., 1] - 240) < 6) & (abs(top[..., 2] - 194) < 8)
    assert banner_fill.mean() > 0.05  # the pale warning box across the top of the page


def test_sr_says_it_was_classified_against_advice_and_stays_valid(forced: Path, passed: Path) -> None:
    from highdicom.sr import ComprehensiveSR

    def root_items(path: Path) -> tuple[pydicom.Dataset, list[pydicom.Dataset]]:
        dataset = pydicom.dcmread(path)
        ComprehensiveSR.from_dataset(dataset)  # highdicom reads it back
        return dataset, list(dataset.ContentSequence)

    dataset, items = root_items(forced / "neck" / "report_sr.dcm")
    (evaluations,) = [item for item in items if item.ConceptNameCodeSequence[0].CodeValue == "C0034375"]
    texts = [item.TextValue for item in evaluations.ContentSequence if item.ValueType == "TEXT"]
    assert len(texts) == 1 and texts[0].startswith(BANNER) and texts[0].endswith("the label may be meaningless.")
    (verdict,) = [item for item in evaluations.ContentSequence if item.ValueType == "CODE"]
    assert verdict.ConceptCodeSequence[0].CodeMeaning == "No"
    assert "GATE OVERRIDDEN" in dataset.SeriesDescription
    sr = ComprehensiveSR.from_dataset(dataset)
    (scan_group,) = sr.content.get_image_measurement_groups()
    measurements = {m.name.meaning: m.value for m in scan_group.get_measurements()}
    assert measurements["Out-of-distribution score"] > 0 and measurements["Out-of-distribution score threshold"] == -1.0

    plain, items = root_items(passed / "neck" / "report_sr.dcm")
    (evaluations,) = [item for item in items if item.ConceptNameCodeSequence[0].CodeValue == "C0034375"]
    assert [item.ValueType for item in evaluations.ContentSequence] == ["CODE"]  # the verdict, no warning
    assert evaluations.ContentSequence[0].ConceptCodeSequence[0].CodeMeaning == "Yes"
    assert "GATE OVERRIDDEN" not in plain.SeriesDescription


def test_secondary_capture_carries_a_warning_strip(forced: Path, passed: Path) -> None:
    against = pydicom.dcmread(forced / "neck" / "overlay_sc.dcm")
    plain = pydicom.dcmread(passed / "neck" / "overlay_sc.dcm")
    assert against.Rows > plain.Rows and against.Columns == plain.Columns
    strip = against.pixel_array[: against.Rows - plain.Rows]
    red = (abs(strip[..., 0].astype(int) - 176) < 10) & (strip[..., 1] < 20)
    assert red.mean() > 0.5 and (strip.min(axis=2) > 200).any()  # red strip with white text
    assert "GATE OVERRIDDEN" in against.SeriesDescription and "GATE OVERRIDDEN" not in plain.SeriesDescription
