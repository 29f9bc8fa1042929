"""Built-in ``explain`` stage: runs the explain method chosen by name, and registers three.

``scintipipe run --explain-method NAME`` (the server's ``explain_method`` param) picks one
of the methods plugins register with ``register_explainers``; built in, from
``monai.visualize``: ``gradcam`` and ``gradcampp`` (on the bundle's declared layer) and
``occlusion`` (occlusion sensitivity, no layer needed). Registered ``trylast``, so a
plugin's own ``explain_batch`` takes over.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from scintipipe import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import torch

#: the method when neither ``--explain-method`` nor the bundle names one
DEFAULT_METHOD = "gradcam"

#: the built-in methods and their one-line descriptions
BUILTIN_METHODS = {
    "gradcam": "Grad-CAM on the bundle's explain layer",
    "gradcampp": "Grad-CAM++ on the bundle's explain layer",
    "occlusion": "occlusion sensitivity, no layer needed, slower",
}


def explain_with(method: str, inputs: torch.Tensor, class_indices: list[int], bundle: Any, device: str) -> np.ndarray | None:
    """Maps ``(batch, H, W)`` in [0, 1] by a built-in ``method`` for the requested classes.

    Returns ``None`` for Grad-CAM(++) when the bundle declares no ``explain_layer``.

    Raises:
        ValueError: ``method`` is not a built-in method.
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


@hookimpl
def add_options(register: Any) -> None:
    """``--explain-method``."""
    register.option(
        "explain_method",
        default=None,
        choose_from="explainer",
        help=f"Saliency method of the explain stage (default: the one the bundle declares, else {DEFAULT_METHOD}).",
    )


def chosen_method(options: Any, bundle: Any = None) -> str:
    """The run's explain method: ``--explain-method``, else the bundle's declared
    ``explain_method`` (chosen by ``benchmarks/explain_faithfulness.py``), else :data:`DEFAULT_METHOD`.

    Args:
        options: the run's options (``context.options``), or ``None``.
        bundle: the run's bundle, or ``None``.
    """
    return str((options or {}).get("explain_method") or getattr(bundle, "explain_method", None) or DEFAULT_METHOD)


@hookimpl
def register_explainers(register: Any) -> None:
    """Register ``gradcam``, ``gradcampp`` and ``occlusion``."""
    for name, description in BUILTIN_METHODS.items():
        register.explainer(name, partial(explain_with, name), description)


@hookimpl(trylast=True)
def explain_batch(inputs: torch.Tensor, class_indices: list[int], bundle: Any, device: str, context: Any) -> np.ndarray | None:
    """The maps of the explain method :func:`chosen_method` names (``--explain-method``, else the bundle's)."""
    name = chosen_method(context.options, bundle)
    return context.alternative("explainer", name).function(inputs, class_indices, bundle, device)
