"""ProbabilityEnsemble: several trained classifiers as one network, averaging their probabilities.

Training runs that differ only in their seed disagree on scans unlike the training data
(uptake4's focal recall on the second simulator ranged 14-22 of 50 over three seeds; see
docs/training.md). Averaging the members' softmax probabilities (a deep ensemble) takes that
run-to-run variance out of the decision. The ensemble returns the log of the mean
probability, so the rest of the pipeline treats it as logits: softmax gives back the mean
probability, and the gate's temperature divides it like any network's logits.

A bundle holds the ensemble like any network: ``network_def`` lists the members' own
configs, and ``models/model.pt`` their weights under ``members.<i>.``.
:func:`scintipipe.training.ensemble.write_ensemble_bundle` combines trained bundles into one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.transforms import MeanEnsemble
from torch import nn

#: probabilities are clamped here before the log, so a member's certain zero stays finite
MIN_PROBABILITY = 1e-8


class ProbabilityEnsemble(nn.Module):
    """Mean-probability ensemble of classifiers with the same inputs and labels.

    Grad-CAM layer: the first member's own (``members.0.<layer>``); its gradients are those of
    the ensemble's output, so the map explains the ensemble through that member's
    activations. Occlusion explains the ensemble as a whole.

    Args:
        members: the trained classifiers (built from their configs; a bundle's
            ``network_def`` gives them as ``_target_`` entries).
        weights: optional weight per member (default: equal).
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("a ProbabilityEnsemble needs at least one member")
        if weights is not None and len(weights) != len(members):
            raise ValueError(f"{len(weights)} weights for {len(members)} members")
        self.members = nn.ModuleList(members)
        self.average = MeanEnsemble(weights)
        layer = getattr(members[0], "gradcam_layer", None)
        if isinstance(layer, str):
            self.gradcam_layer = f"members.0.{layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log mean probability ``(batch, num_classes)``, to be read as logits."""
        probabilities = [member(x).softmax(1) for member in self.members]
        mean = self.average(probabilities)
        return torch.log(torch.as_tensor(mean).clamp_min(MIN_PROBABILITY))
