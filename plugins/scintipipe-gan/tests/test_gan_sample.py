"""``scintipipe gan sample``: labelled synthetic DICOMs, tagged so, that scintipipe still loads."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pydicom
import pytest
import torch

from scintipipe.api import ScintipipeError, run_cli
from scintipipe_gan.data import load_real, to_bundle
from scintipipe_gan.quality import Gates, check_gan


@pytest.fixture(scope="module")
def checked_gan(tmp_path_factory: pytest.TempPathFactory, tiny_gan: Path, real, bundle) -> Path:
    """The tiny GAN, checked with the diversity gate off (8 steps cannot pass it; that gate has its own test)."""
    gan = tmp_path_factory.mktemp("checked") / "gan"
    shutil.copytree(tiny_gan, gan)
    check_gan(gan, real, bundle, n_per_class=4, gates=Gates(min_diversity=0.0), log=lambda m: None)
    return gan


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, checked_gan: Path) -> Path:
    """8 samples of the tiny GAN itself."""
    out = tmp_path_factory.mktemp("samples") / "synthetic"
    done = run_cli("gan", "sample", str(checked_gan), "--n", "8", "--out", str(out), "--class-mix", "balanced", "--seed", "2")
    assert "wrote 8 synthetic scans" in done.output
    return out


@pytest.fixture(scope="module")
def scan_like_samples(tmp_path_factory: pytest.TempPathFactory, checked_gan: Path, scan_like_generator) -> Path:
    """8 samples written from scan-like images (see ``scan_like_generator``)."""
    out = tmp_path_factory.mktemp("samples") / "scan-like"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("scintipipe_gan.train.generate", scan_like_generator)
        done = run_cli("gan", "sample", str(checked_gan), "--n", "8", "--out", str(out), "--class-mix", "balanced", "--seed", "0")
    assert "wrote 8 synthetic scans" in done.output
    return out


def test_the_layout_is_simulates(samples: Path) -> None:
    with open(samples / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == [f"case-{i:05d}.dcm" for i in range(8)]
    assert sorted({row["label"] for row in rows}) == ["diffusely_decreased", "diffusely_increased", "focal_increased", "heterogeneous"]
    assert (samples / "contact_sheet.png").stat().st_size > 0
    summary = json.loads((samples / "synthetic.json").read_text())
    assert summary["synthetic"] is True and summary["generator_step"] == 8
    assert summary["counts_per_label"] == {"diffusely_increased": 2, "diffusely_decreased": 2, "focal_increased": 2, "heterogeneous": 2}
    with open(samples / "samples.csv", newline="") as handle:
        assert all(float(row["nearest_training_correlation"]) <= 0.97 for row in csv.DictReader(handle))


def test_every_file_is_tagged_synthetic(samples: Path) -> None:
    for path in sorted(samples.glob("case-*.dcm")):
        ds = pydicom.dcmread(path)
        assert list(ds.ImageType)[:2] == ["DERIVED", "PRIMARY"]  # NM Image: value 2 must be PRIMARY
        assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99SCINTIPIPE"
        assert ds.BurnedInAnnotation == "NO"
        assert ds.ImageComments == "SYNTHETIC (scintipipe-gan DCGAN), not an acquisition"
        code = ds.DerivationCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator) == ("SYNTH-GAN", "99SCINTIPIPE")
        assert code.CodeMeaning == "GAN-generated synthetic image, not an acquisition" and len(code.CodeMeaning) <= 64
        assert "Synthetic" in ds.DerivationDescription
        assert ds.SeriesDescription.startswith("SYNTHETIC") and ds.SeriesDescription != "ANT"
        assert str(ds.PatientName).startswith("SYNTHETIC^GAN")
        assert ds.Modality == "NM" and ds.Rows == ds.Columns == 96 and float(ds.PixelSpacing[0]) == pytest.approx(2.2)


def test_scintipipe_loads_them_and_its_gate_judges_them_like_scans(samples: Path, scan_like_samples: Path, bundle, scan_like_generator) -> None:
    """The same load, gate and preprocess stages as ``run`` and ``train``: the loader reads every
    file; the content gate refuses the tiny GAN's near-uniform images as flood images (as it
    would a flood acquisition) and admits scan-like ones, whose inputs come back as written."""
    try:
        refused = load_real(bundle, samples, progress=False).failures
    except ScintipipeError as exc:  # all eight refused, so nothing was loaded
        refused = [("all", str(exc))]
    assert refused and all("content gate" in reason for _, reason in refused)
    data = load_real(bundle, scan_like_samples, progress=False)
    assert data.failures == [] and data.inputs.shape == (8, 1, 96, 96)
    written = to_bundle(scan_like_generator(None, data.targets, 0), (96, 96))
    for index, got in enumerate(data.inputs):  # count rounding and smoothing change them a little
        scores = [best_overlap_correlation(got[0], image[0], max_shift=8) for image in written]
        assert scores[index] > 0.95 and scores[index] == max(scores), scores  # each comes back as its own written image


def best_overlap_correlation(got: torch.Tensor, expected: torch.Tensor, max_shift: int) -> float:
    """The highest correlation of two images over their overlap, shifting one by up to ``max_shift`` pixels.

    The neck crop may centre a re-loaded crop a few pixels away from where it was written (on
    its hottest spot: a focal gland of seed 4 moves 6 px, leaving an empty band at the edge).
    """
    rows, cols = got.shape
    best = -1.0
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            a = got[max(dy, 0) : rows + min(dy, 0), max(dx, 0) : cols + min(dx, 0)]
            b = expected[max(-dy, 0) : rows + min(-dy, 0), max(-dx, 0) : cols + min(-dx, 0)]
            best = max(best, float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1]))
    return best


def test_sampling_needs_a_current_check(tmp_path: Path, checked_gan: Path) -> None:
    unchecked = tmp_path / "unchecked"
    shutil.copytree(checked_gan, unchecked)
    (unchecked / "quality.json").unlink()
    done = run_cli("gan", "sample", str(unchecked), "--n", "2", "--out", str(tmp_path / "a"), expect_exit=2)
    assert "has not been checked" in done.output
    stale = tmp_path / "stale"
    shutil.copytree(checked_gan, stale)
    quality = json.loads((stale / "quality.json").read_text())
    quality["generator_step"] = 4
    (stale / "quality.json").write_text(json.dumps(quality))
    done = run_cli("gan", "sample", str(stale), "--n", "2", "--out", str(tmp_path / "b"), expect_exit=2)
    assert "run scintipipe gan check again" in done.output
