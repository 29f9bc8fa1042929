"""ShuffleNet V2 (Ma et al., ECCV 2018), 2-D, widths x0.5 and x1.0.

Inputs must be at least 32x32 pixels (the paper's size is 224x224).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scintipipe.networks.layers import ConvBNAct

MIN_INPUT_SIZE = 32
STAGE_REPEATS = (4, 8, 4)
STAGE_CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024), 1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


class ShuffleUnit(nn.Module):
    """ShuffleNet V2 unit: channel split (stride 1) or two-branch down-sampling (stride 2).

    Args:
        in_channels: input channels.
        out_channels: output channels (even).
        stride: 1 or 2.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        half = out_channels // 2
        # Flat layer lists, as in the reference implementation (weights load by name).
        if stride > 1:
            self.branch1 = nn.Sequential(
                *ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, activation=None),
                *ConvBNAct(in_channels, half, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *ConvBNAct(in_channels if stride > 1 else half, half, 1),
            *ConvBNAct(half, half, 3, stride, groups=half, activation=None),
            *ConvBNAct(half, half, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Process one half (or down-sample both), concatenate, shuffle."""
        if self.stride == 1:
            keep, process = x.chunk(2, dim=1)
            out = torch.cat((keep, self.branch2(process)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 for 2-D images with any number of input channels.

    Grad-CAM layer: ``conv5`` (the final 1x1 convolution).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        width: width multiplier, one of 0.5, 1.0, 1.5, 2.0.
        stage_channels: explicit stage widths (overrides ``width``).
    """

    gradcam_layer = "conv5"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0, stage_channels: Sequence[int] | None = None):
        super().__init__()
        if stage_channels is None:
            if float(width) not in STAGE_CHANNELS:
                raise ValueError(f"ShuffleNetV2 width must be one of {sorted(STAGE_CHANNELS)}, got {width}")
            stage_channels = STAGE_CHANNELS[float(width)]
        stem, *stage_widths, last = stage_channels
        self.conv1 = ConvBNAct(in_channels, stem, 3, 2)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        previous = stem
        stages = []
        for repeats, channels in zip(STAGE_REPEATS, stage_widths, strict=True):
            stages.append(nn.Sequential(ShuffleUnit(previous, channels, 2), *[ShuffleUnit(channels, channels, 1) for _ in range(repeats - 1)]))
            previous = channels
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = ConvBNAct(previous, last, 1)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        x = self.conv5(self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x))))))
        return self.fc(x.mean([2, 3]))


class ShuffleNetV2x05(ShuffleNetV2):
    """ShuffleNet V2 x0.5 (see :class:`ShuffleNetV2`)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000):
        super().__init__(in_channels, num_classes, width=0.5)


class ShuffleNetV2x10(ShuffleNetV2):
    """ShuffleNet V2 x1.0 (see :class:`ShuffleNetV2`)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000):
        super().__init__(in_channels, num_classes, width=1.0)
