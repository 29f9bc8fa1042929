"""AlexNet (Krizhevsky et al., NeurIPS 2012; single-tower variant of the later paper), 2-D.

Inputs must be at least 63x63 pixels (the paper's size is 224x224).
"""

from __future__ import annotations

import torch
from torch import nn

MIN_INPUT_SIZE = 63


class AlexNet(nn.Module):
    """AlexNet: five convolutions, three fully-connected layers, dropout 0.5.

    Grad-CAM layer: ``features.11`` (ReLU after the fifth convolution).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        dropout: dropout before the first two fully-connected layers.
    """

    gradcam_layer = "features.11"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
