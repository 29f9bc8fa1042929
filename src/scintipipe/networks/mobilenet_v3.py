"""MobileNetV3 small and large (Howard et al., "Searching for MobileNetV3", ICCV 2019), 2-D.

Inputs must be at least 32x32 pixels (the paper's size is 224x224).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from scintipipe.networks.layers import ConvBNAct

MIN_INPUT_SIZE = 32


class BlockSpec(NamedTuple):
    """One inverted-residual block of the paper's tables 1 and 2."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    hard_swish: bool
    stride: int


# fmt: off
LARGE = [BlockSpec(*row) for row in [
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
]]
SMALL = [BlockSpec(*row) for row in [
    (16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
    (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
    (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
    (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1),
]]
# fmt: on
LAST_CHANNELS = {"large": 1280, "small": 1024}
_conv = partial(ConvBNAct, bn_eps=1e-3, bn_momentum=0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, never more than 10 % below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate.

    Args:
        channels: channels of the gated tensor.
        squeeze_channels: channels of the bottleneck.
    """

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale the channels of ``x``."""
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    """Expand (1x1), depth-wise (kxk), optional squeeze-excitation, project (1x1).

    Args:
        spec: the block's row of the paper's table.
    """

    def __init__(self, spec: BlockSpec):
        super().__init__()
        activation = nn.Hardswish if spec.hard_swish else nn.ReLU
        self.use_residual = spec.stride == 1 and spec.in_channels == spec.out_channels
        layers: list[nn.Module] = []
        if spec.expanded != spec.in_channels:
            layers.append(_conv(spec.in_channels, spec.expanded, 1, activation=activation))
        layers.append(_conv(spec.expanded, spec.expanded, spec.kernel, spec.stride, groups=spec.expanded, activation=activation))
        if spec.use_se:
            layers.append(SqueezeExcitation(spec.expanded, make_divisible(spec.expanded // 4)))
        layers.append(_conv(spec.expanded, spec.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output, plus ``x`` where shapes allow."""
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3(nn.Module):
    """MobileNetV3 for 2-D images with any number of input channels.

    Grad-CAM layer: the last element of ``features`` (the final 1x1 convolution),
    ``features.12`` for ``small`` and ``features.16`` for ``large``.

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: number of output classes.
        mode: ``"small"`` or ``"large"``.
        dropout: dropout in the classifier.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, mode: str = "large", dropout: float = 0.2):
        super().__init__()
        if mode not in LAST_CHANNELS:
            raise ValueError(f"MobileNetV3 mode must be 'small' or 'large', got {mode!r}")
        specs = SMALL if mode == "small" else LARGE
        last_conv = 6 * specs[-1].out_channels
        self.features = nn.Sequential(
            _conv(in_channels, specs[0].in_channels, 3, 2, activation=nn.Hardswish),
            *[InvertedResidual(spec) for spec in specs],
            _conv(specs[-1].out_channels, last_conv, 1, activation=nn.Hardswish),
        )
        self.gradcam_layer = f"features.{len(self.features) - 1}"
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, LAST_CHANNELS[mode]),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout, inplace=True),
            nn.Linear(LAST_CHANNELS[mode], num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class MobileNetV3Small(MobileNetV3):
    """MobileNetV3-Small (see :class:`MobileNetV3`)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__(in_channels, num_classes, mode="small", dropout=dropout)


class MobileNetV3Large(MobileNetV3):
    """MobileNetV3-Large (see :class:`MobileNetV3`)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__(in_channels, num_classes, mode="large", dropout=dropout)
