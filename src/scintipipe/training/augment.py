"""Batch augmentation on preprocessed inputs (all in torch, one call per batch).

The recipe of the uptake4 study (Zhao et al. 2021): random horizontal flip (p 0.5), rotation 0-90 degrees, mix-up. Added
here, all independent of the class, so that a model cannot lean on how one camera or one
export chain renders a scan:

- ``shift_fraction`` and ``zoom_range``: where the neck sits and how large it is (display
  exports carry no pixel spacing, so their physical scale is a guess);
- ``intensity_jitter`` and ``gamma_range``: how the intensity was normalised and windowed;
- ``blur_sigma_px``: collimator, distance and display smoothing;
- ``noise_std``: count level and grain (Gaussian noise scaled by the square root of the
  intensity, which is what Poisson noise looks like after the square-root normalisation);
- ``mixup_alpha``: mix-up.

Every setting defaults to off, so old recipes train as before.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def augment_batch(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, settings: dict[str, Any], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch and return it with soft targets.

    Args:
        x: inputs ``(B, C, H, W)``.
        y: integer labels ``(B,)``.
        n_classes: number of classes (for one-hot / mix-up targets).
        settings: ``flip_p``, ``rotate_deg``, ``shift_fraction``, ``zoom_range``
            (``[low, high]`` scale factors), ``intensity_jitter``, ``gamma_range``
            (``[low, high]``), ``blur_sigma_px`` (``[low, high]``, applied to half the
            batch), ``noise_std`` (largest noise level, applied to half the batch),
            ``mixup_alpha``.
        generator: the random generator (seeded by the trainer).

    Returns:
        ``(x_aug, targets)`` with ``targets`` of shape ``(B, n_classes)`` summing to one.
    """
    b = x.shape[0]
    targets = F.one_hot(y, n_classes).float()

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    flip = rand(b) < settings.get("flip_p", 0.0)
    if flip.any():
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = _affine(x, settings, rand)
    x = _blur(x, settings.get("blur_sigma_px"), rand)
    gamma = settings.get("gamma_range")
    if gamma:
        low, high = (math.log(float(v)) for v in gamma)
        exponent = torch.exp(low + rand(b, 1, 1, 1) * (high - low))
        x = x.clamp_min(0).pow(exponent)
    noise = float(settings.get("noise_std", 0.0) or 0.0)
    if noise > 0:
        level = rand(b, 1, 1, 1) * noise * (rand(b, 1, 1, 1) < 0.5)
        x = (x + level * x.clamp_min(0).sqrt() * torch.randn(x.shape, generator=generator)).clamp_min(0)
    jitter = settings.get("intensity_jitter", 0.0)
    if jitter > 0:
        x = x * (1 + (rand(b, 1, 1, 1) * 2 - 1) * jitter)
    alpha = settings.get("mixup_alpha", 0.0)
    if alpha > 0:
        lam = torch.distributions.Beta(alpha, alpha).sample((b,))
        lam = torch.maximum(lam, 1 - lam)  # keep the original image dominant
        perm = torch.randperm(b, generator=generator)
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
        targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[perm]
    return x, targets


def _affine(x: torch.Tensor, settings: dict[str, Any], rand: Any) -> torch.Tensor:
    """Rotation, shift and isotropic zoom in one resampling."""
    b = x.shape[0]
    rotate = math.radians(settings.get("rotate_deg", 0.0))
    shift = settings.get("shift_fraction", 0.0)
    zoom = settings.get("zoom_range")
    if rotate <= 0 and shift <= 0 and not zoom:
        return x
    angle = (rand(b) * 2 - 1) * rotate
    if zoom:
        low, high = (math.log(float(v)) for v in zoom)
        scale = torch.exp(-(low + rand(b) * (high - low)))  # sampling grid shrinks when the image grows
    else:
        scale = torch.ones(b)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    tx, ty = ((rand(b) * 2 - 1) * 2 * shift for _ in range(2))
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(x: torch.Tensor, sigma_range: Any, rand: Any) -> torch.Tensor:
    """Gaussian blur of a random width on a random half of the batch."""
    if not sigma_range:
        return x
    low, high = (float(v) for v in sigma_range)
    b = x.shape[0]
    sigma = low + rand(b) * (high - low)
    apply = (rand(b) < 0.5) & (sigma > 0.05)
    if not apply.any():
        return x
    radius = max(1, int(math.ceil(3 * high)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    out = x.clone()
    for i in torch.nonzero(apply).flatten().tolist():
        kernel = torch.exp(-0.5 * (offsets / sigma[i]) ** 2)
        kernel = kernel / kernel.sum()
        image = x[i : i + 1].transpose(0, 1)  # channels as batch: (C, 1, H, W)
        image = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
        image = F.conv2d(F.pad(image, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
        out[i] = image.transpose(0, 1)[0]
    return out
