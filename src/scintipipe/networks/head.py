"""The classification head of the uptake4 study (Zhao et al. 2021): three fully-connected layers with heavy dropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PaperHead(nn.Sequential):
    """Fully-connected head of the uptake4 study: ``in -> 1024 -> 512 -> num_classes``.

    Each hidden layer is followed by ReLU and dropout (0.8 in the paper); the last layer
    gives logits.

    Args:
        in_features: size of the backbone's pooled feature vector.
        num_classes: number of output classes.
        hidden: sizes of the hidden layers.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (1024, 512), dropout: float = 0.8):
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, int(size)), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = int(size)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from a ``(batch, in_features)`` feature vector (flattened if needed)."""
        return super().forward(torch.flatten(x, 1))


def classifier_or_paper_head(in_features: int, num_classes: int, paper_head: bool) -> nn.Module:
    """A single linear classifier, or :class:`PaperHead` when ``paper_head`` is true."""
    return PaperHead(in_features, num_classes) if paper_head else nn.Linear(in_features, num_classes)
