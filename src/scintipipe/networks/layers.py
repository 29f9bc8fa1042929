"""Small building blocks shared by the hand-written networks."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Convolution without bias, batch normalisation, then an activation.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size (int or pair).
        stride: stride.
        padding: padding; ``None`` pads to keep the size at stride 1 (``(k - 1) // 2``).
        groups: convolution groups (``in_channels`` for a depth-wise convolution).
        activation: activation module class, or ``None`` for none.
        bn_eps: batch-norm epsilon (Inception uses 1e-3).
        bn_momentum: batch-norm momentum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ):
        if padding is None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = ((ks[0] - 1) // 2, (ks[1] - 1) // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class BasicConv2d(nn.Module):
    """Inception's convolution unit: conv (no bias), batch norm (eps 1e-3), ReLU.

    The sub-module names (``conv``, ``bn``) are those of the reference implementations, so a
    user's own Inception weights file loads by name.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size (int or pair).
        stride: stride.
        padding: padding (none by default, as in the papers' "valid" convolutions).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve, normalise, rectify."""
        return self.relu(self.bn(self.conv(x)))
