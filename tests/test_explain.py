"""Saliency maps: shape, range, class choice, method choice and mapping onto the scan.

The tiny bundle has random weights: with it only shapes and ranges are checked, never
what the maps highlight; where the evidence is known, a hand-built network checks that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scintipipe.api import RunContext
from scintipipe.builtin.explain_gradcam import explain_batch, explain_with
from scintipipe.bundle import Bundle
from scintipipe.explain import METHODS, class_activation_maps, heatmap_on_scan, occlusion_maps
from scintipipe.plugins import explainers, make_plugin_manager


@pytest.fixture(scope="module")
def bundle(tiny_bundle: Path) -> Bundle:
    return Bundle(tiny_bundle)


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_class_activation_maps_have_the_input_shape_and_lie_in_0_1(bundle: Bundle, method: str) -> None:
    inputs = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    maps = class_activation_maps(bundle.network("cpu"), bundle.explain_layer, inputs, [0, 2, 0], method)
    assert maps.shape == (3, 32, 32)
    assert maps.dtype == np.float32 and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


def test_each_class_gets_its_own_map(bundle: Bundle) -> None:
    inputs = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    network = bundle.network("cpu")
    per_class = [class_activation_maps(network, bundle.explain_layer, inputs, [label], "gradcam")[0] for label in range(len(bundle.labels))]
    assert any(not np.allclose(per_class[0], other) for other in per_class[1:])


def test_occlusion_sensitivity_needs_no_layer(bundle: Bundle) -> None:
    inputs = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    maps = occlusion_maps(bundle.network("cpu"), inputs, [1])
    assert maps.shape == (1, 32, 32) and maps.min() >= 0.0 and maps.max() == pytest.approx(1.0)


class OneSpot(torch.nn.Module):
    """Class 1's logit is the mean of a 5x5 spot centred at ``(row, col)``: the only evidence."""

    def __init__(self, row: int, col: int) -> None:
        super().__init__()
        self.row, self.col = row, col

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spot = x[:, 0, self.row - 2 : self.row + 3, self.col - 2 : self.col + 3].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(spot), 8 * spot], dim=1)


@pytest.mark.parametrize(("row", "col"), [(40, 57), (23, 71), (61, 30), (70, 66)])
def test_occlusion_peaks_within_2_px_of_the_only_evidence(row: int, col: int) -> None:
    """With the default patch overlap the map's peak finds a small spot wherever it lies
    (with patches overlapping by 0.25 it landed 5-7 px off for these spots)."""
    maps = occlusion_maps(OneSpot(row, col).eval(), torch.ones(1, 1, 96, 96), [1])
    peak_row, peak_col = np.unravel_index(int(np.argmax(maps[0])), maps[0].shape)
    assert max(abs(int(peak_row) - row), abs(int(peak_col) - col)) <= 2


def test_occlusion_prints_no_library_deprecation_warning() -> None:
    """MONAI's occlusion indexes in a way torch deprecates; users of `scintipipe run` should not see that on every scan."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = occlusion_maps(OneSpot(40, 57).eval(), torch.ones(1, 1, 96, 96), [1])
    assert maps.shape == (1, 96, 96)


def test_the_hook_follows_the_method_the_context_names(bundle: Bundle) -> None:
    inputs = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    registered = explainers(make_plugin_manager(load_entry_points=False)).explainers
    assert set(registered) == set(METHODS) == {"gradcam", "gradcampp", "occlusion"}

    def explain(**options: str) -> np.ndarray:
        return explain_batch(inputs, [0, 1], bundle, "cpu", RunContext(options=options, explainers=registered))

    plain, cam, plus, occlusion = (
        explain(),
        explain(explain_method="gradcam"),
        explain(explain_method="gradcampp"),
        explain(explain_method="occlusion"),
    )
    assert plain.shape == plus.shape == occlusion.shape == (2, 32, 32)
    np.testing.assert_allclose(plain, cam)  # gradcam is the default
    assert not np.allclose(cam, occlusion)
    with pytest.raises(KeyError, match="no explainer named 'lime'; registered: gradcam, gradcampp, occlusion"):
        explain(explain_method="lime")
    with pytest.raises(ValueError, match="unknown explain method"):
        explain_with("lime", inputs, [0, 1], bundle, "cpu")


def test_a_bundle_declaring_its_explain_method_gets_it_unless_the_run_names_another(tiny_bundle: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from scintipipe.report.content import explain_method_of

    folder = tmp_path / "declaring"
    shutil.copytree(tiny_bundle, folder)
    metadata_path = folder / "configs" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["scintipipe"]["explain_method"] = "occlusion"
    metadata_path.write_text(json.dumps(metadata))
    declaring, plain = Bundle(folder), Bundle(tiny_bundle)
    registered = explainers(make_plugin_manager(load_entry_points=False)).explainers
    inputs = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(5))

    def explain(bundle: Bundle, **options: str) -> np.ndarray:
        return explain_batch(inputs, [0, 1], bundle, "cpu", RunContext(options=options, explainers=registered, bundle=bundle))

    np.testing.assert_allclose(explain(declaring), explain(plain, explain_method="occlusion"))
    np.testing.assert_allclose(explain(declaring, explain_method="gradcam"), explain(plain))
    assert explain_method_of(RunContext(options={}, bundle=declaring)) == "occlusion"
    assert explain_method_of(RunContext(options={"explain_method": "gradcampp"}, bundle=declaring)) == "gradcampp"
    assert explain_method_of(RunContext(options={}, bundle=plain)) == "gradcam"


def test_heatmap_goes_back_to_where_the_crop_came_from() -> None:
    # scan 200x200 at 1.1 mm; input resampled to 2.2 mm (100x100) and cropped 32x32 around (60, 40)
    heat = np.zeros((32, 32), np.float32)
    heat[16, 16] = 1.0  # the crop centre
    on_scan = heatmap_on_scan(heat, {"crop_centre": (60, 40), "spacing": (2.2, 2.2)}, {"spacing": (1.1, 1.1)}, (200, 200))
    assert on_scan.shape == (200, 200)
    row, col = np.unravel_index(int(on_scan.argmax()), on_scan.shape)
    assert abs(row - 120.5) <= 1 and abs(col - 80.5) <= 1
    assert on_scan[:60].max() == 0.0  # outside the crop: nothing


def test_heatmap_without_crop_is_resized_over_the_scan() -> None:
    heat = np.zeros((32, 32), np.float32)
    heat[:, 16:] = 1.0
    on_scan = heatmap_on_scan(heat, {}, {"spacing": None}, (128, 96))
    assert on_scan.shape == (128, 96)
    assert on_scan[:, :40].max() < 0.1 and on_scan[:, 60:].min() > 0.9
