"""The SRGAN stage's networks: an SRResNet-style generator and MONAI's patch discriminator.

* :class:`SRGenerator`: the low image is first resized to the output size (bilinear), then an
  SRResNet trunk (Ledig et al. 2017) predicts a correction that is added to it: a 9x9
  convolution with PReLU, ``blocks`` residual blocks (MONAI's
  :class:`~monai.networks.blocks.ResidualUnit`: conv, batch norm, PReLU, conv), a 3x3
  convolution with batch norm and a long skip, and a 9x9 convolution to the image. SRResNet
  upsamples with sub-pixel convolutions at the end; here the scale is 64 to 96 (1.5), which a
  pixel shuffle cannot do, so the resize comes first (as in VDSR, Kim et al. 2016) and the
  generator takes any input size to its output size.
* :func:`build_patch_discriminator`: :class:`monai.networks.nets.PatchDiscriminator`, one
  score per overlapping patch (a PatchGAN, Isola et al. 2017). The adversarial loss is least
  squares through :class:`monai.losses.PatchAdversarialLoss`, as for the DCGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRGenerator(nn.Module):
    """SRResNet-style generator after a bilinear resize; images in ``[-1, 1]`` in and out.

    Args:
        out_size: output rows and columns.
        channels: image channels.
        width: feature channels of the trunk.
        blocks: residual blocks.
    """

    def __init__(self, out_size: tuple[int, int] | list[int], channels: int = 1, width: int = 32, blocks: int = 4):
        super().__init__()
        from monai.networks.blocks import Convolution, ResidualUnit

        self.out_size = tuple(int(v) for v in out_size)
        self.head = Convolution(2, channels, width, kernel_size=9, act="PRELU", norm=None)
        self.body = nn.Sequential(
            *[ResidualUnit(2, width, width, kernel_size=3, subunits=2, act="PRELU", norm="BATCH", last_conv_only=True) for _ in range(blocks)]
        )
        self.after = Convolution(2, width, width, kernel_size=3, act=None, norm="BATCH")
        self.tail = nn.Conv2d(width, channels, 9, padding=4, bias=False)
        nn.init.zeros_(self.tail.weight)  # starts as the bilinear resize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, *out_size)`` for low images ``(B, C, h, w)``."""
        up = F.interpolate(x, size=self.out_size, mode="bilinear", align_corners=False)
        h = self.head(up)
        h = h + self.after(self.body(h))
        return (up + self.tail(h)).clamp(-1, 1)


def build_patch_discriminator(channels: int = 1, width: int = 32, layers: int = 3) -> nn.Module:
    """MONAI's PatchDiscriminator for 2-D images; its last output is the patch score map."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(spatial_dims=2, channels=width, in_channels=channels, out_channels=1, num_layers_d=layers, norm="BATCH")
