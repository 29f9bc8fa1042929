"""The scale-free segmenter features and the quantitative baseline (small scale, real simulator)."""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from scintipipe.scan import make_scan
from scintipipe.segment import segment_neck
from scintipipe.segment.features import FEATURE_NAMES, noise_power_summary, radial_profile, region_features, scan_features
from scintipipe.training.quantitative import extract_features, feature_matrix, fit_baseline, late_fusion, load_baseline, save_baseline

REPO = Path(__file__).resolve().parents[1]


@cache
def _factory():
    from scintipipe.plugins import make_plugin_manager, simulators

    return simulators(make_plugin_manager()).simulators["uptake4"]


@cache
def simulated(label: str, seed: int, centre: str = "a"):
    """One uptake4 case from the registered simulator (what ``scintipipe simulate`` uses)."""
    from scintipipe.simulate.centers import get_center

    return _factory()(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))), get_center(centre), label)


def display(counts: np.ndarray) -> np.ndarray:
    top = float(np.percentile(counts, 99.8)) or 1.0
    return (255 * np.clip(counts / top, 0, 1)).astype(np.uint8)


def test_thyroid_to_salivary_is_higher_for_diffusely_increased_than_decreased() -> None:
    increased = [extract_features((simulated("diffusely_increased", s).counts, (1.09375, 1.09375))) for s in range(3)]
    decreased = [extract_features((simulated("diffusely_decreased", s).counts, (1.09375, 1.09375))) for s in range(3)]
    key = "log_thyroid_to_salivary"
    up = np.median([f.get(key, -math.inf) for f in increased])
    down = np.median([f.get(key, -math.inf) for f in decreased])
    assert up > down + 0.3, (up, down)
    # and the same holds on 8-bit display renderings without spacing (the crops' case)
    up_display = np.median([extract_features(display(simulated("diffusely_increased", s).counts)).get(key, -math.inf) for s in range(3)])
    down_display = np.median([extract_features(display(simulated("diffusely_decreased", s).counts)).get(key, -math.inf) for s in range(3)])
    assert up_display > down_display


def test_region_features_do_not_change_with_the_intensity_scale() -> None:
    counts = simulated("heterogeneous", 1).counts.astype(np.float64)
    rois = segment_neck(counts, None)
    plain = region_features(counts, rois)
    scaled = region_features(7.3 * counts, rois)
    assert set(plain) == set(scaled) and set(plain) <= set(FEATURE_NAMES)
    assert plain["thyroid_found"] == 1.0
    for name, value in plain.items():
        assert scaled[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert not any(name.endswith("_mm2") or "_mm" in name for name in plain)


def test_missing_regions_leave_features_out_instead_of_nan() -> None:
    image = np.random.default_rng(0).poisson(5.0, (64, 64)).astype(float)
    features = region_features(image, {})
    assert features["thyroid_found"] == 0.0
    assert all(math.isfinite(v) for v in features.values())
    assert "log_thyroid_to_salivary" not in features


def test_extract_features_reads_scans_and_reuses_pipeline_regions() -> None:
    case = simulated("diffusely_increased", 2)
    scan = make_scan(case.counts, "case.dcm", spacing=(case.pixel_mm, case.pixel_mm))
    from_scan = extract_features(scan)
    assert from_scan == scan_features(case.counts, (case.pixel_mm, case.pixel_mm))
    # with the segment stage's regions present, those regions are used (here: none found)
    empty = {name: np.zeros(case.counts.shape, bool) for name in ("thyroid_right", "thyroid_left")}
    assert extract_features({**scan, "segmentation": {"rois": empty}})["thyroid_found"] == 0.0


def test_noise_and_profile_summaries() -> None:
    rng = np.random.default_rng(1)
    white = rng.poisson(50.0, (128, 128)).astype(float)
    nps = noise_power_summary(white)
    assert abs(nps["nps_slope"]) < 0.5 and 0.6 < nps["nps_high_to_low"] < 1.6
    from scipy import ndimage

    blurred = noise_power_summary(ndimage.gaussian_filter(white, 1.5))
    assert blurred["nps_slope"] < nps["nps_slope"] - 1 and blurred["nps_high_to_low"] < 0.2
    rows, cols = np.indices((100, 100))
    blob = np.exp(-((rows - 50) ** 2 + (cols - 50) ** 2) / 200.0)
    profile = radial_profile(blob, (50, 50), np.array([0, 0.05, 0.1, 0.2]))
    assert profile[0] == 1.0 and profile[0] > profile[1] > profile[2]


def test_baseline_fits_on_a_tiny_simulated_set_and_predicts(tmp_path: Path) -> None:
    labels = ["diffusely_increased", "diffusely_decreased"]
    feats, truth = [], []
    for label in labels:
        for seed in range(10, 16):
            counts = simulated(label, seed).counts
            # half as counts with spacing, half as display renderings without (as the benchmark's --views mixed)
            feats.append(extract_features((counts, (1.09375, 1.09375)) if seed % 2 else display(counts)))
            truth.append(label)
    baseline = fit_baseline(feats, truth, label_order=["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"], cv=3)
    assert baseline.chosen in {"logistic", "hist_gradient_boosting"} and set(baseline.cv_scores) == {"logistic", "hist_gradient_boosting"}
    assert baseline.n_train == {"diffusely_decreased": 6, "diffusely_increased": 6}
    fresh = [(label, extract_features(display(simulated(label, seed).counts))) for label in labels for seed in (40, 41)]
    probs = baseline.predict_proba([f for _, f in fresh])
    assert probs.shape == (4, 4) and np.allclose(probs.sum(axis=1), 1.0) and np.all(probs[:, 2:] == 0)
    predicted = baseline.predict([f for _, f in fresh])
    assert sum(p == label for p, (label, _) in zip(predicted, fresh, strict=True)) >= 3, predicted
    path = save_baseline(baseline, tmp_path / "baseline.joblib")
    assert path.with_suffix(".joblib.json").is_file()
    assert np.allclose(load_baseline(path).predict_proba([f for _, f in fresh]), probs)


def test_fit_baseline_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="two labels"):
        fit_baseline([{"thyroid_cv": 0.1}, {"thyroid_cv": 0.2}], ["a", "a"])
    with pytest.raises(ValueError, match="labels"):
        fit_baseline([{"thyroid_cv": 0.1}], ["a", "b"])


def test_feature_matrix_and_late_fusion() -> None:
    x = feature_matrix([{"thyroid_cv": 0.5}, {}])
    assert x.shape == (2, len(FEATURE_NAMES)) and np.isnan(x[1]).all()
    fused = late_fusion(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), weights=[3, 1])
    assert np.allclose(fused, [[0.75, 0.25]])


@pytest.mark.slow
def test_benchmark_runs_on_tiny_folders(tmp_path: Path, tiny_bundle: Path) -> None:
    """benchmarks/quantitative_baseline.py end to end on PNG folders (tiny shape-only bundle)."""
    from PIL import Image

    def folder(name: str, seeds: range) -> Path:
        out = tmp_path / name
        out.mkdir()
        rows = ["file,label"]
        for label in ("diffusely_increased", "diffusely_decreased"):
            for seed in seeds:
                Image.fromarray(display(simulated(label, seed).counts)).save(out / f"{label}-{seed}.png")
                rows.append(f"{label}-{seed}.png,{label}")
        (out / "labels.csv").write_text("\n".join(rows) + "\n")
        return out

    train, external = folder("train", range(10, 16)), folder("external", range(40, 42))
    spec = importlib.util.spec_from_file_location("quantitative_baseline", REPO / "benchmarks" / "quantitative_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results"
    code = module.main(
        [
            "--train",
            str(train),
            "--external",
            str(external),
            "--bundle",
            str(tiny_bundle),
            "--cv",
            "3",
            "--reference",
            str(tmp_path / "absent"),
            "--out",
            str(out),
            "--no-docs",
        ]
    )
    assert code == 0
    import json

    results = json.loads((out / "quantitative_baseline.json").read_text())
    assert [t["name"] for t in results["tests"]] == ["external"]
    models = results["tests"][0]["models"]
    assert set(models) == {"network", "baseline", "fusion"} and all(m["n"] == 4 for m in models.values())
    assert models["baseline"]["correct"] >= 3
    assert "| test set (never used to fit or choose) |" in (out / "quantitative_baseline.md").read_text()


def test_external_folders_are_pooled_and_read_by_the_named_label_column(tmp_path: Path) -> None:
    """The stand-in simulator's labels.csv has a column per task and empty labels for cases
    outside the task; two such folders may repeat file stems."""
    spec = importlib.util.spec_from_file_location("quantitative_baseline", REPO / "benchmarks" / "quantitative_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path / "ss17"
    folder.mkdir()
    (folder / "labels.csv").write_text("file,uptake4,disease\nimages/case_0000.dcm,focal_increased,thyroid_tumour\nimages/case_0001.dcm,,normal\n")
    assert module.read_labels(folder, "uptake4") == [(folder / "images/case_0000.dcm", "focal_increased")]
    assert [label for _, label in module.read_labels(folder, "disease")] == ["thyroid_tumour", "normal"]
    with pytest.raises(ValueError, match=r"ss17/labels.csv has no label column \(columns: file, uptake4, disease\)"):
        module.read_labels(folder)

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def dicom(path: Path, value: int) -> Path:
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.20", generate_uid()
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 4, 4, 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation, ds.PhotometricInterpretation = 1, 0, "MONOCHROME2"
        ds.PixelData = (np.arange(16, dtype=np.uint16) * value).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path

    same_stem = [(dicom(tmp_path / f"s{seed}" / "case_0000.dcm", seed), "x") for seed in (1, 2)]
    copies = module.write_display_copies(same_stem, tmp_path / "display")
    assert len({path for path, _ in copies}) == 2 and all(path.is_file() for path, _ in copies)


def test_score_predictions_counts_any_accepted_label_and_refusals_as_wrong() -> None:
    """The benchmarks' one scoring helper: accuracy, Wilson interval, recall by the case's own class."""
    from benchmark_helpers import load_benchmark

    common = load_benchmark("_common")
    truth = [("a",), ("a",), ("b", "c"), ("b", "c"), ("c",)]
    scored = common.score_predictions(["a", None, "c", "a", "c"], truth, ["a", "b", "c"])
    assert scored["correct"].tolist() == [True, False, True, False, True]
    assert (scored["k"], scored["n"], scored["accuracy"]) == (3, 5, 0.6)
    low, high = scored["wilson95"]
    assert low < 0.6 < high
    assert scored["recall"] == {
        "a": {"k": 1, "n": 2, "sensitivity": 0.5},
        "b": {"k": 1, "n": 2, "sensitivity": 0.5},
        "c": {"k": 1, "n": 1, "sensitivity": 1.0},
    }
    paired = common.mcnemar_exact(np.array([True, True, True, False]), np.array([False, False, True, False]))
    assert (paired["only_first_correct"], paired["only_second_correct"]) == (2, 0)
    assert paired["p_value"] == pytest.approx(0.5)
