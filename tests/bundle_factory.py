"""The shape-only test bundle: random weights, 32x32 input. Its outputs are NOT meaningful and
no test may treat them as a classification result, only as the right shape."""

from __future__ import annotations

from pathlib import Path

import torch

from scintipipe.bundle_writer import bundle_metadata, write_bundle

UPTAKE4_LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


def make_tiny_bundle(folder: Path, labels: list[str] | None = None, explain: bool = True) -> Path:
    """Write a shape-only bundle (random weights, 32x32 input) for testing the machinery."""
    labels = labels or UPTAKE4_LABELS
    network_def = {
        "_target_": "monai.networks.nets.Classifier",
        "in_shape": [1, 32, 32],
        "classes": len(labels),
        "channels": [4, 8],
        "strides": [2, 2],
    }
    torch.manual_seed(0)
    from monai.networks.nets import Classifier

    net = Classifier(in_shape=(1, 32, 32), classes=len(labels), channels=(4, 8), strides=(2, 2))
    metadata = bundle_metadata(
        name="tiny",
        task="uptake4",
        labels=labels,
        input_shape=[32, 32],
        description="Shape-only test bundle with random weights; its outputs mean nothing.",
        network="monai Classifier (random weights)",
        explain_layer="net.layer_1" if explain else None,
    )
    scan_transforms = [
        {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"},
        {"_target_": "Resized", "keys": "image", "spatial_size": [32, 32], "mode": "area"},
        {"_target_": "ScaleIntensityd", "keys": "image"},
    ]
    return write_bundle(folder, state_dict=net.state_dict(), metadata=metadata, network_def=network_def, scan_transforms=scan_transforms, model_card="# tiny\nShape-only test bundle.\n")
