"""benchmarks/gate_refusals.py: reading a run back, the generated inputs and the tables (not the full run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gate_refusals", REPO / "benchmarks" / "gate_refusals.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gate_refusals"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_a_run_is_read_back_per_view(bench, tmp_path: Path) -> None:
    inputs = [bench.Input(name, "x", "generated", tmp_path / name) for name in ("ct.dcm", "sc.dcm", "syringe.dcm", "neck.png", "lost.png")]
    out = tmp_path / "run"
    out.mkdir()
    (out / "predictions.csv").write_text(
        f"source,label,confidence,prob_a,prob_b,in_distribution,ood_score\n{tmp_path / 'neck.png'},a,0.9,0.9,0.1,true,12.5\n"
    )
    (out / "errors.csv").write_text(
        "source,stage,error\n"
        f"{tmp_path / 'ct.dcm'},gate:metadata,refused by the metadata gate: modality CT (computed tomography) cannot hold a planar thyroid scintigram\n"
        f"{tmp_path / 'sc.dcm'},load,absurd image size 3x3\n"
    )
    stderr = f"skipped {tmp_path / 'syringe.dcm'}#anterior: syringe or point source (series description 'SERINGUE PLEINE')\nskipped {tmp_path / 'syringe.dcm'}#posterior: syringe or point source (series description 'SERINGUE PLEINE')\n3 views classified ...\n"
    views = bench.outcomes(inputs, *bench.parse_run(out, stderr))
    by_file = {name: [v for v in views if v.file == name] for name in ("ct.dcm", "sc.dcm", "syringe.dcm", "neck.png", "lost.png")}
    assert [v.status for v in by_file["ct.dcm"]] == ["refused"] and by_file["ct.dcm"][0].stage == "gate:metadata"
    assert [v.status for v in by_file["sc.dcm"]] == ["failed"]
    assert [v.status for v in by_file["syringe.dcm"]] == ["skipped", "skipped"]
    assert by_file["neck.png"][0].label == "a" and by_file["neck.png"][0].confidence == 0.9 and by_file["neck.png"][0].ood_score == 12.5
    assert by_file["lost.png"][0].status == "failed" and by_file["lost.png"][0].stage == "run"
    assert [v.file for v in views][0] == "ct.dcm"  # input order
    assert bench.cell(by_file["ct.dcm"]) == "refused: metadata"
    assert bench.cell(by_file["syringe.dcm"]) == "skipped (2 views)"
    assert bench.cell(by_file["neck.png"]) == "**classified** a 0.90"
    assert bench.reasons(by_file["ct.dcm"]) == ["refused, gate:metadata: modality CT (computed tomography) cannot hold a planar thyroid scintigram"]
    assert bench.reasons(by_file["neck.png"], classified=True) == ["**classified** a 0.90; learned score 12.5"]


def _results(bench, labelled_foreign: bool) -> dict:
    Outcome = bench.Outcome
    foreign = [
        Outcome("ct.dcm", "ct.dcm", "refused", stage="gate:metadata", reason="modality CT"),
        Outcome(
            "p.png",
            "p.png",
            "classified" if labelled_foreign else "refused",
            label="a",
            confidence=0.8,
            stage=None if labelled_foreign else "gate:ood",
        ),
    ]
    thyroid = [Outcome(f"t{i}.png", f"t{i}.png", "classified", label="a", confidence=0.7) for i in range(9)]
    return {
        "date": "2026-01-01",
        "commit": "abc",
        "inputs": [{"name": "ct.dcm", "what": "CT slice", "origin": "pydicom"}, {"name": "p.png", "what": "photo", "origin": "matplotlib"}],
        "thyroid_inputs": [f"t{i}.png" for i in range(9)],
        "missing": [{"file": "pydicom_US1_UNCR.dcm", "why": "not available offline"}],
        "bundles": {
            "uptake4": {"ood_threshold": 925.5, "foreign": [asdict(o) for o in foreign], "thyroid": [asdict(o) for o in thyroid]},
            "remnant": {
                "ood_threshold": 4.08,
                "foreign": [asdict(o) for o in foreign[:1]],
                "thyroid": [asdict(o) for o in thyroid[:3]] + [asdict(Outcome("t3.png", "t3.png", "refused", stage="gate:ood", reason="x"))],
            },
        },
    }


def test_verdict_and_tables(bench, tmp_path: Path) -> None:
    good = bench.verdict(_results(bench, labelled_foreign=False))
    assert good["uptake4"]["foreign_classified"] == 0 and good["uptake4"]["thyroid_accepted"] == 9
    assert good["remnant"]["thyroid_expected"] == "refused" and good["remnant"]["thyroid_refused_files"] == ["t3.png"]
    lines = bench.verdict_lines(_results(bench, labelled_foreign=False))
    assert "Target met" in lines[0] and "refusing them is expected" in lines[1]
    bad = _results(bench, labelled_foreign=True)
    assert "**not met**" in bench.verdict_lines(bad)[0] and "(p.png)" in bench.verdict_lines(bad)[0]
    text = bench.render(bad)
    assert "| file | what it is | uptake4 | remnant |" in text and "| `p.png` | photo | **classified** a 0.80 | - |" in text
    assert "learned-score threshold 925.5" in text and "`pydicom_US1_UNCR.dcm`" in text
    written = bench.write_outputs(bad, tmp_path, docs=False)
    assert [p.name for p in written] == ["gate_refusals.md", "gate_refusals.json"]
    assert bench.render(json.loads((tmp_path / "gate_refusals.json").read_text())) == text  # --from-json gives the same tables


def test_generated_inputs(bench, tmp_path: Path, tiny_bundle: Path) -> None:
    import pydicom
    from PIL import Image

    from scintipipe.bundle import Bundle
    from scintipipe.gate.metadata import metadata_refusal
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import make_plugin_manager

    page = bench.text_page(tmp_path / "page.png")
    assert Image.open(page).size == (800, 1000)
    shunt = bench.shunt_study(tmp_path / "shunt.dcm")
    ds = pydicom.dcmread(shunt)
    assert ds.Modality == "NM" and ds.SeriesDescription == "POUMON-REIN" and int(ds.NumberOfFrames) == 2 and ds.pixel_array.shape == (2, 256, 256)
    pipeline = Pipeline(make_plugin_manager(), Bundle(tiny_bundle, name="tiny"), RunOptions(segment=False, explain=False, report=False))
    scans = pipeline.load(shunt)
    assert len(scans) == 2
    for scan in scans:
        refusal = metadata_refusal(scan["image"].meta, ("Tc-99m", "I-123"))
        assert refusal is not None and refusal.layer == "metadata" and "POUMON-REIN" in refusal.reason and "lung" in refusal.reason
    bare = pipeline.load(bench.shunt_study(tmp_path / "bare.dcm", series_description=None))
    assert [metadata_refusal(scan["image"].meta, ("Tc-99m", "I-123")) for scan in bare] == [None, None]
    assert bare[0]["image"].meta.get("radionuclide") == "Tc-99m"
