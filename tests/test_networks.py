"""The network library: shapes, reference parameter counts, Grad-CAM layers, paper head.

Inputs are small (the minimum size and 96 px, batch 1-2) to keep the file fast on CPU.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from monai.bundle import ConfigParser
from monai.visualize import GradCAM
from torch import nn

from scintipipe.networks import NETWORKS, PAPER_BACKBONES, BackboneWithHead, PaperHead, ScintiNet, build_network, gradcam_layer, network_spec

# Parameter counts of the reference architectures at 3 input channels and 1000 classes
# (the common ImageNet implementations; Inception-v3 without its auxiliary classifier).
REFERENCE_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "efficientnet_b0": 5_288_548,
    "seresnet50": 28_088_024,
    "inception_v3": 23_834_568,
    "inception_resnet_v2": 55_843_464,
    "alexnet": 61_100_840,
    "squeezenet1_1": 1_235_496,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032,
}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@cache
def grey_model(name: str) -> nn.Module:
    """One-channel, four-class network, built once per test session."""
    torch.manual_seed(0)
    return build_network(name, num_classes=4, in_channels=1).eval()


def sizes(name: str) -> list[int]:
    return sorted({network_spec(name).min_size, 96})


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_grey_forward_shapes_at_minimum_and_96_px(name):
    model = grey_model(name)
    with torch.no_grad():
        for size in sizes(name):
            assert model(torch.rand(1, 1, size, size)).shape == (1, 4), size


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_reference_parameter_count_and_colour_forward(name):
    model = build_network(name, num_classes=1000, in_channels=3).eval()
    assert count(model) == REFERENCE_PARAMS[name]
    with torch.no_grad():
        assert model(torch.rand(1, 3, network_spec(name).min_size, network_spec(name).min_size)).shape == (1, 1000)


def test_grey_input_only_changes_the_first_convolution():
    # ResNet-18 at one channel and four classes: 11.69 M - 2 * 64 * 7 * 7 (stem) - 996 * 513 (fc).
    assert count(grey_model("resnet18")) == 11_689_512 - 2 * 64 * 49 - 996 * 513


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_gradcam_runs_on_the_declared_layer(name):
    model = grey_model(name)
    layer = gradcam_layer(name)
    assert gradcam_layer(model) == layer
    model.get_submodule(layer)  # the path exists
    size = max(64, network_spec(name).min_size)
    cam = GradCAM(nn_module=model, target_layers=layer)(torch.rand(2, 1, size, size), class_idx=1)
    assert cam.shape == (2, 1, size, size)
    assert torch.isfinite(cam).all()
    for param in model.parameters():
        param.grad = None


def test_scintinet_is_small_and_fast_enough_to_ship():
    model = ScintiNet(in_channels=1, num_classes=4)
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert weight_bytes < 1_000_000
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7
    assert model.features(torch.rand(1, 1, 96, 96)).shape == (1, 96, 6, 6)  # Grad-CAM grid


def test_paper_head_is_three_linear_layers_with_dropout():
    head = PaperHead(2048, 4)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 1024), (1024, 512), (512, 4)]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.8, 0.8]


@pytest.mark.parametrize("backbone", PAPER_BACKBONES)
def test_backbone_with_head_replaces_the_last_layer(backbone):
    model = BackboneWithHead(backbone, num_classes=4, in_channels=1).eval()
    assert isinstance(model.head, PaperHead)
    assert not isinstance(model.backbone.get_submodule(network_spec(backbone).classifier), nn.Linear)
    model.get_submodule(gradcam_layer(model))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 75, 75)).shape == (1, 4)


def test_inception_paper_head_option():
    model = build_network("inception_v3", num_classes=4, paper_head=True)
    assert isinstance(model.fc, PaperHead)


def test_recipe_configs_instantiate_by_dotted_path():
    parser = ConfigParser(
        {
            "paper": {
                "_target_": "scintipipe.networks.BackboneWithHead",
                "backbone": "resnet50",
                "in_channels": 1,
                "hidden": [1024, 512],
                "dropout": 0.8,
                "num_classes": 4,
            },
            "inception": {"_target_": "scintipipe.networks.InceptionV3", "in_channels": 1, "num_classes": 4},
            "default": {"_target_": "scintipipe.networks.ScintiNet", "in_channels": 1, "num_classes": 4},
            "by_name": {"_target_": "scintipipe.networks.build_network", "name": "shufflenet_v2_x0_5", "num_classes": 4},
        }
    )
    for key, cls in (("paper", BackboneWithHead), ("default", ScintiNet)):
        assert isinstance(parser.get_parsed_content(key), cls)
    assert parser.get_parsed_content("inception").fc.out_features == 4
    assert parser.get_parsed_content("by_name").fc.out_features == 4


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(KeyError, match="scintinet"):
        build_network("resnet9000", num_classes=4)
