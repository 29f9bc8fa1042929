"""The paper's preprocessing: equalisation, GrabCut inside the bed, crop, standardisation;
array and dictionary forms agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from scintipipe.api import make_scan
from scintipipe_remnant import transforms as T


def image_of(case):
    return make_scan(case.counts, "sim.dcm", spacing=(case.pixel_mm, case.pixel_mm), modality="NM", is_counts=True)["image"]


@pytest.mark.parametrize("clahe", [False, True])
def test_equalisation_spreads_the_grey_levels(studies, clahe: bool) -> None:
    img = image_of(studies["present"])
    out = T.EqualizeHistogram(clahe=clahe)(img)
    assert out.shape == img.shape and float(out.min()) >= 0.0 and float(out.max()) == pytest.approx(1.0)
    if not clahe:  # global equalisation: above the lowest level the cumulative histogram is a line
        levels = (out.numpy() * 255).round().astype(int).ravel()
        cdf = np.cumsum(np.bincount(levels, minlength=256)) / levels.size
        occupied = np.unique(levels)
        assert np.abs((cdf[occupied] - cdf[0]) / (1 - cdf[0]) - occupied / 255).max() < 0.02
    before = T.to_uint8(img.numpy()[0]).astype(float)
    assert out.numpy()[0].mean() > before.mean() / 255  # a dark, peaked scan is brightened


@pytest.mark.parametrize("label", ["absent", "present"])
@pytest.mark.parametrize("view", ["anterior", "posterior"])
def test_grabcut_mask_lies_in_the_bed_box_and_keeps_the_bed(studies, label: str, view: str) -> None:
    case = studies[label] if view == "anterior" else studies[label].posterior
    out = T.GrabCutThyroidBed()(T.EqualizeHistogram()(image_of(case)))
    mask, (row0, col0, height, width) = out.meta["thyroid_bed_mask"], out.meta["thyroid_bed_box"]
    box = np.zeros_like(mask)
    box[row0 : row0 + height, col0 : col0 + width] = True
    assert mask.any() and not (mask & ~box).any()  # nothing outside the box
    assert mask.sum() < 0.8 * box.sum()  # GrabCut removed part of the box
    assert not out.numpy()[0][~mask].any()  # background zeroed
    assert (case.masks["remnant"] & ~mask).sum() == 0  # every residual-tissue pixel kept
    bed = case.masks["thyroid_bed"]
    assert (bed & mask).sum() >= 0.6 * bed.sum()


def test_crop_and_resize_give_the_configured_size(studies) -> None:
    img = T.GrabCutThyroidBed()(T.EqualizeHistogram()(image_of(studies["present"])))
    crop = T.CropThyroidBed()(img)
    assert tuple(crop.shape[1:]) == tuple(img.meta["thyroid_bed_box"][2:])
    assert "thyroid_bed_mask" not in crop.meta and crop.meta["spacing"] == (2.4, 2.4)


def test_standardisation_uses_the_given_mean_and_std() -> None:
    x = torch.full((1, 4, 4), 0.75)
    assert torch.allclose(T.StandardizeChannels(mean=[0.5], std=[0.25])(x), torch.ones(1, 4, 4))
    three = T.StandardizeChannels(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], repeat=3)(x)
    assert three.shape == (3, 4, 4) and three[0, 0, 0] == pytest.approx((0.75 - 0.485) / 0.229, rel=1e-5)


def test_array_and_dictionary_forms_agree(studies) -> None:
    img = image_of(studies["present"])
    array = Compose([T.EqualizeHistogram(clahe=True), T.GrabCutThyroidBed(), T.CropThyroidBed(), T.StandardizeChannels()])(img)
    dictionary = Compose(
        [T.EqualizeHistogramd("image", clahe=True), T.GrabCutThyroidBedd("image"), T.CropThyroidBedd("image"), T.StandardizeChannelsd("image")]
    )({"image": img})
    assert torch.equal(torch.as_tensor(array), torch.as_tensor(dictionary["image"]))


def test_bundle_config_builds_the_transforms_by_dotted_path() -> None:
    from scintipipe.api import Bundle
    from scintipipe_remnant import BUNDLE_DIR

    names = [type(t).__name__ for t in Bundle(BUNDLE_DIR).scan_transform.transforms]
    assert names[:3] == ["EqualizeHistogramd", "GrabCutThyroidBedd", "CropThyroidBedd"] and names[-1] == "StandardizeChannelsd"
