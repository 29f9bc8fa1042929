"""Faithfulness measures on inputs whose evidence is known: a bright blob, a network that
responds to it, hand-made maps; and masks that stay on their structure through the
bundle's geometric preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from torch import nn

from scintipipe.explain import class_activation_maps
from scintipipe.explain.faithfulness import (
    case_measures,
    deletion_insertion,
    energy_share,
    peak_on_border,
    pointing_game_hit,
    preprocess_masks,
    recommend,
    saliency_peak,
    summarise,
    wilson_interval,
)
from scintipipe.scan import make_scan
from scintipipe.transforms import CropNeckRegiond, NormalizeCountsd, ResampleToSpacingd

SIZE = 32


def blob_image(row: int = 12, col: int = 20, size: int = SIZE, sigma: float = 2.0, background: float = 0.1) -> np.ndarray:
    rr, cc = np.mgrid[:size, :size]
    return (background + np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * sigma**2))).astype(np.float32)


def blob_mask(row: int = 12, col: int = 20, size: int = SIZE, radius: float = 3.0) -> np.ndarray:
    rr, cc = np.mgrid[:size, :size]
    return (rr - row) ** 2 + (cc - col) ** 2 <= radius**2


class BlobNet(nn.Module):
    """Fixed weights: class 0's logit grows with the brightest smoothed spot, class 1's is 0.

    Two strided 3x3 averaging convolutions (padded by 1, like ScintiNet's) then global
    max and average pooling, so Grad-CAM on ``features`` must light up the blob.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False), nn.ReLU(), nn.Conv2d(2, 2, 3, stride=2, padding=1, bias=False), nn.ReLU()
        )
        with torch.no_grad():
            self.features[0].weight.fill_(1.0 / 9)
            self.features[2].weight.fill_(1.0 / 18)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[4.0, 4.0, 8.0, 8.0], [0.0, 0.0, 0.0, 0.0]]))
            self.fc.bias.copy_(torch.tensor([-6.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.fc(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))


@pytest.fixture(scope="module")
def net() -> BlobNet:
    return BlobNet().eval()


def test_a_map_on_the_blob_hits_and_a_border_map_misses() -> None:
    mask = blob_mask()
    on_blob = blob_image(background=0.0)
    border = np.zeros((SIZE, SIZE), np.float32)
    border[0, :] = 1.0
    assert pointing_game_hit(on_blob, mask) and not peak_on_border(on_blob)
    assert not pointing_game_hit(border, mask) and peak_on_border(border)
    # a peak one pixel outside the nodule still counts (tolerance), five pixels out does not
    near = np.zeros((SIZE, SIZE), np.float32)
    near[12, 24] = 1.0
    far = np.zeros((SIZE, SIZE), np.float32)
    far[12, 28] = 1.0
    assert pointing_game_hit(near, mask, tolerance_px=2) and not pointing_game_hit(near, mask, tolerance_px=0)
    assert not pointing_game_hit(far, mask, tolerance_px=2)


def test_a_flat_plateau_peaks_at_its_middle_not_at_the_corner() -> None:
    plateau = np.zeros((SIZE, SIZE), np.float32)
    plateau[10:15, 18:23] = 1.0
    assert saliency_peak(plateau) == (12, 20)


def test_energy_share_counts_only_positive_mass_inside_the_mask() -> None:
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    heat = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, -5, 0], [0, 0, 0, 0]], np.float32)
    assert energy_share(heat, mask) == pytest.approx(0.5)
    assert np.isnan(energy_share(np.zeros((4, 4)), mask))
    measures = case_measures(blob_image(background=0.0), blob_mask(), blob_mask(radius=8))
    assert measures["hit"] and measures["thyroid_share"] > 0.9 and not measures["border_peak"]


def test_deletion_of_a_correct_map_drops_the_score_faster_than_a_random_map(net: BlobNet) -> None:
    x = torch.as_tensor(blob_image())[None, None]
    correct = blob_image(background=0.0)[None]
    random = np.random.default_rng(0).random((1, SIZE, SIZE)).astype(np.float32)
    good = deletion_insertion(net, x, [0], correct, steps=16, baseline="zero")
    bad = deletion_insertion(net, x, [0], random, steps=16, baseline="zero")
    assert good["deletion"].shape == (1, 17)
    assert good["deletion"][0, 0] == pytest.approx(bad["deletion"][0, 0])  # same start: the intact image
    assert good["deletion_auc"][0] < bad["deletion_auc"][0] - 0.1
    assert good["insertion_auc"][0] > bad["insertion_auc"][0] + 0.1


def test_gradcam_points_at_the_blob_and_is_not_inverted(net: BlobNet) -> None:
    # MONAI's default normaliser maps the maximum to 0: the blob would be the darkest place
    for row, col in [(12, 20), (22, 8)]:
        x = torch.as_tensor(blob_image(row, col))[None, None]
        heat = class_activation_maps(net, "features", x, [0], "gradcam")[0]
        assert heat.max() == pytest.approx(1.0)
        assert pointing_game_hit(heat, blob_mask(row, col)), saliency_peak(heat)
        assert heat[blob_mask(row, col)].mean() > 2 * heat[~blob_mask(row, col, radius=8)].mean()


@pytest.mark.parametrize("centre", [(150, 100), (40, 200)])
def test_masks_stay_on_their_blob_through_resample_and_crop(centre: tuple[int, int]) -> None:
    # a 256 x 256 scan at 1.1 mm with a bright blob; the crop (2.2 mm, 64 px) centres on the
    # activity; the second blob sits near the top edge so the crop is zero-padded there
    rows, cols = np.mgrid[:256, :256]
    counts = 5.0 + 400.0 * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * 12.0**2))
    counts += 200.0 * np.exp(-((rows - centre[0] - 30) ** 2 + (cols - centre[1] + 20) ** 2) / (2 * 8.0**2))  # off-centre second structure
    mask = (rows - centre[0] - 30) ** 2 + (cols - centre[1] + 20) ** 2 <= 10.0**2
    scan = make_scan(counts, "blob.dcm", spacing=(1.1, 1.1), is_counts=True, modality="NM")
    transforms = Compose(
        [ResampleToSpacingd(keys="image", spacing_mm=2.2), CropNeckRegiond(keys="image", size_px=(64, 64)), NormalizeCountsd(keys="image")]
    )
    image = transforms({"image": scan["image"]})["image"]
    on_input = preprocess_masks({"second": mask}, scan["image"], image.meta, transforms)["second"]
    assert on_input.shape == (64, 64) and on_input.any()
    pixels = image[0].numpy()
    near = np.zeros_like(on_input)
    r0, c0 = np.argwhere(on_input).mean(0).round().astype(int)
    near[max(r0 - 6, 0) : r0 + 7, max(c0 - 6, 0) : c0 + 7] = True
    local = np.where(near, pixels, 0.0)
    peak = np.unravel_index(int(local.argmax()), local.shape)
    assert abs(peak[0] - r0) <= 1 and abs(peak[1] - c0) <= 1
    assert on_input.sum() == pytest.approx(np.pi * 5.0**2, rel=0.25)  # 10 mm radius at 2.2 mm


def test_an_unknown_geometric_transform_is_refused() -> None:
    scan = make_scan(np.ones((32, 32)) * np.arange(32), "a.dcm", spacing=(2.2, 2.2))

    class Flip:
        def __call__(self, img):
            return img.flip(-1)

    with pytest.raises(ValueError, match="cannot replay Flip"):
        preprocess_masks({"m": np.ones((32, 32), bool)}, scan["image"], {}, [Flip()])


def test_wilson_interval_and_summary() -> None:
    low, high = wilson_interval(36, 40)
    assert low == pytest.approx(0.7695, abs=1e-3) and high == pytest.approx(0.9604, abs=1e-3)
    assert wilson_interval(0, 0) != wilson_interval(0, 0)  # nan
    rows = [
        {"label": "focal", "hit": True, "thyroid_share": 0.5, "border_peak": False},
        {"label": "focal", "hit": False, "thyroid_share": 0.3, "border_peak": True},
        {"label": "gland", "hit": True, "thyroid_share": 0.7, "border_peak": False},
    ]
    s = summarise(rows, ["focal"])
    assert s["pointing_focal"]["hits"] == 1 and s["pointing_focal"]["n"] == 2
    assert s["pointing_gland"]["rate"] == 1.0 and s["border_peak_fraction"] == pytest.approx(1 / 3)


def test_recommend_prefers_an_affordable_method_that_reaches_the_target() -> None:
    def summary(focal: float, ms: float, deletion: float = 0.5, insertion: float = 0.9, border: float = 0.0) -> dict:
        return {
            "pointing_focal": {"rate": focal},
            "pointing_gland": {"rate": 0.5},
            "thyroid_share": 0.3,
            "ms_per_case": ms,
            "deletion_auc": deletion,
            "insertion_auc": insertion,
            "border_peak_fraction": border,
        }

    summaries = {
        "gradcam@features": summary(0.2, 5),
        "gradcam@features.4": summary(0.92, 6),
        "gradcam@features.2": summary(0.97, 6, deletion=0.68, insertion=0.70, border=0.25),  # points, but no better than chance
        "occlusion": summary(0.98, 150),
        "random": summary(0.0, 0, deletion=0.7, insertion=0.7, border=0.1),
        "gradcam-monai@features": summary(1.0, 1),  # the old behaviour is never chosen
    }
    rec = recommend(summaries, target=0.9, max_ms=100)
    assert (rec["method"], rec["layer"], rec["meets_target"], rec["faithful"]) == ("gradcam", "features.4", True, True)
    assert recommend(summaries, target=0.9, max_ms=200)["method"] == "gradcam"  # both reach the target: the cheaper one
    summaries["gradcam@features.4"] = summary(0.85, 6)
    assert recommend(summaries, target=0.9, max_ms=200)["method"] == "occlusion"  # only occlusion reaches it and is affordable
    assert recommend(summaries, target=0.9, max_ms=100)["meets_target"] is False  # it is not affordable here
    assert recommend({"gradcam@features": summary(0.2, 5)}, target=0.9)["meets_target"] is False
