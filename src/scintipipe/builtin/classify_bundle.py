"""Built-in ``classify`` stage: the bundle's network, loaded once per run, on a batch."""

from __future__ import annotations

from typing import Any

import torch

from scintipipe import hookimpl


@hookimpl(trylast=True)
def classify_batch(inputs: torch.Tensor, bundle: Any, device: str) -> torch.Tensor:
    """Return softmax probabilities ``(batch, n_labels)`` on the CPU."""
    network = bundle.network(device)
    with torch.inference_mode():
        logits = network(inputs.to(device))
    return logits.float().softmax(dim=1).cpu()
