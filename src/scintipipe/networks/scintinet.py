"""ScintiNet: the compact CNN shipped as uptake4's default, sized for a 2-core CPU.

Seven 3x3 convolutions (a strided stem, then three stages of a strided and a plain
convolution) with batch norm and ReLU, then global average and global max pooling side by
side (a focal hot spot is a local maximum, which average pooling alone dilutes) and one
linear layer. About 0.16 M parameters (0.66 MB of float32 weights) and about 13 M
multiply-adds per 96x96 image. The stem has 8 filters: they nearly span the 3x3 patches of
a one-channel image, and measured against 16 they nearly doubled the throughput on two CPU
threads. Inputs must be at least 16x16 pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scintipipe.networks.layers import ConvBNAct

MIN_INPUT_SIZE = 16


class ScintiNet(nn.Module):
    """Compact convolutional classifier for 2-D scintigrams.

    Grad-CAM layer: ``features.4`` (the second stage's output, 1/8 of the input: 12x12 for
    a 96x96 input; the last block, ``features``, is too coarse to find a nodule: see
    docs/explanations.md).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        widths: channels of the stem and of the three stages.
        dropout: dropout before the classifier.
    """

    gradcam_layer = "features.4"

    def __init__(self, in_channels: int = 1, num_classes: int = 4, widths: Sequence[int] = (8, 24, 48, 96), dropout: float = 0.2):
        super().__init__()
        stem, *stage_widths = (int(w) for w in widths)
        layers: list[nn.Module] = [ConvBNAct(in_channels, stem, 3, stride=2)]
        previous = stem
        for width in stage_widths:
            layers += [ConvBNAct(previous, width, 3, stride=2), ConvBNAct(width, width, 3)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * previous, num_classes)
        # PyTorch's default initialisation on purpose: He (fan-out) initialisation made the
        # early activations so large that batch norm's running statistics lagged for ~40
        # batches (validation stuck at chance for 8 epochs on 320 scans; 3 with the default).

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        x = self.features(x)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
        return self.fc(self.dropout(pooled))
