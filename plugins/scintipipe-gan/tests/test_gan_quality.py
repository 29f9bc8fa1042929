"""The quality gates: FID and KID from the bundle's own features, diversity, memorisation, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from scintipipe.api import run_cli
from scintipipe_gan.data import to_gan
from scintipipe_gan.quality import check_gan, fid, kid, nearest_similarity, penultimate_features
from scintipipe_gan.sample import SamplingRefused, sample_scans


@pytest.fixture(scope="module")
def features(real, bundle) -> torch.Tensor:
    return penultimate_features(bundle.network("cpu"), real.inputs)


def test_features_are_the_bundle_networks_penultimate_layer(features, real) -> None:
    assert features.shape == (16, 192)  # ScintiNet: average and maximum pooled 96 channels


def test_identical_sets_give_fid_and_kid_near_zero(features) -> None:
    far = features + features.std(0) * 2  # every feature moved by two standard deviations
    assert fid(far, features) > 1.0
    assert fid(features, features) < 1e-3 * fid(far, features)
    same, _ = kid(features, features)
    moved, _ = kid(far, features)
    assert moved > 0 and abs(same) < 1e-2 * moved


def test_kid_and_fid_grow_with_the_distance(features) -> None:
    near, far = features + features.std(0) * 0.5, features + features.std(0) * 2
    assert fid(features, features) < fid(near, features) < fid(far, features)
    assert kid(near, features)[0] < kid(far, features)[0]


def test_memorisation_finds_the_copied_training_image(real) -> None:
    images = to_gan(real.inputs, 32)
    similarity, index = nearest_similarity(images[[5, 9]], images)
    assert similarity.tolist() == pytest.approx([1.0, 1.0], abs=1e-5) and index.tolist() == [5, 9]
    others, _ = nearest_similarity(images, images, exclude_self=True)
    assert float(others.max()) < 0.999


def collapse(gan_dir: Path) -> None:
    """Zero the generator's last layer: one constant image whatever the noise."""
    path = gan_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    last = max(k for k in state["generator"] if k.startswith("net.") and k.endswith(".weight"))
    state["generator"][last].zero_()
    torch.save(state, path)


def test_a_collapsed_generator_is_refused(tmp_path: Path, tiny_gan: Path, real, bundle) -> None:
    gan = tmp_path / "gan"
    shutil.copytree(tiny_gan, gan)
    collapse(gan)
    report = check_gan(gan, real, bundle, n_per_class=6, log=lambda m: None)
    assert report["refused_classes"] == real.labels and not report["passed"]
    assert all(row["diversity_ratio"] == pytest.approx(0, abs=1e-6) for row in report["per_class"].values())
    with pytest.raises(SamplingRefused, match="refused to sample from diffusely_increased.*collapsed"):
        sample_scans(gan, 4, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.dcm"))


def test_a_memorising_generator_is_refused(tmp_path: Path, tiny_gan: Path, real, bundle, monkeypatch) -> None:
    """A generator that returns its training images passes diversity, and sample still refuses it."""
    gan = tmp_path / "gan"
    shutil.copytree(tiny_gan, gan)
    copies = to_gan(real.inputs, 32)

    def copying_generator(generator, labels, seed, batch_size=64):
        picks = [int(torch.nonzero(real.targets == int(y))[(seed + i) % 4]) for i, y in enumerate(labels)]
        return copies[picks].clone()

    monkeypatch.setattr("scintipipe_gan.train.generate", copying_generator)
    report = check_gan(gan, real, bundle, n_per_class=4, log=lambda m: None)
    assert report["memorisation"]["above_bound"] == 16
    assert report["memorisation"]["synthetic_nearest"]["min"] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(SamplingRefused, match="memorisation bound"):
        sample_scans(gan, 4, tmp_path / "out", class_mix={"focal_increased": 1})


def test_check_prints_and_writes_quality_json(tmp_path: Path, tiny_gan: Path, scans: Path) -> None:
    gan = tmp_path / "gan"
    shutil.copytree(tiny_gan, gan)
    done = run_cli("gan", "check", str(gan), "--data", str(scans), "--n-per-class", "4", "--min-diversity", "0", "--no-progress")
    assert "FID" in done.output and "KID" in done.output and "memorisation" in done.output
    report = json.loads((gan / "quality.json").read_text())
    assert report["generator_step"] == 8 and report["real"]["same_data_as_training"]
    assert set(report["per_class"]) == {"diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"}
    assert report["fid"] >= 0 and "mean" in report["kid"] and report["passed"]
    assert (gan / "memorisation_reference.pt").is_file()
