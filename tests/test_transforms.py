"""Camera-invariance transforms: spacing, field of view, count level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scintipipe.scan import make_scan
from scintipipe.transforms import CropNeckRegion, CropNeckRegiond, NormalizeCounts, NormalizeCountsd, ResampleToSpacing, ResampleToSpacingd


def gland(shape: int, spacing: float, centre_mm: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A smooth 'gland' of fixed physical size on a grid of ``shape`` pixels of ``spacing`` mm."""
    coords = (np.arange(shape) - shape / 2 + 0.5) * spacing
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    return 2 + 100 * np.exp(-(((yy - centre_mm[0]) / 20) ** 2 + ((xx - centre_mm[1]) / 30) ** 2))


def test_resample_puts_different_matrices_on_one_grid() -> None:
    fine = make_scan(gland(256, 1.2), "fine", spacing=(1.2, 1.2))["image"]
    coarse = make_scan(gland(128, 2.4), "coarse", spacing=(2.4, 2.4))["image"]
    a, b = ResampleToSpacing(2.4)(fine), ResampleToSpacing(2.4)(coarse)
    assert a.shape == b.shape == (1, 128, 128)
    assert a.meta["spacing"] == (2.4, 2.4)
    assert np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1] > 0.99


def test_resample_assumes_a_field_of_view_without_spacing() -> None:
    export = make_scan(gland(220, 1.0), "export.png")["image"]
    assert ResampleToSpacing(2.2, default_fov_mm=242)(export).shape == (1, 110, 110)


def test_crop_centres_on_off_centre_activity() -> None:
    img = make_scan(gland(160, 2.0, centre_mm=(40, -30)), "x", spacing=(2.0, 2.0))["image"]
    out = CropNeckRegion((64, 64))(img)
    assert out.shape == (1, 64, 64)
    peak = np.unravel_index(int(out[0].argmax()), (64, 64))
    assert abs(peak[0] - 32) <= 2 and abs(peak[1] - 32) <= 2
    assert out.meta["crop_centre"] == pytest.approx((80 + 20, 80 - 15), abs=2)


def test_crop_pads_with_zeros_at_the_edge() -> None:
    img = make_scan(gland(64, 2.0, centre_mm=(50, 50)), "x", spacing=(2.0, 2.0))["image"]
    out = CropNeckRegion((96, 96))(img)
    assert out.shape == (1, 96, 96) and float(out[0, -1, -1]) == 0.0


def test_normalisation_removes_the_count_level() -> None:
    rng = np.random.default_rng(1)
    base = gland(128, 2.2)
    low = make_scan(rng.poisson(base), "low")["image"]
    high = make_scan(rng.poisson(3 * base), "high")["image"]
    a, b = NormalizeCounts()(low), NormalizeCounts()(high)
    assert float(a.max()) <= 1.5 and float(a.min()) >= 0
    assert abs(float(a.mean()) - float(b.mean())) < 0.02
    raw_gap = abs(float(low.mean()) - float(high.mean())) / float(high.mean())
    assert raw_gap > 0.5  # the raw inputs differ a lot, the normalised ones don't


def test_normalisation_is_exactly_scale_invariant_without_noise() -> None:
    img = make_scan(gland(96, 2.2), "x")["image"]
    a = NormalizeCounts(smooth_px=0)(img)
    b = NormalizeCounts(smooth_px=0)(img * 7)
    assert torch.allclose(torch.as_tensor(a), torch.as_tensor(b), atol=1e-5)


@pytest.mark.parametrize(
    "array_cls, dict_cls, kwargs",
    [
        (ResampleToSpacing, ResampleToSpacingd, {"spacing_mm": 3.0}),
        (CropNeckRegion, CropNeckRegiond, {"size_px": (48, 48)}),
        (NormalizeCounts, NormalizeCountsd, {}),
    ],
)
def test_dictionary_forms_delegate(array_cls, dict_cls, kwargs) -> None:
    img = make_scan(np.random.default_rng(0).poisson(gland(100, 2.0)), "x", spacing=(2.0, 2.0))["image"]
    assert torch.equal(torch.as_tensor(dict_cls(keys="image", **kwargs)({"image": img})["image"]), torch.as_tensor(array_cls(**kwargs)(img)))


@pytest.mark.parametrize("transform", [ResampleToSpacing(3.0), CropNeckRegion((48, 48)), NormalizeCounts()])
def test_transforms_return_the_metatensor_monai_would_build(transform) -> None:
    """The transforms copy their input's attributes instead of calling ``MetaTensor.__init__``
    (for speed); the result must be what ``MetaTensor(array, meta=...)`` gives."""
    from monai.data import MetaTensor

    img = make_scan(np.random.default_rng(1).poisson(gland(100, 2.0)), "x", spacing=(2.0, 2.0))["image"]
    img.applied_operations.append({"class": "Earlier"})
    out = transform(img)
    reference = MetaTensor(out.as_tensor(), meta=dict(out.meta))
    assert isinstance(out, MetaTensor)
    assert out.meta["filename_or_obj"] == "x" and out.meta.keys() == reference.meta.keys()
    assert torch.equal(out.affine, reference.affine) and out.spatial_ndim == reference.spatial_ndim == 2
    assert out.applied_operations == reference.applied_operations == [] and out.is_batch is reference.is_batch is False
    out.meta["changed"] = True
    assert "changed" not in img.meta, "the output's metadata is its own dict"


@pytest.mark.parametrize("shape", [(128, 128), (97, 131), (10, 10), (3, 40), (2, 2)])
@pytest.mark.parametrize("sigma", [0.8, 1.3, 3.0])
def test_gaussian_smooth_gives_scipys_gaussian_filter(shape: tuple[int, int], sigma: float) -> None:
    from scipy import ndimage

    from scintipipe.transforms.scintigram import gaussian_smooth

    image = np.random.default_rng(sum(shape)).poisson(30, size=shape).astype(np.float32)
    image[0, 0] = 400  # a hot corner: the mirrored edge must match too
    expected = ndimage.gaussian_filter(image, sigma)
    assert np.allclose(gaussian_smooth(image, sigma), expected, rtol=1e-5, atol=1e-4)
