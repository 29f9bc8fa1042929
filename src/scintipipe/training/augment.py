"""Batch augmentation on preprocessed inputs (all in torch, one call per batch).

Seed 002's recipe: random horizontal flip (p 0.5), rotation 0-90 degrees, mix-up. Added
here: small shifts and a global intensity jitter, which make a model less sensitive to
where the neck sits in the field and to how the intensity was normalised.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, y: torch.Tensor, n_classes: int, settings: dict[str, Any], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch and return it with soft targets.

    Args:
        x: inputs ``(B, C, H, W)``.
        y: integer labels ``(B,)``.
        n_classes: number of classes (for one-hot / mix-up targets).
        settings: ``flip_p``, ``rotate_deg``, ``shift_fraction``, ``intensity_jitter``,
            ``mixup_alpha``.
        generator: the random generator (seeded by the trainer).

    Returns:
        ``(x_aug, targets)`` with ``targets`` of shape ``(B, n_classes)`` summing to one.
    """
    b = x.shape[0]
    targets = F.one_hot(y, n_classes).float()
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    flip = rand(b) < settings.get("flip_p", 0.0)
    if flip.any():
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    rotate = math.radians(settings.get("rotate_deg", 0.0))
    shift = settings.get("shift_fraction", 0.0)
    if rotate > 0 or shift > 0:
        angle = (rand(b) * 2 - 1) * rotate
        cos, sin = torch.cos(angle), torch.sin(angle)
        tx, ty = ((rand(b) * 2 - 1) * 2 * shift for _ in range(2))
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
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
