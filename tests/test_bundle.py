"""Bundles: resolution, loading once, MONAI's own bundle tools offline."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scintipipe.bundle import SCHEMA_PATH, Bundle, resolve_bundle
from scintipipe.errors import BundleError


def test_bundle_reads_labels_and_builds_network_once(tiny_bundle: Path) -> None:
    bundle = Bundle(tiny_bundle)
    assert bundle.labels == ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]
    assert bundle.input_shape == [32, 32]
    assert bundle.network("cpu") is bundle.network("cpu")
    assert not bundle.network("cpu").training
    assert bundle.clinical_use is False


def test_resolve_by_path_and_unknown_name(tiny_bundle: Path) -> None:
    assert resolve_bundle(str(tiny_bundle), {}).root == tiny_bundle.resolve()
    with pytest.raises(BundleError, match="registered bundles: none"):
        resolve_bundle("no-such-bundle", {})


def test_incomplete_bundle_names_missing_files(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/metadata.json").write_text("{}")
    with pytest.raises(BundleError, match="models/model.pt"):
        Bundle(tmp_path)


def test_mismatched_weights_are_a_clear_error(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    import torch

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    torch.save({"nonsense": torch.zeros(1)}, broken / "models/model.pt")
    with pytest.raises(BundleError, match="do not match"):
        Bundle(broken).network("cpu")


def test_a_bundle_still_in_training_is_refused_by_name(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from cli_helpers import run as invoke
    from cli_helpers import simulate

    training = tmp_path / "half-trained"
    shutil.copytree(tiny_bundle, training)
    metadata_file = training / "configs/metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["scintipipe"]["training_in_progress"] = True  # as scintipipe train writes it before epoch 1
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="still being trained"):
        Bundle(training).network("cpu")
    scans = simulate(tmp_path / "scans", n=2, seed=3, center="a")
    code, output = invoke(["run", "--bundle", str(training), str(scans), "--out", str(tmp_path / "out"), "--no-report"])
    assert code != 0 and "half-trained" in output and "still being trained" in output, output
    assert not (tmp_path / "out/predictions.csv").exists()


def test_bundles_lists_a_registered_bundle_still_in_training_as_unusable(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from cli_helpers import run as invoke

    training = shutil.copytree(tiny_bundle, tmp_path / "half-trained")
    metadata_file = training / "configs/metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["scintipipe"]["training_in_progress"] = True
    metadata_file.write_text(json.dumps(metadata))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "half_trained.py").write_text(
        "from scintipipe import hookimpl\n\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        f"    register.bundle('half-trained', {str(training)!r}, task='uptake4')\n"
    )
    code, output = invoke(["--plugins-dir", str(plugins), "bundles", "--json"])
    assert code == 0, output
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["half-trained"]["status"].startswith("unusable: ") and "still being trained" in rows["half-trained"]["status"]
    assert rows["uptake4"]["status"] == "ok"
    code, output = invoke(["--plugins-dir", str(plugins), "bundles"])
    assert "half-trained [uptake4]" in output and "still being trained" in output


def test_metadata_validates_offline_with_monai_verify_metadata(tiny_bundle: Path, tmp_path: Path) -> None:
    schema_copy = tmp_path / "schema.json"
    schema_copy.write_bytes(SCHEMA_PATH.read_bytes())  # verify_metadata writes nothing when the file exists
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "verify_metadata",
        "--meta_file",
        str(tiny_bundle / "configs/metadata.json"),
        "--filepath",
        str(schema_copy),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "metadata is verified with no error" in done.stdout + done.stderr


def test_schema_rejects_metadata_without_labels(tiny_bundle: Path) -> None:
    import jsonschema

    meta = json.loads((tiny_bundle / "configs/metadata.json").read_text())
    jsonschema.validate(meta, json.loads(SCHEMA_PATH.read_text()))
    del meta["scintipipe"]["labels"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(meta, json.loads(SCHEMA_PATH.read_text()))


def test_monai_bundle_run_classifies_a_folder(tiny_bundle: Path, tmp_path: Path) -> None:
    from PIL import Image

    scans = tmp_path / "scans"
    scans.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(scans / f"s{i}.png")
    # what sits beside scans in a simulator folder must not be read as a scan
    (scans / "labels.csv").write_text("file,label\ns0.png,heterogeneous\n")
    (scans / "cases.jsonl").write_text("{}\n")
    from scintipipe.previews import save_preview_png

    save_preview_png(rng.integers(0, 255, (64, 64), dtype=np.uint8), scans / "contact_sheet.png", "contact sheet")
    out = tmp_path / "eval"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(tiny_bundle / "configs/inference.json"),
        "--bundle_root",
        str(tiny_bundle),
        "--dataset_dir",
        str(scans),
        "--output_dir",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [Path(r["source"]).name for r in rows] == ["s0.png", "s1.png", "s2.png"]
    for row in rows:
        probs = [float(row[f"prob_{label}"]) for label in Bundle(tiny_bundle).labels]
        assert abs(sum(probs) - 1) < 1e-4


def test_monai_bundle_run_with_the_shipped_uptake4_bundle(tmp_path: Path) -> None:
    """MONAI's own runner on the shipped bundle classifies the example scans correctly."""
    repo = Path(__file__).resolve().parents[1]
    bundle, scans = repo / "bundles" / "uptake4", repo / "examples" / "scans"
    out = tmp_path / "eval"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(bundle / "configs/inference.json"),
        "--bundle_root",
        str(bundle),
        "--dataset_dir",
        str(scans),
        "--output_dir",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    truth = {row["file"]: row["label"] for row in csv.DictReader((repo / "examples/labels.csv").open())}
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == len(truth) == 8
    correct = sum(row["label"] == truth[Path(row["source"]).name] for row in rows)
    assert correct >= 7, rows
