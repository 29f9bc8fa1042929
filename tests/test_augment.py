"""Batch augmentation: every setting changes the batch the way it says, and only then."""

from __future__ import annotations

import torch

from scintipipe.training.augment import augment_batch


def _blob_batch(b: int = 8, size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = torch.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * 5.0**2))
    return blob.expand(b, 1, size, size).clone(), torch.arange(b) % 4


def test_no_settings_leaves_the_batch_alone() -> None:
    x, y = _blob_batch()
    out, targets = augment_batch(x, y, 4, {}, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)
    assert torch.equal(targets.argmax(1), y)


def test_zoom_changes_the_blob_size_both_ways() -> None:
    x, y = _blob_batch(64)
    out, _ = augment_batch(x, y, 4, {"zoom_range": [0.6, 1.6]}, torch.Generator().manual_seed(1))
    mass = out.sum((1, 2, 3)) / x[0].sum()
    assert mass.min() < 0.6 and mass.max() > 1.6  # area scales with the square of the zoom


def test_gamma_and_noise_and_blur_change_values_but_keep_the_peak_central() -> None:
    x, y = _blob_batch(32)
    settings = {"gamma_range": [0.6, 1.6], "noise_std": 0.1, "blur_sigma_px": [0.5, 2.0]}
    out, _ = augment_batch(x, y, 4, settings, torch.Generator().manual_seed(2))
    assert not torch.allclose(out, x)
    assert (out >= 0).all()
    flat = out.flatten(1).argmax(1)
    rows, cols = flat // 48, flat % 48
    assert ((rows - 24).abs() <= 4).all() and ((cols - 24).abs() <= 4).all()


def test_blur_lowers_the_peak_of_a_point() -> None:
    x = torch.zeros(16, 1, 21, 21)
    x[:, :, 10, 10] = 1.0
    out, _ = augment_batch(x, torch.zeros(16, dtype=torch.long), 2, {"blur_sigma_px": [1.0, 2.0]}, torch.Generator().manual_seed(3))
    blurred = out.amax((1, 2, 3)) < 0.5
    assert 2 <= int(blurred.sum()) <= 14  # about half the batch
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=1e-4)  # blur keeps the mass


def test_same_generator_seed_same_batch() -> None:
    x, y = _blob_batch()
    settings = {"flip_p": 0.5, "rotate_deg": 10, "zoom_range": [0.8, 1.25], "gamma_range": [0.7, 1.4], "noise_std": 0.05, "blur_sigma_px": [0.3, 1.5]}
    a, _ = augment_batch(x, y, 4, settings, torch.Generator().manual_seed(5))
    b, _ = augment_batch(x, y, 4, settings, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
