"""benchmarks/real_images.py and benchmarks/realism.py: discovery, scoring, marked sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark_helpers import load_benchmark

REPO = Path(__file__).resolve().parents[1]

README = """\
# Test images

## figure-crops/ (display images with a diagnosis)

| file | diagnosis | uptake pattern |
|---|---|---|
| DG_sim.png | diffuse goitre (Graves') | diffusely increased |
| TI_sim.png | thyroiditis | diffusely decreased |

## siemens-thyroid/

| file | what it is |
|---|---|
| syringe_full.dcm | a full syringe |
"""


@pytest.fixture(scope="module")
def real_images():
    return load_benchmark("real_images")


def _display(counts: np.ndarray) -> np.ndarray:
    top = float(np.percentile(counts, 99.8)) or 1.0
    return (255 * np.clip(counts / top, 0, 1)).astype(np.uint8)


@pytest.fixture(scope="module")
def fake_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A README-like folder with two simulated display PNGs and a syringe file."""
    from PIL import Image

    from scintipipe.plugins import make_plugin_manager, simulators
    from scintipipe.simulate.centers import get_center

    factory = simulators(make_plugin_manager()).simulators["uptake4"]
    root = tmp_path_factory.mktemp("reference")
    (root / "figure-crops").mkdir()
    (root / "siemens-thyroid").mkdir()
    for name, label in (("DG_sim", "diffusely_increased"), ("TI_sim", "diffusely_decreased")):
        case = factory(np.random.default_rng(5), get_center("a"), label)
        Image.fromarray(_display(case.counts)).save(root / "figure-crops" / f"{name}.png")
    (root / "siemens-thyroid" / "syringe_full.dcm").write_bytes(b"not really a dicom")
    (root / "README.md").write_text(README)
    return root


def test_marker_replacement_is_idempotent(real_images, tmp_path: Path) -> None:
    text = "# Card\n\nSome text.\n"
    once = real_images.replace_marked(text, "real-images", "table v1")
    assert once.startswith(text.rstrip("\n")) and "<!-- real-images:start -->\ntable v1\n<!-- real-images:end -->" in once
    assert real_images.replace_marked(once, "real-images", "table v1") == once
    twice = real_images.replace_marked(once + "\n## After\nkept\n", "real-images", "table v2")
    assert "table v1" not in twice and "table v2" in twice and twice.endswith("## After\nkept\n") and twice.count("real-images:start") == 1
    card = tmp_path / "README.md"
    card.write_text(text)
    real_images.update_file(card, "real-images", "x")
    first = card.read_text()
    real_images.update_file(card, "real-images", "x")
    assert card.read_text() == first
    # another section's markers are left alone
    other = real_images.replace_marked(first, "realism", "y")
    assert real_images.replace_marked(other, "real-images", "x") == other


def test_readme_mapping_and_discovery(real_images, fake_reference: Path) -> None:
    diagnoses = real_images.readme_diagnoses(fake_reference / "README.md")
    assert diagnoses == {"DG_sim.png": "diffuse goitre (Graves')", "TI_sim.png": "thyroiditis"}
    images = {i.name: i for i in real_images.discover(fake_reference)}
    assert images["figure-crops/DG_sim.png"].expected("uptake4") == ("diffusely_increased",)
    assert images["figure-crops/TI_sim.png"].expected("disease") == ("subacute_thyroiditis",)
    assert images["figure-crops/DG_sim.png"].expected("remnant") is None
    assert "syringe" in images["siemens-thyroid/syringe_full.dcm"].excluded


@pytest.mark.slow
def test_runs_bundle_on_a_reference_like_folder(real_images, fake_reference: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    """Through `scintipipe run`: two scored rows, a score line with a Wilson interval.
    (The tiny bundle has random weights: only the shape of the result is checked.)"""
    out = tmp_path / "out"
    assert real_images.main(["--reference", str(fake_reference), "--bundle", str(tiny_bundle), "--out", str(out), "--no-docs"]) == 0
    results = json.loads((out / "real_images.json").read_text())
    entry = results["bundles"][str(tiny_bundle)]
    assert [row["image"] for row in entry["rows"]] == ["figure-crops/DG_sim.png", "figure-crops/TI_sim.png"]
    for row in entry["rows"]:
        assert row["prediction"] in entry["labels"] and row["correct"] in (True, False)
        assert 0.0 <= row["p_expected"] <= 1.0 and row["p_prediction"] == pytest.approx(max(row["probabilities"].values()))
    assert entry["score"]["n"] == 2 and entry["score"]["wilson95"] is not None
    assert results["excluded"] == [{"image": "siemens-thyroid/syringe_full.dcm", "reason": results["excluded"][0]["reason"]}]
    md = (out / "real_images.md").read_text()
    assert "correct (" in md and "Wilson 95 % interval" in md
    # re-rendering from the JSON gives the same markdown (used to refresh docs after a rerun)
    again = tmp_path / "again"
    assert real_images.main(["--from-json", str(out / "real_images.json"), "--out", str(again), "--no-docs"]) == 0
    assert (again / "real_images.md").read_text() == md


def test_missing_reference_exits_cleanly(real_images, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert real_images.main(["--reference", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 0
    assert "not found" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_realism_statistics_on_a_simulated_display_image() -> None:
    realism = load_benchmark("realism")
    from scintipipe.plugins import make_plugin_manager, simulators
    from scintipipe.simulate.centers import get_center

    case = simulators(make_plugin_manager()).simulators["uptake4"](np.random.default_rng(3), get_center("a"), "diffusely_increased")
    stats = realism.image_statistics(realism.display_rendering(case.counts))
    assert {"thyroid_to_background", "gland_width_fraction", "nps_slope", "nps_high_to_low", "radial_04_08"} <= set(stats)
    assert stats["thyroid_to_background"] > 1 and 0 < stats["gland_width_fraction"] < 1
    simulated = {"a": {"diffusely_increased": [stats, {**stats, "thyroid_to_background": stats["thyroid_to_background"] * 2}]}}
    rows = realism.compare(
        [{"image": "x.png", "code": "DG", "classes": ["diffusely_increased"], "statistics": {"thyroid_to_background": 1e6}}], simulated
    )
    assert rows[0]["checks"]["thyroid_to_background"]["centres"]["a"]["inside"] is False
    assert "x.png" in realism.render({"n": 2, "seed": 0, "centres": ["a"], "date": "d", "commit": "c", "comparison": rows})


def test_realism_export_rendering_reads_back_a_display_export_as_the_crops_are(tmp_path: Path) -> None:
    """``--rendering export``: the training exports' chain, decoded by the loaders, then the same statistics."""
    realism = load_benchmark("realism")
    from scintipipe.plugins import make_plugin_manager, simulators
    from scintipipe.simulate.centers import get_center

    case = simulators(make_plugin_manager()).simulators["uptake4"](np.random.default_rng(3), get_center("b"), "diffusely_increased")
    pixels = realism.export_rendering(case, np.random.default_rng(5), tmp_path)
    assert pixels.ndim == 2 and pixels.shape != case.counts.shape  # framed and resampled, not the detector grid
    assert pixels.max() <= 255 and pixels.min() >= 0
    stats = realism.image_statistics(pixels)
    assert stats["thyroid_to_background"] > 1  # the gland is still the hottest thing in the picture
    again = realism.export_rendering(case, np.random.default_rng(5), tmp_path)
    np.testing.assert_array_equal(pixels, again)  # the export's choices come from its generator alone
    results = {"n": 1, "seed": 0, "centres": ["b"], "date": "d", "commit": "c", "comparison": [], "rendering": "export"}
    text = realism.render(results)
    assert "display-export chain" in text and "--rendering export" in text
    realism.write_outputs(results, tmp_path / "out", docs=False)
    assert (tmp_path / "out" / "realism_exports.md").is_file() and not (tmp_path / "out" / "realism.md").exists()


@pytest.mark.reference
def test_reference_folder_mapping(real_images, reference_scans: Path) -> None:
    """The real folder: 8 crops and the Siemens study; the syringe excluded; the PNG rendering run, not scored."""
    images = {i.name: i for i in real_images.discover(reference_scans)}
    scored = {task: sorted(name for name, i in images.items() if i.expected(task)) for task in ("uptake4", "disease", "remnant")}
    assert len(scored["disease"]) == 9 and "siemens-thyroid/thyroid_99mTc_ANT_deid.dcm" in scored["disease"]
    assert len(scored["uptake4"]) == 6 and not any("NL_" in name or "siemens" in name for name in scored["uptake4"])
    assert scored["remnant"] == []
    assert images["figure-crops/NG_O.png"].expected("uptake4") == ("heterogeneous", "focal_increased")
    assert images["siemens-thyroid/syringe_full_99mTc_2frames_deid.dcm"].excluded
    assert images["siemens-thyroid/thyroid_99mTc_ANT_deid.png"].unscored and not images["siemens-thyroid/thyroid_99mTc_ANT_deid.png"].excluded
    assert images["figure-crops/DG_O.png"].diagnosis == "diffuse goitre (Graves')"


def test_realism_percentile_ranks_say_how_typical_a_real_value_is() -> None:
    """A real value at the simulated median ranks 50; one beyond every simulated value 100;
    the closeness table counts them against what draws from the simulator would give."""
    realism = load_benchmark("realism")
    simulated = {"a": {"normal": [{"thyroid_cv": float(v)} for v in range(1, 101)]}}
    real = [
        {"image": "typical.png", "code": "NL", "classes": ["normal"], "statistics": {"thyroid_cv": 50.5}},
        {"image": "odd.png", "code": "NL", "classes": ["normal"], "statistics": {"thyroid_cv": 1000.0}},
    ]
    rows = realism.compare(real, simulated)
    ranks = [row["checks"]["thyroid_cv"]["centres"]["a"]["percentile"] for row in rows]
    assert ranks == [50.0, 100.0]
    lines = realism.closeness_lines(rows, ["a"])
    assert "| a | 2 | 50 % | 50 % | 25.0 |" in lines  # one of two central, one of two within 5-95, mean |rank - 50| = 25
    assert realism.closeness_lines([{**row, "checks": {}} for row in rows], ["a"]) == []  # nothing ranked: no table
    text = realism.render({"n": 100, "seed": 0, "centres": ["a"], "date": "d", "commit": "c", "comparison": rows})
    assert "Closeness" in text and "p100" in text
