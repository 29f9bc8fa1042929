"""Built-in ``classify`` stage: the bundle's network, loaded once per run, on a batch.

Logits are divided by the temperature the bundle ships in ``configs/gate.json`` (fitted on
held-out simulated scans, see :mod:`scintipipe.gate.calibration`) before the softmax. When the built-in learned gate scored the very same batch, its forward
pass's logits are reused rather than computed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scintipipe import hookimpl

if TYPE_CHECKING:
    import torch


@hookimpl(trylast=True)
def classify_batch(inputs: torch.Tensor, bundle: Any, device: str) -> torch.Tensor:
    """Return temperature-scaled softmax probabilities ``(batch, n_labels)`` on the CPU."""
    import torch

    from scintipipe.gate.ood import recall_logits

    logits = recall_logits(bundle, inputs)
    if logits is None:
        network = bundle.network(device)
        with torch.inference_mode():
            logits = network(inputs.to(device))
    return (logits.float() / bundle.gate.temperature).softmax(dim=1).cpu()
