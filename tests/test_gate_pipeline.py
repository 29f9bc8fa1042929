"""The gate stage in `scintipipe run`: metadata refusals, plugin layers, --accept-ood, syringe pairing.

The bundle is the shape-only test bundle (random weights): these tests check what the gate
lets through and where refusals are written, never what the labels say.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from cli_helpers import read_csv, run
from dicom_factory import nm_dataset, thyroid_pattern
from scintipipe.gate import GateRefused, Refusal
from scintipipe.gate.metadata import metadata_refusal, syringe_phase
from scintipipe.loaders.studies import choose_syringes, study_groups

TC = ("Tc-99m", "I-123")


def write_study_file(
    path: Path, frames: np.ndarray, study: str, series_description: str, acquisition_time: str, duration_ms: int = 300_000, **extra: str
) -> Path:
    ds = nm_dataset(frames, frame_duration_ms=duration_ms, acquisition=("20240102", acquisition_time))
    ds.StudyInstanceUID = study
    ds.SeriesDescription = series_description
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def syringe_frame(size: int = 64, counts: float = 400_000.0, seed: int = 0) -> np.ndarray:
    """A syringe in air: a small elongated hot object, no body background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    shape = np.exp(-(((yy - size / 2) / 2.0) ** 2 + ((xx - size / 2) / 8.0) ** 2))
    return rng.poisson(counts * shape / shape.sum()).astype(np.uint16)


# ---- the metadata layer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"modality": "CT"}, "modality CT (computed tomography)"),
        ({"modality": "MR"}, "modality MR"),
        ({"modality": "US"}, "modality US"),
        ({"modality": "SR"}, "structured report"),
        ({"modality": "NM", "radionuclide": "I-131"}, "radionuclide I-131 does not match"),
        ({"modality": "NM", "series_description": "POUMON-REIN"}, "names lung"),
        ({"modality": "NM", "body_part": "WHOLE BODY"}, "whole body"),
        ({"modality": "NM", "study_description": "Scintigraphie osseuse"}, "names bone"),
        (
            {
                "modality": "OT",
                "manufacturer": "scintipipe developers",
                "image_type": "DERIVED\\SECONDARY",
                "series_description": "scintipipe overlay uptake4",
            },
            "a scintipipe result",
        ),
    ],
)
def test_metadata_layer_refuses_what_the_header_rules_out(meta: dict, words: str) -> None:
    refusal = metadata_refusal(meta, TC)
    assert refusal is not None and refusal.layer == "metadata" and not refusal.skip
    assert words in refusal.reason
    assert not refusal.overridable


@pytest.mark.parametrize(
    "meta",
    [
        {"modality": "NM", "radionuclide": "Tc-99m", "series_description": "ANT", "study_description": "Thyroide Tc externe"},
        {"modality": "NM", "radionuclide": "I-123", "body_part": "NECK"},
        {"modality": "NM", "radionuclide": None, "series_description": "Schilddrüse + Ganzkörper"},  # a thyroid word wins
        {"modality": "OT"},
        {"modality": "NM", "manufacturer": "scintipipe tests", "image_type": "ORIGINAL\\PRIMARY\\STATIC"},  # an acquisition, whoever wrote it
        {},  # a PNG export has no metadata
    ],
)
def test_metadata_layer_lets_thyroid_views_through(meta: dict) -> None:
    assert metadata_refusal(meta, TC) is None


def test_remnant_radionuclide_policy_refuses_technetium() -> None:
    assert "made for I-131" in metadata_refusal({"modality": "NM", "radionuclide": "Tc-99m"}, ("I-131",)).reason
    assert metadata_refusal({"modality": "NM", "radionuclide": "I-131"}, ("I-131",)) is None


def test_syringe_descriptions_are_skips_with_their_phase() -> None:
    refusal = metadata_refusal({"modality": "NM", "series_description": "SERINGUE PLEINE"}, TC)
    assert refusal.skip and refusal.kind == "syringe" and refusal.reason.startswith("syringe or point source")
    assert syringe_phase({"series_description": "SERINGUE PLEINE"}) == "full"
    assert syringe_phase({"series_description": "Syringe empty"}) == "empty"
    assert syringe_phase({"series_description": "SYRINGE"}) is None


def test_refusal_from_a_plugin_dict_and_bad_answers() -> None:
    assert Refusal.coerce({"layer": "views", "reason": "lateral"}) == Refusal("views", "lateral")
    with pytest.raises(TypeError, match="gate hook must return"):
        Refusal.coerce("no")
    error = GateRefused("a.dcm", Refusal("ood", "far"))
    assert error.reason == "refused by the ood gate: far" and error.refusal.overridable


# ---- studies and syringes ----------------------------------------------------------------


def test_files_of_one_study_are_grouped_in_order(tmp_path: Path) -> None:
    study_a, study_b = generate_uid(), generate_uid()
    a1 = write_study_file(tmp_path / "a1.dcm", thyroid_pattern(), study_a, "ANT", "101500")
    b1 = write_study_file(tmp_path / "b1.dcm", thyroid_pattern(), study_b, "ANT", "101500")
    png = tmp_path / "c.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    a2 = write_study_file(tmp_path / "a2.dcm", syringe_frame(), study_a, "SYRINGE FULL", "100000", 60_000)
    assert study_groups([a1, b1, png, a2]) == [[a1, a2], [b1], [png]]


def test_choose_syringes_by_description_else_by_count_rate() -> None:
    named = choose_syringes([("e.dcm", {"series_description": "SERINGUE VIDE"}), ("f.dcm", {"series_description": "SERINGUE PLEINE"})])
    assert named == {"full": "f.dcm", "empty": "e.dcm"}
    by_rate = choose_syringes(
        [("low.dcm", {"total_counts": 9e3, "frame_duration_s": 60.0}), ("high.dcm", {"total_counts": 6e5, "frame_duration_s": 60.0})]
    )
    assert by_rate == {"full": "high.dcm", "empty": "low.dcm"}
    assert choose_syringes([("only.dcm", {"total_counts": 6e5, "frame_duration_s": 60.0})]) == {"full": "only.dcm"}
    assert choose_syringes([]) is None


def test_a_syringe_in_the_study_folder_gives_the_uptake(tiny_bundle: Path, tmp_path: Path) -> None:
    study = generate_uid()
    scans = tmp_path / "study"
    scans.mkdir()
    # the syringe comes after the thyroid view in the listing: the study is read whole first
    write_study_file(scans / "a_thyroid.dcm", thyroid_pattern(peak=200), study, "ANT", "103000")
    write_study_file(scans / "b_syringe.dcm", syringe_frame(), study, "SYRINGE FULL", "100000", duration_ms=60_000)
    out = tmp_path / "results"
    code, output = run(["run", "--bundle", str(tiny_bundle), str(scans), "--out", str(out), "--no-explain", "--no-dicom"])
    assert code == 0, output
    assert "skipped" in output and "b_syringe.dcm" in output and "syringe or point source" in output
    (row,) = read_csv(out / "predictions.csv")
    assert row["source"].endswith("a_thyroid.dcm")
    report = json.loads((out / "a_thyroid" / "report.json").read_text())
    assert report["quantities"]["uptake_percent"] > 0
    assert any("syringe image found in the same study: b_syringe.dcm" in note for note in report["notes"])


def test_the_real_siemens_study_gets_its_uptake_unattended(tiny_bundle: Path, reference_scans: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(reference_scans / "siemens-thyroid", folder, ignore=shutil.ignore_patterns("*.png"))
    out = tmp_path / "results"
    code, output = run(["run", "--bundle", str(tiny_bundle), str(folder), "--out", str(out), "--no-explain", "--no-dicom"])
    assert code == 0, output
    assert output.count("syringe or point source") == 2  # both frames of the syringe file
    report = json.loads((out / "thyroid_99mTc_ANT_deid" / "report.json").read_text())
    assert 1.5 < report["quantities"]["uptake_percent"] < 2.1  # the folder's README: about 1.7-1.9 %, normal range


# ---- refusals in a run -------------------------------------------------------------------


def test_ct_mr_and_whole_body_nm_are_refused_with_the_layer(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = tmp_path / "mixed"
    scans.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
        shutil.copy(get_testdata_file(name), scans / name)
    good = nm_dataset(thyroid_pattern())
    good.save_as(scans / "thyroid.dcm", enforce_file_format=True)
    out = tmp_path / "results"
    code, output = run(["run", "--bundle", str(tiny_bundle), str(scans), "--out", str(out), "--no-explain", "--no-dicom"])
    assert code == 1, output
    assert [Path(r["source"]).name for r in read_csv(out / "predictions.csv")] == ["thyroid.dcm"]
    errors = {Path(r["source"]).name: r for r in read_csv(out / "errors.csv")}
    assert set(errors) == {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"}
    assert {row["stage"] for row in errors.values()} == {"gate:metadata"}
    assert "modality CT" in errors["CT_small.dcm"]["error"] and "modality MR" in errors["MR_small.dcm"]["error"]
    assert "WHOLE BODY" in errors["JPEG2000.dcm"]["error"]
    assert not (out / "CT_small").exists()  # no report, no SR filed into the CT patient's study


def test_our_own_secondary_captures_are_not_classified_again(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    nm_dataset(thyroid_pattern()).save_as(scans / "thyroid.dcm", enforce_file_format=True)
    first = tmp_path / "first"
    code, output = run(["run", "--bundle", str(tiny_bundle), str(scans), "--out", str(first), "--no-explain"])
    assert code == 0, output
    assert (first / "thyroid" / "overlay_sc.dcm").is_file()
    second = tmp_path / "second"
    code, output = run(["run", "--bundle", str(tiny_bundle), str(first), "--out", str(second), "--no-explain"])
    assert read_csv(second / "predictions.csv") == []
    errors = read_csv(second / "errors.csv")
    assert [Path(r["source"]).name for r in errors] == ["overlay_sc.dcm"]
    assert errors[0]["stage"] == "gate:metadata" and "a scintipipe result" in errors[0]["error"]


GATE_PLUGIN = textwrap.dedent("""
    from scintipipe import hookimpl
    from scintipipe.gate import Refusal

    @hookimpl
    def gate_scan(scan, bundle):
        if "lateral" in scan["source"]:
            return {"layer": "views", "reason": "lateral views are not classified"}
        if "busy" in scan["source"]:
            return Refusal("content", "looks like a screenshot")
        return None

    @hookimpl
    def gate_batch(inputs, bundle, device):
        scores = inputs.flatten(1).std(1).tolist()
        return [{"ood_score": s, "in_distribution": s < 0.5, "reason": f"spread {s:.2f} is above 0.5", "threshold": 0.5} for s in scores]
""")


@pytest.fixture
def gate_plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_gate.py").write_text(GATE_PLUGIN)
    return folder


def write_views(folder: Path) -> None:
    folder.mkdir()
    quiet = thyroid_pattern(seed=1)
    for name in ("ant.dcm", "lateral.dcm", "busy.dcm"):
        nm_dataset(quiet).save_as(folder / name, enforce_file_format=True)
    yy, xx = np.mgrid[:64, :64]
    odd = (((yy // 16) + (xx // 16)) % 2 * 60000).astype(np.uint16)  # a checkerboard: a huge spread
    nm_dataset(odd).save_as(folder / "odd.dcm", enforce_file_format=True)


def test_plugin_gate_layers_refuse_and_accept_ood_overrides_content_and_ood(
    tiny_bundle: Path, gate_plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "scintipipe.builtin.gate_content")  # only the plugin's layers judge here
    scans = tmp_path / "scans"
    write_views(scans)
    out = tmp_path / "results"
    code, output = run(
        ["--plugins-dir", str(gate_plugin_dir), "run", "--bundle", str(tiny_bundle), str(scans), "--out", str(out), "--no-explain", "--no-dicom"]
    )
    assert code == 1, output
    errors = {Path(r["source"]).name: r for r in read_csv(out / "errors.csv")}
    assert errors["lateral.dcm"]["stage"] == "gate:views"
    assert errors["busy.dcm"]["stage"] == "gate:content"
    assert errors["odd.dcm"]["stage"] == "gate:ood" and "spread" in errors["odd.dcm"]["error"]
    (row,) = read_csv(out / "predictions.csv")
    assert row["source"].endswith("ant.dcm") and row["in_distribution"] == "true" and float(row["ood_score"]) < 0.5

    forced = tmp_path / "forced"
    code, output = run(
        [
            "--plugins-dir",
            str(gate_plugin_dir),
            "run",
            "--bundle",
            str(tiny_bundle),
            str(scans),
            "--out",
            str(forced),
            "--no-explain",
            "--no-dicom",
            "--accept-ood",
        ]
    )
    rows = {Path(r["source"]).name: r for r in read_csv(forced / "predictions.csv")}
    assert set(rows) == {"ant.dcm", "busy.dcm", "odd.dcm"}  # the plugin's own "views" layer is not overridable
    assert rows["odd.dcm"]["in_distribution"] == "false"
    assert [Path(r["source"]).name for r in read_csv(forced / "errors.csv")] == ["lateral.dcm"]
    odd = json.loads((forced / "odd" / "report.json").read_text())
    assert odd["gate"]["against_advice"] is True and odd["gate"]["overridden"][0]["layer"] == "ood"
    assert odd["gate"]["ood_threshold"] == 0.5  # the plugin's own threshold, not the bundle's
    busy = json.loads((forced / "busy" / "report.json").read_text())
    assert busy["gate"]["overridden"] == [{"layer": "content", "reason": "looks like a screenshot"}]
    plain = json.loads((forced / "ant" / "report.json").read_text())
    assert plain["gate"]["against_advice"] is False


def test_accept_ood_is_in_the_help() -> None:
    code, output = run(["run", "--help"])
    assert code == 0 and "--accept-ood" in output and "gate:metadata" in output


def test_the_siemens_header_passes_the_metadata_layer(reference_scans: Path) -> None:
    from scintipipe.loaders import read_scans

    (scan,) = read_scans(reference_scans / "siemens-thyroid" / "thyroid_99mTc_ANT_deid.dcm")
    assert metadata_refusal(dict(scan["image"].meta), TC) is None
    ds = pydicom.dcmread(reference_scans / "siemens-thyroid" / "syringe_full_99mTc_2frames_deid.dcm", stop_before_pixels=True)
    assert ds.SeriesDescription == "SERINGUE PLEINE"
