"""Transfer learning from a local weights file: :func:`load_init_weights`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from scintipipe.errors import ScintipipeError

CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict", "network", "net")
"""Keys under which checkpoint files commonly keep the model's state dict."""
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


class InitWeightsError(ScintipipeError):
    """A weights file cannot be used for initialisation (missing, corrupt, no tensors)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict, or a checkpoint dict holding one, from ``path``.

    Raises:
        InitWeightsError: if the file is missing, unreadable, or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise InitWeightsError(f"initial weights file {str(path)!r} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise InitWeightsError(f"initial weights file {str(path)!r} cannot be read as PyTorch weights: {exc}") from exc
    if isinstance(content, dict):
        for key in CHECKPOINT_KEYS:
            if isinstance(content.get(key), dict):
                content = content[key]
                break
    tensors = {k: v for k, v in content.items() if isinstance(v, torch.Tensor)} if isinstance(content, dict) else {}
    if not tensors:
        raise InitWeightsError(f"initial weights file {str(path)!r} holds no state dict (tensors by name)")
    return _strip_wrapper_prefix(tensors)


def _strip_wrapper_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a prefix such as ``module.`` (DataParallel) that every key shares."""
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            return {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _adapt_input_channels(source: torch.Tensor, target_shape: torch.Size) -> torch.Tensor | None:
    """A first-convolution kernel with its input channels adapted, or ``None`` if impossible.

    Three channels to one: summed over input channels (a grey image seen as equal R, G and
    B gives the same response). One to ``n``: repeated and divided by ``n``.
    """
    if source.ndim < 3 or source.ndim != len(target_shape) or source.shape[0] != target_shape[0] or source.shape[2:] != target_shape[2:]:
        return None
    if target_shape[1] == 1:
        return source.sum(dim=1, keepdim=True)
    if source.shape[1] == 1:
        return source.repeat(1, target_shape[1], *([1] * (source.ndim - 2))) / target_shape[1]
    return None


def load_init_weights(model: nn.Module, path: str | Path, strict: bool = False) -> dict[str, Any]:
    """Copy matching weights from a local file into ``model`` (transfer learning).

    Tensors are matched by name and shape. A first convolution trained on colour images
    is adapted to the model's input channels (see :func:`_adapt_input_channels`); tensors
    whose shapes differ otherwise (typically the classifier, sized for other classes) are
    skipped and keep their fresh initialisation. Nothing is downloaded.

    Args:
        model: the network to initialise (changed in place).
        path: a state dict file, or a checkpoint dict with ``state_dict`` or ``model``.
        strict: raise unless every tensor of ``model`` was loaded.

    Returns:
        ``{"loaded": [...], "adapted": [...], "skipped": {name: reason}, "missing": [...],
        "unexpected": [...]}``: loaded names (adapted ones included), names whose input
        channels were adapted, names in both with incompatible shapes, model names absent
        from the file, file names absent from the model.

    Raises:
        InitWeightsError: for a missing or corrupt file, a file sharing no tensor with the
            model, or (with ``strict``) any model tensor left unloaded.
    """
    source = read_state_dict(path)
    target = model.state_dict()
    loaded, adapted, skipped, missing = [], [], {}, []
    new_state: dict[str, torch.Tensor] = {}
    for name, current in target.items():
        if name not in source:
            missing.append(name)
            continue
        incoming = source[name]
        if incoming.shape != current.shape:
            converted = _adapt_input_channels(incoming, current.shape) if incoming.is_floating_point() else None
            if converted is None:
                skipped[name] = f"shape {tuple(incoming.shape)} in file, {tuple(current.shape)} in model"
                continue
            incoming = converted
            adapted.append(name)
        new_state[name] = incoming.to(dtype=current.dtype)
        loaded.append(name)
    unexpected = [name for name in source if name not in target]
    if not loaded:
        raise InitWeightsError(f"initial weights file {str(path)!r} shares no tensor (by name and shape) with {type(model).__name__}")
    if strict and (missing or skipped):
        raise InitWeightsError(
            f"initial weights file {str(path)!r} leaves {len(missing) + len(skipped)} tensors of {type(model).__name__} unloaded, e.g. {(missing + list(skipped))[:3]}"
        )
    model.load_state_dict(new_state, strict=False)
    return {"loaded": loaded, "adapted": adapted, "skipped": skipped, "missing": missing, "unexpected": unexpected}
