"""Built-in ``explain`` stage: Grad-CAM from ``monai.visualize`` on the bundle's declared layer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.visualize import GradCAM

from scintipipe import hookimpl

_cams: dict[int, GradCAM] = {}


def gradcam_for(network: torch.nn.Module, layer: str) -> GradCAM:
    """One GradCAM per network: its hooks are registered once, not per batch."""
    key = id(network)
    if key not in _cams:
        _cams[key] = GradCAM(nn_module=network, target_layers=layer)
    return _cams[key]


@hookimpl(trylast=True)
def explain_batch(inputs: torch.Tensor, class_indices: list[int], bundle: Any, device: str) -> np.ndarray | None:
    """Grad-CAM maps ``(batch, H, W)`` in [0, 1] for the requested classes.

    Returns ``None`` when the bundle declares no ``explain_layer``.
    """
    layer = bundle.explain_layer
    if not layer:
        return None
    cam = gradcam_for(bundle.network(device), layer)
    x = inputs.to(device)
    maps = np.zeros((x.shape[0], *x.shape[2:]), dtype=np.float32)
    classes = np.asarray(class_indices)
    with torch.enable_grad():
        for cls in np.unique(classes):
            rows = np.nonzero(classes == cls)[0]
            out = cam(x[torch.as_tensor(rows)], class_idx=int(cls))
            maps[rows] = out[:, 0].detach().cpu().numpy()
    return maps
