"""Built-in ``gate`` layer ``ood``: the learned out-of-distribution score the bundle ships."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scintipipe import hookimpl

if TYPE_CHECKING:
    import torch


@hookimpl(trylast=True)
def gate_batch(inputs: torch.Tensor, bundle: Any, device: str) -> list[dict[str, Any]] | None:
    """Score each input with the bundle's fitted statistics; ``None`` when it ships none."""
    policy = bundle.gate
    scorer = policy.scorer
    if scorer is None:
        return None
    from scintipipe.gate.ood import network_features, remember_logits

    features = network_features(bundle.network(device), inputs.to(device), scorer.layers)
    scores = scorer.score(features)
    remember_logits(bundle, inputs, features["logits"])  # the built-in classifier reuses this pass
    threshold = policy.threshold
    method = policy.ood["method"]
    rule = str(policy.ood.get("threshold_rule", "limit")).split(" of the scores")[0].replace(" (numpy 'higher')", "")
    return [
        {
            "ood_score": float(score),
            "in_distribution": bool(score <= threshold),
            "threshold": threshold,
            "reason": f"out of distribution for bundle {bundle.name!r}: {method} score {score:.4g} above the threshold {threshold:.4g}, the {rule} of held-out in-distribution scores",
        }
        for score in scores
    ]
