"""Inception-ResNet-v2 (Szegedy et al., "Inception-v4, Inception-ResNet...", AAAI 2017), 2-D.

Module names follow the widely used reference port (``conv2d_1a`` ... ``conv2d_7b``), so
weights saved from it load by name. Input images must be at least 75x75 pixels (the
paper's size is 299x299).
"""

from __future__ import annotations

import torch
from torch import nn

from scintipipe.networks.head import classifier_or_paper_head
from scintipipe.networks.layers import BasicConv2d

MIN_INPUT_SIZE = 75


class Mixed5b(nn.Module):
    """Stem output block: 192 -> 320 channels on the 35x35 grid."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(192, 96, 1)
        self.branch1 = nn.Sequential(BasicConv2d(192, 48, 1), BasicConv2d(48, 64, 5, padding=2))
        self.branch2 = nn.Sequential(BasicConv2d(192, 64, 1), BasicConv2d(64, 96, 3, padding=1), BasicConv2d(96, 96, 3, padding=1))
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), BasicConv2d(192, 64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches."""
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class ResidualInceptionBlock(nn.Module):
    """Shared logic of the residual blocks: ``relu(x + scale * conv2d(cat(branches)))``."""

    scale: float
    apply_relu: bool = True
    conv2d: nn.Module
    relu: nn.Module

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        """Outputs of the block's branches."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled residual update of ``x``."""
        out = x + self.scale * self.conv2d(torch.cat(self.branches(x), 1))
        return self.relu(out) if self.apply_relu else out


class Block35(ResidualInceptionBlock):
    """Inception-ResNet-A (35x35 grid, 320 channels)."""

    def __init__(self, scale: float = 0.17):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(320, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(320, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv2d(320, 32, 1), BasicConv2d(32, 48, 3, padding=1), BasicConv2d(48, 64, 3, padding=1))
        self.conv2d = nn.Conv2d(128, 320, 1)
        self.relu = nn.ReLU()

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Three branches."""
        return [self.branch0(x), self.branch1(x), self.branch2(x)]


class Mixed6a(nn.Module):
    """Reduction-A: 35x35x320 -> 17x17x1088."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(320, 384, 3, stride=2)
        self.branch1 = nn.Sequential(BasicConv2d(320, 256, 1), BasicConv2d(256, 256, 3, padding=1), BasicConv2d(256, 384, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the three branches."""
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Block17(ResidualInceptionBlock):
    """Inception-ResNet-B (17x17 grid, 1088 channels)."""

    def __init__(self, scale: float = 0.10):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1088, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 128, 1), BasicConv2d(128, 160, (1, 7), padding=(0, 3)), BasicConv2d(160, 192, (7, 1), padding=(3, 0))
        )
        self.conv2d = nn.Conv2d(384, 1088, 1)
        self.relu = nn.ReLU()

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Two branches."""
        return [self.branch0(x), self.branch1(x)]


class Mixed7a(nn.Module):
    """Reduction-B: 17x17x1088 -> 8x8x2080."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(1088, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(1088, 256, 1), BasicConv2d(256, 288, 3, stride=2))
        self.branch2 = nn.Sequential(BasicConv2d(1088, 256, 1), BasicConv2d(256, 288, 3, padding=1), BasicConv2d(288, 320, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches."""
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block8(ResidualInceptionBlock):
    """Inception-ResNet-C (8x8 grid, 2080 channels); the last one has no ReLU."""

    def __init__(self, scale: float = 0.20, apply_relu: bool = True):
        super().__init__()
        self.scale = scale
        self.apply_relu = apply_relu
        self.branch0 = BasicConv2d(2080, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(2080, 192, 1), BasicConv2d(192, 224, (1, 3), padding=(0, 1)), BasicConv2d(224, 256, (3, 1), padding=(1, 0))
        )
        self.conv2d = nn.Conv2d(448, 2080, 1)
        self.relu = nn.ReLU()

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Two branches."""
        return [self.branch0(x), self.branch1(x)]


class InceptionResNetV2(nn.Module):
    """Inception-ResNet-v2 for 2-D images with any number of input channels.

    Grad-CAM layer: ``conv2d_7b`` (the final 1x1 convolution, 1536 channels).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        dropout: dropout before the classifier (0.2 as in the paper's ImageNet model).
        paper_head: replace the linear classifier with the three-layer head of the uptake4 study (Zhao et al. 2021).
    """

    gradcam_layer = "conv2d_7b"
    feature_dim = 1536

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.2, paper_head: bool = False):
        super().__init__()
        self.conv2d_1a = BasicConv2d(in_channels, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*[Block35(0.17) for _ in range(10)])
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*[Block17(0.10) for _ in range(20)])
        self.mixed_7a = Mixed7a()
        self.repeat_2 = nn.Sequential(*[Block8(0.20) for _ in range(9)])
        self.block8 = Block8(apply_relu=False)
        self.conv2d_7b = BasicConv2d(2080, self.feature_dim, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = classifier_or_paper_head(self.feature_dim, num_classes, paper_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        for layer in (
            self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b, self.conv2d_4a, self.maxpool_5a,
            self.mixed_5b, self.repeat, self.mixed_6a, self.repeat_1, self.mixed_7a, self.repeat_2, self.block8, self.conv2d_7b,
        ):  # fmt: skip
            x = layer(x)
        return self.last_linear(self.dropout(torch.flatten(self.avgpool(x), 1)))
