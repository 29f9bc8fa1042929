"""Built-in ``explain`` stage: Grad-CAM, Grad-CAM++ (on the bundle's declared layer) or
occlusion sensitivity, all from ``monai.visualize``.

The method is ``scintipipe run --explain-method`` (default ``gradcam``), passed in as the
hook's ``method`` argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scintipipe import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import torch


@hookimpl(trylast=True)
def explain_batch(inputs: torch.Tensor, class_indices: list[int], bundle: Any, device: str, method: str = "gradcam") -> np.ndarray | None:
    """Maps ``(batch, H, W)`` in [0, 1] for the requested classes.

    Returns ``None`` for Grad-CAM(++) when the bundle declares no ``explain_layer``.
    """
    from scintipipe.explain import METHODS, class_activation_maps, occlusion_maps  # monai.visualize: imported when first used

    if method not in METHODS:
        raise ValueError(f"unknown explain method {method!r}; choose from {', '.join(METHODS)}")
    network = bundle.network(device)
    x = inputs.to(device)
    if method == "occlusion":
        return occlusion_maps(network, x, class_indices)
    layer = bundle.explain_layer
    if not layer:
        return None
    return class_activation_maps(network, layer, x, class_indices, method)
