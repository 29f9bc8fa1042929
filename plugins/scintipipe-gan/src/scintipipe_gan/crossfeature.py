"""The cross-feature ResNet of the GAN-augmented thyroid SPECT study (seed 004, Fig. 4).

The paper adds "``x_i`` with the cross-feature image information" to each residual block's
output, so that the network learns cross features "on the basis of retaining the learned
image features". It says no more, so this module chooses (see the plugin README):

* **What the cross-feature information is.** For a block input ``x``, the features of the
  mirrored position (``x`` flipped left-right: the other lobe, for a neck centred by the
  bundle's preprocessing) next to the image-wide mean of ``x`` (what every position shares),
  mixed by a 1x1 convolution with batch norm. A residual block sees only a 3x3 neighbourhood;
  this path lets it compare a lobe with its partner and with the whole gland, which is what
  tells a focal or heterogeneous pattern from a diffuse one.
* **How it is added.** ``y = relu(F(x) + shortcut(x) + g * C(x))`` with one scalar gate ``g``
  per block, zero at the start, so an untrained cross path leaves the block a plain ResNet
  block and what was learned is kept (ReZero-style; Bachlechner et al. 2021).
* **Phase one.** ``cross_features=False`` holds every gate at zero (a buffer, not a
  parameter): a plain ResNet trained on single-feature images. The weights load unchanged
  into ``cross_features=True``, where the gates learn (phase two, the cross-training set).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class CrossFeatureBlock(nn.Module):
    """A basic residual block plus a gated cross-feature path.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first convolution (and of the shortcut and cross paths).
        cross_features: learn the gate of the cross path; ``False`` holds it at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, cross_features: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
        self.cross = nn.Sequential(nn.Conv2d(2 * in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
        gate = torch.zeros(1)
        if cross_features:
            self.cross_gate = nn.Parameter(gate)
        else:
            self.register_buffer("cross_gate", gate)

    def cross_information(self, x: torch.Tensor) -> torch.Tensor:
        """``C(x)``: the mirrored features beside the image-wide mean, mixed by a 1x1 convolution."""
        context = x.mean((2, 3), keepdim=True).expand_as(x)
        return self.cross(torch.cat([x.flip(-1), context], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(F(x) + shortcut(x) + gate * C(x))``."""
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(residual + self.shortcut(x) + self.cross_gate * self.cross_information(x))


class CrossFeatureResNet(nn.Module):
    """A ResNet of :class:`CrossFeatureBlock` stages for 2-D scintigrams.

    Grad-CAM layer: ``stages.2`` (1/8 of the input, 12x12 for 96x96, as ScintiNet's).

    Args:
        in_channels: input channels (1 for a scintigram).
        num_classes: output classes.
        widths: channels of the four stages (the stem has the first).
        blocks: residual blocks per stage (``(2, 2, 2, 2)``: the ResNet-18 layout).
        cross_features: learn the cross paths (phase two); ``False`` for phase one.
        dropout: dropout before the classifier.
    """

    gradcam_layer = "stages.2"

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        widths: Sequence[int] = (16, 32, 64, 128),
        blocks: Sequence[int] = (2, 2, 2, 2),
        cross_features: bool = True,
        dropout: float = 0.2,
    ):
        super().__init__()
        widths, blocks = [int(w) for w in widths], [int(b) for b in blocks]
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths} and blocks {blocks} must name the same number of stages")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages = []
        previous = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if index == 0 else 2
            layers = [CrossFeatureBlock(previous if i == 0 else width, width, stride if i == 0 else 1, cross_features) for i in range(count)]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        return self.fc(self.dropout(self.stages(self.stem(x)).mean((2, 3))))

    def cross_gates(self) -> list[float]:
        """Every block's cross gate, in order (all zero in phase one)."""
        return [float(block.cross_gate) for block in self.modules() if isinstance(block, CrossFeatureBlock)]


def build_cross_feature_resnet(num_classes: int, in_channels: int = 1, **kwargs: object) -> CrossFeatureResNet:
    """The builder registered as ``cross_feature_resnet`` (``kwargs`` go to :class:`CrossFeatureResNet`)."""
    return CrossFeatureResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)  # type: ignore[arg-type]
