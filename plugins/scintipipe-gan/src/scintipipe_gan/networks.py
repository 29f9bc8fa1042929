"""The class-conditional DCGAN: a generator of transposed convolutions and a projection discriminator.

* :class:`Generator`: noise ``z`` and a learned label embedding, concatenated, then a 4x4
  transposed convolution and stride-2 transposed convolutions with batch norm and ReLU up
  to the image size, and ``tanh`` (images in ``[-1, 1]``), as in DCGAN (Radford et al. 2016).
* :class:`Discriminator`: stride-2 convolutions with spectral normalisation (Miyato et al.
  2018) and leaky ReLU down to 4x4, a global sum, and a projection of the label (Miyato and
  Koyama 2018): ``D(x, y) = w.h + embed(y).h``. One score per image.

MONAI's :class:`monai.networks.nets.PatchDiscriminator` scores patches and takes no class,
so it is not used; its loss, :class:`monai.losses.PatchAdversarialLoss`, is (least squares
on the raw scores: the training loop).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _levels(image_size: int) -> int:
    """Stride-2 steps between 4x4 and ``image_size`` (a power of two, at least 8)."""
    levels = math.log2(image_size / 4)
    if image_size < 8 or levels != int(levels):
        raise ValueError(f"image size must be a power of two of at least 8, got {image_size}")
    return int(levels)


class Generator(nn.Module):
    """Label-conditioned DCGAN generator.

    Args:
        n_classes: number of labels.
        z_dim: noise dimensions (the label embedding has as many).
        width: channels of the last hidden layer; they double at each coarser level.
        image_size: output rows and columns (a power of two, at least 8).
        channels: output channels.
    """

    def __init__(self, n_classes: int, z_dim: int = 64, width: int = 32, image_size: int = 64, channels: int = 1):
        super().__init__()
        levels = _levels(image_size)
        self.z_dim = z_dim
        self.embed = nn.Embedding(n_classes, z_dim)
        widths = [width * 2 ** (levels - 1 - i) for i in range(levels)]
        layers: list[nn.Module] = [nn.ConvTranspose2d(2 * z_dim, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, (nn.ConvTranspose2d,)):
                nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images ``(B, channels, size, size)`` in ``[-1, 1]`` for noise ``(B, z_dim)`` and labels ``(B,)``."""
        h = torch.cat([z, self.embed(y)], 1)
        return self.net(h[:, :, None, None])


class Discriminator(nn.Module):
    """Projection discriminator with spectral normalisation; one unbounded score per image.

    Args:
        n_classes: number of labels.
        width: channels of the first convolution; they double at each level (at most 8x).
        image_size: input rows and columns.
        channels: input channels.
    """

    def __init__(self, n_classes: int, width: int = 32, image_size: int = 64, channels: int = 1):
        super().__init__()
        levels = _levels(image_size)
        layers: list[nn.Module] = []
        previous = channels
        for i in range(levels):
            w = width * 2 ** min(i, 3)
            layers += [spectral_norm(nn.Conv2d(previous, w, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            previous = w
        layers += [spectral_norm(nn.Conv2d(previous, previous, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.linear = spectral_norm(nn.Linear(previous, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, previous))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, 1)``: higher is more real for that label."""
        h = self.features(x).sum((2, 3))
        return self.linear(h) + (self.embed(y) * h).sum(1, keepdim=True)


def diff_augment(x: torch.Tensor, generator: torch.Generator, translation: float = 0.125, cutout: float = 0.25) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable translation and cutout, the same for real and fake.

    Args:
        x: images in ``[-1, 1]``; the background (-1) fills what moves in.
        generator: random generator (the training loop's, so that resume repeats it).
        translation: largest shift, as a fraction of the size.
        cutout: side of the square set to background, as a fraction of the size.
    """
    b, _, h, w = x.shape
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * translation * 2  # affine_grid units: 2 = the whole image
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = nn.functional.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    if cutout > 0:
        ch, cw = max(1, int(h * cutout)), max(1, int(w * cutout))
        top = (torch.rand(b, generator=generator) * (h - ch + 1)).long()
        left = (torch.rand(b, generator=generator) * (w - cw + 1)).long()
        rows = torch.arange(h)[None, :, None]
        cols = torch.arange(w)[None, None, :]
        inside = (rows >= top[:, None, None]) & (rows < top[:, None, None] + ch) & (cols >= left[:, None, None]) & (cols < left[:, None, None] + cw)
        x = torch.where(inside[:, None].to(x.device), torch.full_like(x, -1.0), x)
    return x
