"""load_init_weights: transfer learning from a local weights file the user supplies."""

from __future__ import annotations

import pytest
import torch

from scintipipe.networks import InitWeightsError, build_network, load_init_weights


def colour_resnet():
    torch.manual_seed(1)
    return build_network("resnet_tiny", num_classes=1000, in_channels=3)


def grey_resnet():
    torch.manual_seed(2)
    return build_network("resnet_tiny", num_classes=4, in_channels=1)


def test_colour_weights_initialise_a_grey_network(tmp_path):
    source = colour_resnet()
    path = tmp_path / "imagenet-like.pt"
    torch.save(source.state_dict(), path)
    target = grey_resnet()
    fresh_fc = target.fc.weight.detach().clone()
    report = load_init_weights(target, path)
    assert report["adapted"] == ["conv1.weight"]
    assert torch.allclose(target.conv1.weight, source.conv1.weight.sum(1, keepdim=True))
    assert set(report["skipped"]) == {"fc.weight", "fc.bias"}
    assert torch.equal(target.fc.weight, fresh_fc)  # the classifier keeps its initialisation
    assert torch.equal(target.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    assert report["missing"] == [] and report["unexpected"] == []
    assert "layer4.0.conv1.weight" in report["loaded"]


@pytest.mark.parametrize("wrap", ["state_dict", "model"])
def test_checkpoint_dicts_and_data_parallel_prefixes(tmp_path, wrap):
    source = grey_resnet()
    path = tmp_path / "checkpoint.pt"
    torch.save({wrap: {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, path)
    target = build_network("resnet_tiny", num_classes=4, in_channels=1)
    report = load_init_weights(target, path, strict=True)
    assert not report["skipped"] and not report["missing"]
    assert torch.equal(target.fc.weight, source.fc.weight)


def test_strict_refuses_a_partial_load(tmp_path):
    path = tmp_path / "colour.pt"
    torch.save(colour_resnet().state_dict(), path)
    with pytest.raises(InitWeightsError, match="unloaded"):
        load_init_weights(grey_resnet(), path, strict=True)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InitWeightsError, match="does not exist"):
        load_init_weights(grey_resnet(), tmp_path / "nowhere.pt")


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a weights file" * 10)
    with pytest.raises(InitWeightsError, match="cannot be read"):
        load_init_weights(grey_resnet(), path)


def test_file_without_tensors_or_shared_names(tmp_path):
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(InitWeightsError, match="no state dict"):
        load_init_weights(grey_resnet(), empty)
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.weight": torch.zeros(8, 3), "encoder.bias": torch.zeros(8)}, foreign)
    with pytest.raises(InitWeightsError, match="shares no tensor"):
        load_init_weights(grey_resnet(), foreign)
