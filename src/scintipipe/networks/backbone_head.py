"""The recipe network of the uptake4 study (Zhao et al. 2021): a backbone without its last layer and a three-layer head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scintipipe.networks.head import PaperHead
from scintipipe.networks.registry import build_network, network_spec

PAPER_BACKBONES = ("inception_v3", "resnet50", "densenet169", "inception_resnet_v2")
"""The four backbones the uptake4 study compared."""


class BackboneWithHead(nn.Module):
    """A registered network with its classifier removed, followed by :class:`PaperHead`.

    Grad-CAM layer: ``backbone.`` plus the backbone's own layer (e.g. ``backbone.Mixed_7c``).

    Args:
        backbone: registry name of the backbone; the uptake4 study used ``inception_v3``,
            ``resnet50``, ``densenet169`` and ``inception_resnet_v2``, but any registered
            network with a linear classifier works.
        num_classes: number of output classes.
        in_channels: input channels (1 for a scintigram).
        hidden: sizes of the head's hidden layers.
        dropout: dropout after each hidden layer (0.8 in the paper).
        **backbone_kwargs: passed to the backbone's constructor.

    Raises:
        ValueError: if the backbone's last layer is not a linear layer.
    """

    def __init__(
        self,
        backbone: str = "inception_v3",
        num_classes: int = 4,
        in_channels: int = 1,
        hidden: Sequence[int] = (1024, 512),
        dropout: float = 0.8,
        **backbone_kwargs: Any,
    ):
        super().__init__()
        spec = network_spec(backbone)
        self.backbone = build_network(backbone, num_classes=num_classes, in_channels=in_channels, **backbone_kwargs)
        parent_path, _, last_name = spec.classifier.rpartition(".")
        parent = self.backbone.get_submodule(parent_path)
        last = getattr(parent, last_name)
        if not isinstance(last, nn.Linear):
            raise ValueError(f"backbone {backbone!r} ends in {type(last).__name__}, not a linear layer; it cannot take the paper's head")
        setattr(parent, last_name, nn.Identity())
        self.feature_dim = last.in_features
        self.head = PaperHead(self.feature_dim, num_classes, hidden, dropout)
        self.gradcam_layer = f"backbone.{spec.gradcam_layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        return self.head(self.backbone(x))
