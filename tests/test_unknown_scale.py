"""Pictures without pixel spacing classified at several assumed fields of view (``unknown_scale_fovs_mm``)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from scintipipe.bundle import Bundle
from scintipipe.testing import run_cli
from scintipipe.transforms.unknown_scale import DEFAULT_FOV_MM, has_spacing, scale_inputs, scale_note, with_assumed_fov, zoom_inputs, zoom_note

REPO = Path(__file__).resolve().parents[1]
FOVS = (200.0, 280.0, 390.0)


def bundle_with(tmp_path: Path, fovs: tuple[float, ...] | None, zooms: tuple[float, ...] | None = None) -> Path:
    """A copy of the shipped uptake4 bundle with ``unknown_scale_fovs_mm`` and ``zoom_factors`` set (``None``: removed),
    and without ``zoom_averaging_below`` (every scan averaged; :func:`bundle_with_threshold` sets one)."""
    folder = tmp_path / f"uptake4-{'none' if fovs is None else len(fovs)}-{'none' if zooms is None else len(zooms)}"
    shutil.copytree(REPO / "bundles" / "uptake4", folder)
    path = folder / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["scintipipe"].pop("zoom_averaging_below", None)
    for key, values in (("unknown_scale_fovs_mm", fovs), ("zoom_factors", zooms)):
        metadata["scintipipe"].pop(key, None)
        if values is not None:
            metadata["scintipipe"][key] = list(values)
    path.write_text(json.dumps(metadata))
    return folder


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two simulated uptake4 scans: one DICOM (with spacing), one display export (PNG or JPEG, without)."""
    out = tmp_path_factory.mktemp("unknown_scale") / "sim"
    run_cli(
        "simulate",
        "--task",
        "uptake4",
        "--n",
        "6",
        "--seed",
        "5",
        "--center",
        "randomised",
        "--display-exports",
        "0.5",
        "--out",
        out,
        "--no-progress",
    )
    with (out / "labels.csv").open(newline="") as handle:
        files = [out / row["file"] for row in csv.DictReader(handle)]
    return {"dicom": next(f for f in files if f.suffix == ".dcm"), "png": next(f for f in files if f.suffix != ".dcm")}


def test_assumed_fov_sets_spacing_on_a_copy_only() -> None:
    picture = MetaTensor(torch.ones(1, 140, 70), meta={"notes": ["a"]})
    scaled = with_assumed_fov(picture, 280.0)
    assert scaled.meta["spacing"] == (2.0, 4.0) and scaled.meta["assumed_fov_mm"] == 280.0 and scaled.meta["notes"] == ["a"]
    assert not has_spacing(picture) and has_spacing(scaled)
    assert torch.equal(scaled.as_tensor(), picture.as_tensor())


def test_scale_inputs_only_for_pictures_without_spacing(scans: dict[str, Path]) -> None:
    from scintipipe.loaders import read_scans

    bundle = Bundle(REPO / "bundles" / "uptake4", name="uptake4")
    png = read_scans(scans["png"])[0]["image"]
    dicom = read_scans(scans["dicom"])[0]["image"]
    assert scale_inputs(dicom, bundle.scan_transform, FOVS) is None  # a spacing: nothing assumed
    assert scale_inputs(png, bundle.scan_transform, ()) is None  # turned off
    inputs = scale_inputs(png, bundle.scan_transform, FOVS)
    assert inputs is not None and tuple(inputs.shape) == (3, 1, 96, 96)
    default = torch.as_tensor(bundle.scan_transform({"image": png})["image"]).as_subclass(torch.Tensor)
    assert torch.equal(inputs[FOVS.index(DEFAULT_FOV_MM)], default.float())  # 280 mm is the single input of old
    assert not torch.equal(inputs[0], inputs[2])  # the scale matters


def test_run_averages_a_png_over_the_fields_of_view_and_leaves_dicom_alone(scans: dict[str, Path], tmp_path: Path) -> None:
    with_fovs, without = bundle_with(tmp_path, FOVS), bundle_with(tmp_path, None)
    rows = {}
    for name, folder in (("with", with_fovs), ("without", without)):
        out = tmp_path / f"run-{name}"
        run_cli("run", "--bundle", folder, "--no-explain", "--accept-ood", "--out", out, scans["dicom"], scans["png"])
        with (out / "predictions.csv").open(newline="") as handle:
            rows[name] = {"dicom" if row["source"].endswith(".dcm") else "png": row for row in csv.DictReader(handle)}
        if name == "with":
            (report,) = out.glob(f"{scans['png'].stem}*/report.json")
            assert scale_note(FOVS) in json.loads(report.read_text())["notes"]
            (report,) = out.glob(f"{scans['dicom'].stem}*/report.json")
            assert not any("assumed fields of view" in note for note in json.loads(report.read_text())["notes"])
    assert rows["with"]["dicom"] == rows["without"]["dicom"]  # bit for bit: DICOM has a spacing

    # the PNG's probabilities are the mean of the temperature-scaled softmax at the three fields of view
    from scintipipe.loaders import read_scans

    bundle = Bundle(with_fovs, name="uptake4")
    image = read_scans(scans["png"])[0]["image"]
    inputs = scale_inputs(image, bundle.scan_transform, FOVS)
    with torch.inference_mode():
        expected = (bundle.network("cpu")(inputs) / bundle.gate.temperature).softmax(1).mean(0).numpy()
    labels = bundle.labels
    got = np.array([float(rows["with"]["png"][f"prob_{label}"]) for label in labels])
    single = np.array([float(rows["without"]["png"][f"prob_{label}"]) for label in labels])
    assert np.allclose(got, expected, atol=2e-6)
    assert not np.allclose(got, single, atol=1e-4)


def test_benchmark_compares_both_bundle_copies_on_a_labelled_folder(scans: dict[str, Path], tiny_bundle: Path, tmp_path: Path) -> None:
    """benchmarks/unknown_scale.py end to end on a small folder (tiny shape-only bundle)."""
    from benchmark_helpers import load_benchmark

    bench = load_benchmark("unknown_scale")
    assert bench.parse_set("P=/x/y:uptake4") == ("P", Path("/x/y"), "uptake4")
    assert bench.parse_set("E=/x/y") == ("E", Path("/x/y"), "label")
    copy = bench.bundle_copy(tiny_bundle, tmp_path / "copy", FOVS)
    assert Bundle(copy).unknown_scale_fovs_mm == FOVS and Bundle(tiny_bundle).unknown_scale_fovs_mm == ()
    folder = scans["png"].parent
    out = tmp_path / "results"
    args = ["--bundle", str(tiny_bundle), "--no-default-sets", "--set", f"mine={folder}", "--reference", str(tmp_path / "absent"), "--out", str(out)]
    assert bench.main(args) == 0
    results = json.loads((out / "unknown_scale.json").read_text())
    (entry,) = results["sets"]
    assert entry["name"] == "mine" and entry["scores"]["n"] == 6 and set(entry["scores"]["variants"]) == {"single", "averaged"}
    assert bench.main([*args, "--set", f"mine={folder}"]) == 0  # one name, two folders: one pooled set
    (pooled,) = json.loads((out / "unknown_scale.json").read_text())["sets"]
    assert pooled["name"] == "mine" and pooled["scores"]["n"] == 12 and pooled["description"] == f"folder {folder}, {folder}"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "labels.csv").write_text("file,label\n")
    with pytest.raises(SystemExit):  # a clear usage error, not a crash on an empty interval
        bench.main([*args[:3], "--set", f"empty={empty}", "--out", str(out)])
    # the tiny bundle resizes instead of resampling, so the assumed field of view cannot change its answers
    assert entry["scores"]["variants"]["single"]["correct"] == entry["scores"]["variants"]["averaged"]["correct"]
    assert "| set | n | single | averaged | difference, points | McNemar |" in (out / "unknown_scale.md").read_text()


def evaluated_rows(bundle_folder: Path, data: Path, out: Path, *flags: str) -> dict[str, dict[str, str]]:
    """`scintipipe evaluate` of ``data`` (its labels.csv) with a bundle: predictions.csv rows by file name."""
    run_cli("evaluate", "--bundle", bundle_folder, "--labels", data / "labels.csv", "--out", out, *flags, data)
    (predictions,) = out.rglob("predictions.csv")
    with predictions.open(newline="") as handle:
        return {Path(row["source"].split("#")[0]).name: row for row in csv.DictReader(handle)}


def test_evaluate_classifies_pictures_of_unknown_scale_as_run_does(scans: dict[str, Path], tmp_path: Path) -> None:
    """`scintipipe evaluate` averages over the assumed fields of view too (its probabilities
    are the network's plain softmax, without the gate's temperature)."""
    from scintipipe.loaders import read_scans

    folder = bundle_with(tmp_path, FOVS)
    data = scans["png"].parent
    rows = evaluated_rows(folder, data, tmp_path / "evaluation")
    bundle = Bundle(folder, name="uptake4")
    network = bundle.network("cpu")
    for path, averaged in ((scans["png"], True), (scans["dicom"], False)):
        image = read_scans(path)[0]["image"]
        inputs = scale_inputs(image, bundle.scan_transform, FOVS) if averaged else bundle.scan_transform({"image": image})["image"][None]
        with torch.inference_mode():
            expected = network(torch.as_tensor(inputs).as_subclass(torch.Tensor).float()).softmax(1).mean(0).numpy()
        got = np.array([float(rows[path.name][f"prob_{label}"]) for label in bundle.labels])
        assert np.allclose(got, expected, atol=2e-6), path.name
    # --no-scale-averaging: one input per view, the network's plain softmax
    rows = evaluated_rows(folder, data, tmp_path / "evaluation-single", "--no-scale-averaging")
    image = read_scans(scans["png"])[0]["image"]
    with torch.inference_mode():
        expected = (
            network(torch.as_tensor(bundle.scan_transform({"image": image})["image"]).as_subclass(torch.Tensor).float()[None]).softmax(1)[0].numpy()
        )
    got = np.array([float(rows[scans["png"].name][f"prob_{label}"]) for label in bundle.labels])
    assert np.allclose(got, expected, atol=2e-6)


ZOOMS = (0.8, 1.0, 1.25)


def test_zoom_inputs_only_for_scans_with_a_spacing(scans: dict[str, Path]) -> None:
    from scintipipe.loaders import read_scans

    bundle = Bundle(REPO / "bundles" / "uptake4", name="uptake4")
    png = read_scans(scans["png"])[0]["image"]
    dicom = read_scans(scans["dicom"])[0]["image"]
    assert zoom_inputs(png, bundle.scan_transform, ZOOMS) is None  # no spacing to multiply
    assert zoom_inputs(dicom, bundle.scan_transform, ()) is None
    inputs = zoom_inputs(dicom, bundle.scan_transform, ZOOMS)
    assert inputs is not None and tuple(inputs.shape) == (3, 1, 96, 96)
    as_acquired = torch.as_tensor(bundle.scan_transform({"image": dicom})["image"]).as_subclass(torch.Tensor).float()
    assert torch.equal(inputs[1], as_acquired) and not torch.equal(inputs[0], inputs[2])
    assert dicom.meta["spacing"] == read_scans(scans["dicom"])[0]["image"].meta["spacing"]  # the scan itself is not changed


def test_run_averages_a_dicom_over_zooms_and_a_png_over_fields_of_view(scans: dict[str, Path], tmp_path: Path) -> None:
    from scintipipe.loaders import read_scans

    folder = bundle_with(tmp_path, FOVS, ZOOMS)
    out = tmp_path / "run"
    run_cli("run", "--bundle", folder, "--no-explain", "--accept-ood", "--out", out, scans["dicom"], scans["png"])
    with (out / "predictions.csv").open(newline="") as handle:
        rows = {"dicom" if row["source"].endswith(".dcm") else "png": row for row in csv.DictReader(handle)}
    bundle = Bundle(folder, name="uptake4")
    for kind, inputs_of, note in (
        ("dicom", lambda image: zoom_inputs(image, bundle.scan_transform, ZOOMS), zoom_note(ZOOMS)),
        ("png", lambda image: scale_inputs(image, bundle.scan_transform, FOVS), scale_note(FOVS)),
    ):
        image = read_scans(scans[kind])[0]["image"]
        with torch.inference_mode():
            expected = (bundle.network("cpu")(inputs_of(image)) / bundle.gate.temperature).softmax(1).mean(0).numpy()
        got = np.array([float(rows[kind][f"prob_{label}"]) for label in bundle.labels])
        assert np.allclose(got, expected, atol=2e-6), kind
        (report,) = out.glob(f"{scans[kind].stem}*/report.json")
        assert note in json.loads(report.read_text())["notes"]


def test_no_scale_averaging_classifies_each_view_once(scans: dict[str, Path], tmp_path: Path) -> None:
    """`--no-scale-averaging` gives exactly what a bundle without the settings gives."""
    rows = {}
    for name, folder, flags in (
        ("off", bundle_with(tmp_path, FOVS, ZOOMS), ["--no-scale-averaging"]),
        ("plain", bundle_with(tmp_path, None, None), []),
    ):
        out = tmp_path / f"run-{name}"
        run_cli("run", "--bundle", folder, "--no-explain", "--accept-ood", *flags, "--out", out, scans["dicom"], scans["png"])
        with (out / "predictions.csv").open(newline="") as handle:
            rows[name] = {Path(row["source"]).name: row for row in csv.DictReader(handle)}
        if name == "off":
            notes = [note for report in out.glob("*/report.json") for note in json.loads(report.read_text())["notes"]]
            assert not any("averaged" in note for note in notes)
    assert rows["off"] == rows["plain"]


@pytest.mark.parametrize("value", [[200, 0, 390], ["wide"], 280, [float("nan")]])
def test_a_bundle_with_bad_scale_settings_names_its_file(tmp_path: Path, value) -> None:
    from scintipipe.errors import BundleError

    folder = bundle_with(tmp_path, None, None)
    path = folder / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["scintipipe"]["zoom_factors"] = value
    path.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match=r"configs/metadata.json: scintipipe.zoom_factors must be a list of positive numbers"):
        _ = Bundle(folder).zoom_factors
    result = run_cli("run", "--bundle", folder, "--out", tmp_path / "out", REPO / "README.md", expect_exit=None, catch_exceptions=True)
    assert result.exit_code != 0 and "scintipipe.zoom_factors must be a list of positive numbers" in result.output  # the run stops before any file
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_training_loads_one_input_per_view_and_evaluation_keeps_the_scales(scans: dict[str, Path], tmp_path: Path) -> None:
    """The pipeline's option decides: training (scale averaging off) never makes the other
    scales; evaluation's labelled set keeps them for its averaging."""
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.training.data import load_labelled_set

    bundle = Bundle(bundle_with(tmp_path, FOVS, ZOOMS), name="uptake4")
    rows = [(scans["dicom"], "diffusely_increased"), (scans["png"], "focal_increased")]
    pm = make_plugin_manager()
    kept = {}
    for averaging in (True, False):
        options = RunOptions(segment=False, explain=False, report=False, plugin_options={"scale_averaging": averaging})
        data = load_labelled_set(Pipeline(pm, bundle, options), rows)
        kept[averaging] = {row: tuple(inputs.shape) for row, inputs in data.scale_inputs.items()}
    assert kept[True] == {0: (3, 1, 96, 96), 1: (3, 1, 96, 96)} and kept[False] == {}


def bundle_with_threshold(tmp_path: Path, below: object) -> Path:
    """A copy with uptake4's zooms and ``zoom_averaging_below`` set to ``below``."""
    folder = bundle_with(tmp_path / f"below-{below}", FOVS, ZOOMS)
    path = folder / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["scintipipe"]["zoom_averaging_below"] = below
    path.write_text(json.dumps(metadata))
    return folder


def single_pass_top_probabilities(bundle: Bundle, files: list[Path]) -> dict[str, float]:
    """Each scan's top probability at the spacing as acquired, as `run` reports it (temperature-scaled)."""
    from scintipipe.loaders import read_scans

    tops = {}
    for path in files:
        inputs = bundle.scan_transform({"image": read_scans(path)[0]["image"]})["image"][None]
        with torch.inference_mode():
            probs = (bundle.network("cpu")(torch.as_tensor(inputs).as_subclass(torch.Tensor).float()) / bundle.gate.temperature).softmax(1)
        tops[path.name] = float(probs.max())
    return tops


def split_by_a_threshold(scans: dict[str, Path], tmp_path: Path) -> tuple[list[Path], Bundle, dict[str, float], float]:
    """The fixture's DICOMs, the zooming bundle copy, their single-pass top probabilities, and a threshold between the lowest and highest."""
    dicoms = sorted(scans["dicom"].parent.glob("*.dcm"))
    plain = Bundle(bundle_with(tmp_path, FOVS, ZOOMS), name="uptake4")
    tops = single_pass_top_probabilities(plain, dicoms)
    ordered = sorted(tops.values())
    assert len(dicoms) >= 2 and ordered[0] < ordered[-1]
    return dicoms, plain, tops, (ordered[0] + ordered[-1]) / 2  # one scan on each side, at least


@pytest.mark.parametrize("value", [0, 1.5, -0.2, "0.9", True, [0.9]])
def test_a_bundle_with_a_bad_zoom_threshold_names_its_file(tmp_path: Path, value) -> None:
    from scintipipe.errors import BundleError

    folder = bundle_with_threshold(tmp_path, value)
    with pytest.raises(BundleError, match=r"configs/metadata.json: scintipipe.zoom_averaging_below must be a probability in \(0, 1\]"):
        _ = Bundle(folder).zoom_averaging_below
    result = run_cli("run", "--bundle", folder, "--out", tmp_path / "out", REPO / "README.md", expect_exit=None, catch_exceptions=True)
    assert result.exit_code != 0 and "zoom_averaging_below must be a probability" in result.output  # the run stops before any file


def test_confident_scans_skip_the_zooms_and_the_others_are_averaged(scans: dict[str, Path], tmp_path: Path) -> None:
    """With `zoom_averaging_below`, a DICOM whose single-pass top probability reaches the
    threshold gets exactly the single pass's probabilities; one under it gets exactly the
    full average; pictures without spacing keep their fields of view; notes say which."""
    dicoms, plain, tops, threshold = split_by_a_threshold(scans, tmp_path)
    rows = {}
    for name, folder, flags in (
        ("cascade", bundle_with_threshold(tmp_path, threshold), []),
        ("full", bundle_with(tmp_path / "full", FOVS, ZOOMS), []),
        ("single", bundle_with(tmp_path / "single", FOVS, ZOOMS), ["--no-scale-averaging"]),
    ):
        out = tmp_path / f"run-{name}"
        run_cli("run", "--bundle", folder, "--no-explain", "--accept-ood", *flags, "--out", out, *dicoms, scans["png"])
        with (out / "predictions.csv").open(newline="") as handle:
            rows[name] = {Path(row["source"]).name: row for row in csv.DictReader(handle)}
        if name == "cascade":
            notes = {Path(report.parent.name).name: json.loads(report.read_text())["notes"] for report in out.glob("*/report.json")}
    labels = plain.labels
    for path in dicoms:
        expected = "single" if tops[path.name] >= threshold else "full"
        got = np.array([float(rows["cascade"][path.name][f"prob_{label}"]) for label in labels])
        want = np.array([float(rows[expected][path.name][f"prob_{label}"]) for label in labels])
        assert np.allclose(got, want, atol=2e-6), (path.name, expected)
        (case_notes,) = [n for folder, n in notes.items() if folder.startswith(path.stem)]
        if expected == "single":
            assert any("classified once at its pixel spacing" in note for note in case_notes) and zoom_note(ZOOMS) not in case_notes
        else:
            assert zoom_note(ZOOMS) in case_notes
    assert rows["cascade"][scans["png"].name] == rows["full"][scans["png"].name]  # pictures without spacing: unchanged


def test_evaluate_applies_the_zoom_threshold_as_run_does(scans: dict[str, Path], tmp_path: Path) -> None:
    """`scintipipe evaluate` with a threshold: confident DICOMs keep the single pass (plain
    softmax), the others the mean over the zooms."""
    from scintipipe.loaders import read_scans

    dicoms, plain, tops, threshold = split_by_a_threshold(scans, tmp_path)
    folder = bundle_with_threshold(tmp_path, threshold)
    data = scans["dicom"].parent
    rows = evaluated_rows(folder, data, tmp_path / "evaluation")
    network = plain.network("cpu")
    for path in dicoms:
        image = read_scans(path)[0]["image"]
        confident = tops[path.name] >= threshold
        inputs = bundle_input(plain, image) if confident else zoom_inputs(image, plain.scan_transform, ZOOMS)
        with torch.inference_mode():
            expected = network(torch.as_tensor(inputs).as_subclass(torch.Tensor).float()).softmax(1).mean(0).numpy()
        got = np.array([float(rows[path.name][f"prob_{label}"]) for label in plain.labels])
        assert np.allclose(got, expected, atol=2e-6), (path.name, confident)


def bundle_input(bundle: Bundle, image: object) -> torch.Tensor:
    """The single network input at the spacing as acquired, with a batch axis."""
    return torch.as_tensor(bundle.scan_transform({"image": image})["image"]).as_subclass(torch.Tensor)[None]


def test_cascade_benchmark_chooses_the_smallest_threshold_the_rule_allows() -> None:
    """benchmarks/zoom_cascade.py's rule on made-up probabilities: a low threshold that
    changes a call fails; the next one that keeps every call passes."""
    from benchmark_helpers import load_benchmark

    bench = load_benchmark("zoom_cascade")
    truth = np.array([1] + [0] * 399)
    # scan 0: the single pass says 0 at 0.92, the zooms' mean says 1 (the truth); the rest agree everywhere
    single = np.array([[0.92, 0.08]] + [[0.97, 0.03]] * 399)
    averaged = np.array([[0.40, 0.60]] + [[0.96, 0.04]] * 399)
    zoomed = np.ones(400, dtype=bool)
    rows = bench.judge(truth, single, averaged, zoomed, (0.9, 0.95, 0.99))
    assert [r["skipped"] for r in rows] == [400, 399, 0]
    assert [r["disagreements"] for r in rows] == [1, 0, 0] and [r["errors_cascade"] for r in rows] == [1, 0, 0]
    # 1 differing call of 400 is within 0.5 %, and 1 extra error is the minimum allowed: 0.9 meets the rule
    assert rows[0]["meets_rule"] and bench.choose(rows) == 0.9
    # the same disagreement on 100 scans is 1 %: over the limit, so the next threshold is chosen
    rows = bench.judge(truth[:100], single[:100], averaged[:100], zoomed[:100], (0.9, 0.95, 0.99))
    assert not rows[0]["meets_rule"] and bench.choose(rows) == 0.95
    assert bench.choose([{**r, "meets_rule": False} for r in rows]) is None
    probs, skipped = bench.cascade(single, averaged, ~zoomed, 0.5)  # no spacing: never skipped, nothing to average
    assert not skipped.any() and np.array_equal(probs, averaged)


def test_cascade_benchmark_reports_a_threshold_on_a_labelled_folder(scans: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/zoom_cascade.py end to end on a small folder with a copy of uptake4 that averages over zooms."""
    from benchmark_helpers import load_benchmark

    bench = load_benchmark("zoom_cascade")
    folder = bundle_with(tmp_path, FOVS, ZOOMS)
    out = tmp_path / "results"
    assert bench.main(["--bundle", str(folder), "--set", f"mine={scans['dicom'].parent}", "--threshold", "0.9", "--out", str(out)]) == 0
    results = json.loads((out / f"zoom_cascade_{Bundle(folder).name}.json").read_text())
    (row,) = results["tables"]["mine"]
    n_dicoms = len(list(scans["dicom"].parent.glob("*.dcm")))  # the pictures are averaged over fields of view, not zooms
    assert results["sets"]["mine"] == {"folder": str(scans["dicom"].parent), "n": 6, "zoomed": n_dicoms}
    assert row["threshold"] == 0.9 and row["n"] == 6 and 0 <= row["skipped"] <= n_dicoms and "chosen" not in results
    assert "| 0.9 |" in (out / f"zoom_cascade_{Bundle(folder).name}.md").read_text()
    no_zooms = bundle_with(tmp_path / "nozoom", FOVS, None)
    with pytest.raises(SystemExit, match="declares no zoom_factors"):
        bench.main(["--bundle", str(no_zooms), "--set", f"mine={scans['dicom'].parent}", "--out", str(out)])


def test_deferred_zooms_travel_through_forked_worker_processes(tmp_path: Path) -> None:
    """A run long enough to fork worker processes gives the cascade's probabilities exactly
    as a run without workers does (the deferred zooms are made in the runner from the case's image)."""
    out = tmp_path / "sim"
    run_cli("simulate", "--task", "uptake4", "--n", "40", "--seed", "11", "--center", "b", "--out", out, "--no-progress")
    folder = bundle_with_threshold(tmp_path, 0.9)
    rows = {}
    for name, flags in (("processes", ["--worker-processes"]), ("none", ["--workers", "0"])):
        result = tmp_path / f"run-{name}"
        run_cli("run", "--bundle", folder, "--no-explain", "--no-report", "--accept-ood", *flags, "--out", result, *sorted(out.glob("*.dcm")))
        with (result / "predictions.csv").open(newline="") as handle:
            rows[name] = {Path(row["source"]).name: row for row in csv.DictReader(handle)}
    assert len(rows["processes"]) == 40 and rows["processes"] == rows["none"]


def test_a_zoom_that_cannot_be_made_leaves_the_scan_its_single_pass(scans: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deferred zoom that fails in the classify stage costs the scan its averaging, with a
    note that says why, not the batch its predictions."""
    import scintipipe.transforms.unknown_scale as unknown_scale

    def broken(case: dict, transform: object) -> None:
        raise RuntimeError("zoom out of range")

    monkeypatch.setattr(unknown_scale, "make_pending_zoom_inputs", broken)
    rows = {}
    for name, folder, flags in (
        ("broken", bundle_with_threshold(tmp_path, 1.0), []),
        ("single", bundle_with(tmp_path, FOVS, ZOOMS), ["--no-scale-averaging"]),
    ):
        out = tmp_path / f"run-{name}"
        run_cli("run", "--bundle", folder, "--no-explain", "--accept-ood", *flags, "--out", out, scans["dicom"])
        with (out / "predictions.csv").open(newline="") as handle:
            rows[name] = list(csv.DictReader(handle))
        if name == "broken":
            (report,) = out.glob("*/report.json")
            notes = json.loads(report.read_text())["notes"]
    assert rows["broken"] == rows["single"] and len(rows["broken"]) == 1
    assert any("the other zooms could not be made (RuntimeError: zoom out of range)" in note for note in notes)
