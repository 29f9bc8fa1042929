"""SqueezeNet 1.1 (Iandola et al., 2016; the v1.1 revision with 2.4x less computation), 2-D.

Inputs must be at least 17x17 pixels (the paper's size is 224x224).
"""

from __future__ import annotations

import torch
from torch import nn

MIN_INPUT_SIZE = 17


class Fire(nn.Module):
    """Fire module: 1x1 squeeze, then 1x1 and 3x3 expand side by side.

    Args:
        in_channels: input channels.
        squeeze: channels of the squeeze layer.
        expand1x1: channels of the 1x1 expand layer.
        expand3x3: channels of the 3x3 expand layer.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze, expand, concatenate."""
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1 with a convolutional classifier (1x1 conv, ReLU, global average pool).

    Grad-CAM layer: ``features.12`` (the last Fire module).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        dropout: dropout before the classifier convolution.
    """

    gradcam_layer = "features.12"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, 1)
        nn.init.normal_(final_conv.weight, mean=0.0, std=0.01)
        assert final_conv.bias is not None  # Conv2d has a bias unless bias=False
        nn.init.zeros_(final_conv.bias)
        self.classifier = nn.Sequential(nn.Dropout(dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` (non-negative, as in the paper's design)."""
        return torch.flatten(self.classifier(self.features(x)), 1)
