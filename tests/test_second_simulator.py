"""benchmarks/second_simulator.py: determinism, class-independent nuisances, loadable DICOMs, class definitions."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from benchmark_helpers import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim():
    return load_benchmark("second_simulator")


@pytest.fixture(scope="module")
def truths(sim) -> dict[str, list[dict[str, float]]]:
    """Truth measures of 12 cases per pattern (parameters only; no camera rendering)."""
    return {
        pattern: [sim.truth_measures(*sim.draw_parameters(3, index, pattern)[1:], (3, index, 6)) for index in range(12)] for pattern in sim.PATTERNS
    }


def test_the_simulator_does_not_use_the_project_simulator() -> None:
    """Only the benchmark's reporting imports scintipipe (its bundles, loader, intervals, docs markers and plugin registry), never its simulator or training."""
    lines = (REPO / "benchmarks" / "second_simulator.py").read_text().splitlines()
    imports = [line.strip() for line in lines if line.strip().startswith(("import ", "from "))]
    project = {line.split()[1] for line in imports if "scintipipe" in line}
    assert imports and project == {
        "scintipipe.bundle",
        "scintipipe.loaders",
        "scintipipe.evaluation.intervals",
        "scintipipe.docs_markers",
        "scintipipe.plugins",
    }


def test_the_model_card_section_gives_every_format_with_intervals_and_errors(sim) -> None:
    def results(k: int, errors: list) -> dict:
        recall = {"focal_increased": sim.rate(k, 50), "heterogeneous": sim.rate(49, 50)}
        return {
            "date": "2026-11-30",
            "commit": "abc1234",
            "bundles": {"uptake4": {"n": 100, "accuracy": sim.rate(k + 49, 100), "recall": recall, "systematic": errors}},
        }

    section = sim.card_section(
        "uptake4",
        {"DICOM": results(12, [{"true": "focal_increased", "predicted": "heterogeneous", "count": 36, "n": 50}]), "PNG exports": results(8, [])},
    )
    dicom, png = (line for line in section.splitlines() if line.startswith(("| DICOM", "| PNG")))
    assert "61.0 % (61/100;" in dicom and "focal increased 24.0 % (12/50;" in dicom and "focal_increased -> heterogeneous 36/50" in dicom
    assert "focal increased 16.0 % (8/50;" in png and "| none |" in png and "commit abc1234" in png
    assert sim.card_section("disease", {"DICOM": results(12, [])}).count("| DICOM") == 0


def test_a_case_is_deterministic_under_its_seed(sim, tmp_path: Path) -> None:
    first = sim.simulate_case(11, 3, "focal_increased")
    again = sim.simulate_case(11, 3, "focal_increased")
    other = sim.simulate_case(12, 3, "focal_increased")
    assert first.counts.dtype == np.uint16 and first.counts.shape == (first.camera.matrix,) * 2
    np.testing.assert_array_equal(first.counts, again.counts)
    assert first.truth == again.truth
    assert not np.array_equal(first.counts, other.counts) or first.counts.shape != other.counts.shape
    sim.write_dicom(tmp_path / "a.dcm", first, 11, 3)
    sim.write_dicom(tmp_path / "b.dcm", again, 11, 3)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    # the count preset holds (Poisson around it)
    assert abs(int(first.counts.sum()) - first.camera.total_counts) < 5 * np.sqrt(first.camera.total_counts)


def test_nuisances_do_not_depend_on_the_class(sim) -> None:
    for index in range(5):
        drawn = [sim.draw_parameters(21, index, pattern) for pattern in sim.PATTERNS]
        cameras = [asdict(camera) for camera, _, _ in drawn]
        anatomies = [asdict(anatomy) for _, anatomy, _ in drawn]
        assert all(c == cameras[0] for c in cameras) and all(a == anatomies[0] for a in anatomies)
    # and the data set's plan is balanced and does not put a class at fixed positions
    order = sim.plan(4, 9)
    assert sorted(order) == sorted(sim.PATTERNS * 4)
    assert order != sim.plan(4, 10)


def test_the_written_dicoms_load_and_pass_the_gate_header_and_content_layers(sim, tmp_path: Path) -> None:
    from scintipipe.gate.content import content_refusal
    from scintipipe.gate.metadata import metadata_refusal
    from scintipipe.loaders.dicom import load_dicom

    rows = sim.simulate_dataset(tmp_path, 1, 5, "dicom", log=None)
    with (tmp_path / "labels.csv").open(newline="") as handle:
        labels = list(csv.DictReader(handle))
    assert [r["file"] for r in labels] == [r["file"] for r in rows]
    assert {(r["uptake4"], r["disease"]) for r in labels} == {(sim.UPTAKE4_OF[p], sim.DISEASE_OF[p]) for p in sim.PATTERNS}
    assert all("case_" in r["file"] and not any(p in r["file"] for p in sim.PATTERNS) for r in labels)
    for row in rows:
        scans = load_dicom(tmp_path / row["file"])
        assert len(scans) == 1
        image = scans[0]["image"]
        meta = image.meta
        assert meta["modality"] == "NM" and meta["radionuclide"] == "Tc-99m" and meta["is_counts"] is True
        assert meta["spacing"] == pytest.approx((row["pixel_mm"], row["pixel_mm"]), abs=1e-3)
        assert tuple(image.shape) == (1, row["matrix"], row["matrix"])
        assert float(image.max()) == row["max_count"]
        assert metadata_refusal(meta, ("Tc-99m", "I-123")) is None
        assert content_refusal(np.asarray(image[0]), meta) is None, row


def test_the_png_export_is_an_8bit_display_image(sim) -> None:
    case = sim.simulate_case(4, 0, "normal")
    picture = sim.display_png(case, 4, 0)
    array = np.asarray(picture)
    assert picture.mode == "L" and array.dtype == np.uint8 and 200 <= array.shape[0] <= 400 and array.max() >= 200


def test_thyroid_to_salivary_ratio_orders_the_diffuse_classes(truths) -> None:
    ratio = {p: np.array([t["thyroid_salivary"] for t in ts]) for p, ts in truths.items()}
    assert ratio["diffusely_increased"].mean() > ratio["normal"].mean() > ratio["diffusely_decreased"].mean()
    assert ratio["diffusely_increased"].min() > 2.0  # clearly above the salivary glands
    assert ratio["normal"].min() > 0.8 and ratio["normal"].max() < 2.5  # similar to or somewhat above them
    assert ratio["diffusely_decreased"].max() <= 1.0  # at or below them
    near_background = np.array([t["thyroid_background"] for t in truths["diffusely_decreased"]])
    assert near_background.max() < 3.0  # and near the soft-tissue level


def test_graves_glands_are_enlarged(truths) -> None:
    area = {p: np.array([t["thyroid_area_mm2"] for t in ts]) for p, ts in truths.items()}
    assert area["diffusely_increased"].mean() > 1.5 * area["normal"].mean()
    assert np.median(area["diffusely_increased"]) > area["normal"].max()


def test_focal_cases_have_a_clearly_hotter_nodule(truths) -> None:
    nodule_rest = np.array([t["nodule_rest"] for t in truths["focal_increased"]])
    assert nodule_rest.min() > 2.0 and nodule_rest.mean() > 4.0
    assert all(t["nodule_rest"] == 1.0 for p in ("diffusely_increased", "diffusely_decreased", "normal") for t in truths[p])


def test_heterogeneous_glands_are_patchy_and_the_diffuse_ones_homogeneous(truths) -> None:
    cv = {p: np.array([t["thyroid_cv"] for t in ts]) for p, ts in truths.items()}
    assert cv["heterogeneous"].min() > 0.15
    assert max(cv[p].max() for p in ("diffusely_increased", "diffusely_decreased", "normal")) < 0.12
    assert np.mean([t["cold_fraction"] > 0 for t in truths["heterogeneous"]]) > 0.6  # most have cold areas


def test_the_contact_sheet_shows_each_class_wrong_answers_first(sim, tmp_path: Path) -> None:
    rows = sim.simulate_dataset(tmp_path, 2, 5, log=lambda *_: None)
    scored = [r for r in rows if r["uptake4"]]
    wrong = next(r for r in scored if r["uptake4"] == "focal_increased")
    predictions = {str((tmp_path / r["file"]).resolve()): {"label": r["uptake4"]} for r in scored}
    predictions[str((tmp_path / wrong["file"]).resolve())] = {"label": "heterogeneous"}
    sheet = sim.contact_sheet(tmp_path, rows, predictions, "uptake4", per_row=3)
    assert sheet.dtype == np.uint8 and sheet.shape == (4 * 96, 3 * 96)
    focal_row = sheet[2 * 96 : 3 * 96]
    assert focal_row[:, :192].max() > 0 and focal_row[:, 192:].max() == 0  # two focal cases, then an empty tile
    from scintipipe.bundle import Bundle
    from scintipipe.loaders import read_scans

    scan = read_scans(tmp_path / wrong["file"])[0]
    first = Bundle(REPO / "bundles" / "uptake4", name="uptake4").scan_transform({"image": scan["image"]})["image"]
    assert np.array_equal(focal_row[:, :96], (255 * np.clip(np.asarray(first)[0] / 1.5, 0, 1)).astype(np.uint8))  # the wrong answer leads


def test_a_bundle_folder_is_run_and_scored_by_its_task_without_touching_the_shipped_results(sim, tmp_path: Path, capsys) -> None:
    shipped = REPO / "benchmarks" / "results" / "second_simulator.md"
    before = shipped.read_bytes() if shipped.is_file() else None
    folder = REPO / "bundles" / "uptake4"
    assert sim.main(["--n-per-class", "1", "--seed", "5", "--out", str(tmp_path), "--bundle-folder", f"uptake4={folder}"]) == 0
    import json

    results = json.loads((tmp_path / "second_simulator.json").read_text())
    (key,) = results["bundles"]  # the folder only: no shipped bundle unless --bundle names it
    entry = results["bundles"][key]
    assert key == f"uptake4 {folder}" and entry["task"] == "uptake4" and entry["n"] == 4  # the four uptake patterns, one each
    assert f"--bundle-folder uptake4={folder}" in results["command"]
    assert f"## uptake4 {folder}" in (tmp_path / "second_simulator.md").read_text()
    assert (shipped.read_bytes() if shipped.is_file() else None) == before
    for bad, message in (
        (f"thyroid={folder}", "TASK one of disease, uptake4"),
        (f"uptake4={tmp_path}", "is not a complete bundle: missing"),
        (f"disease={folder}", "is a uptake4 bundle, not disease"),
    ):
        with pytest.raises(SystemExit):
            sim.main(["--out", str(tmp_path / "x"), "--bundle-folder", bad])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one folder twice would share one row of the results
        sim.main(["--out", str(tmp_path / "x"), "--bundle-folder", f"uptake4={folder}", "--bundle-folder", f"uptake4={folder}/."])
    assert "more than once" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_focal_recall_is_split_by_the_number_of_hot_nodules(sim, tmp_path: Path) -> None:
    """Seed 002 calls several focal hot areas heterogeneous, so the report keeps one-nodule
    focal cases apart from the 2-3-nodule ones."""
    base = {"camera": "parallel", "matrix": "128", "head_in_field": "1", "marker": "", "total_counts": "200000"}
    rows = [
        {**base, "file": "a.dcm", "pattern": "focal_increased", "uptake4": "focal_increased", "n_nodules": "1"},
        {**base, "file": "b.dcm", "pattern": "focal_increased", "uptake4": "focal_increased", "n_nodules": "1"},
        {**base, "file": "c.dcm", "pattern": "focal_increased", "uptake4": "focal_increased", "n_nodules": "3"},
        {**base, "file": "d.dcm", "pattern": "heterogeneous", "uptake4": "heterogeneous", "n_nodules": "4"},
    ]
    said = {"a.dcm": "focal_increased", "b.dcm": "heterogeneous", "c.dcm": "heterogeneous", "d.dcm": "heterogeneous"}
    predictions = {str((tmp_path / name).resolve()): {"label": label} for name, label in said.items()}
    strata = sim.score_bundle("uptake4", rows, tmp_path, predictions, {})["strata"]["focal increased cases by hot nodules"]
    assert (strata["1 nodule"]["k"], strata["1 nodule"]["n"]) == (1, 2)
    assert (strata["2-3 nodules"]["k"], strata["2-3 nodules"]["n"]) == (0, 1)
    assert (strata["other patterns"]["k"], strata["other patterns"]["n"]) == (1, 1)


def test_each_draw_keeps_its_own_results_and_the_card_lists_every_draw(sim, tmp_path: Path) -> None:
    """A further seed must not overwrite the default draw's results; the model card's table
    shows the default draw first, then the others by seed, DICOM before PNG."""
    import json

    assert sim.results_stem(sim.DEFAULT_SEED, "dicom") == "second_simulator"
    assert sim.results_stem(sim.DEFAULT_SEED, "png") == "second_simulator_png"
    assert sim.results_stem(17, "png") == "second_simulator_seed17_png"

    def saved(seed: int, fmt: str, accuracy_k: int) -> None:
        entry = {"k": accuracy_k, "n": 4, "value": accuracy_k / 4, "wilson95": [0.1, 0.9]}
        bundle = {"n": 4, "accuracy": entry, "recall": {"focal_increased": entry}, "systematic": []}
        results = {"seed": seed, "format": fmt, "date": "2026-12-02", "commit": "abc", "bundles": {"uptake4": bundle}}
        (tmp_path / f"{sim.results_stem(seed, fmt)}.json").write_text(json.dumps(results))

    saved(27, "dicom", 1)
    saved(17, "png", 2)
    saved(17, "dicom", 3)
    saved(sim.DEFAULT_SEED, "dicom", 4)
    (tmp_path / "second_simulator_inputs.json").write_text("{}")  # not a draw
    draws = sim.saved_draws(tmp_path)
    assert list(draws) == ["DICOM, seed 7", "DICOM, seed 17", "PNG exports, seed 17", "DICOM, seed 27"]
    card = sim.card_section("uptake4", draws).splitlines()
    table = [line for line in card if line.startswith("| DICOM") or line.startswith("| PNG")]
    assert [line.split(" | ")[2] for line in table] == [
        "100.0 % (4/4; 10.0-90.0)",
        "75.0 % (3/4; 10.0-90.0)",
        "50.0 % (2/4; 10.0-90.0)",
        "25.0 % (1/4; 10.0-90.0)",
    ]
    (pooled,) = [line for line in card if "pooled" in line]  # one PNG draw only: no PNG pooled row
    assert pooled.startswith("| **DICOM, seeds 7 + 17 + 27 pooled** | 12 | **66.7 % (8/12;")
