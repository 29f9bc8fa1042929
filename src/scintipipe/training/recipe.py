"""Training recipes: everything that decides how a bundle is trained, in one JSON file.

A recipe names the task and labels, the network (``_target_`` dotted path, so plugin
networks work), the deterministic preprocessing (``scan_transforms``, shared with
inference), the augmentation, the optimiser and the schedule. Every bundle keeps the
recipe that trained it in ``configs/recipe.json``, so ``scintipipe train --bundle X``
retrains X the same way on new data. Plugins make recipes available by name through the
``register_recipes`` hook (the core's own come from ``scintipipe.builtin.recipes``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from scintipipe.errors import ScintipipeError

DEFAULTS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 32,
    "optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4},
    "schedule": "cosine",
    "augment": {"flip_p": 0.5, "rotate_deg": 15.0, "mixup_alpha": 0.0, "intensity_jitter": 0.1, "shift_fraction": 0.05},
    "balance": "weighted_sampler",
    "val_fraction": 0.2,
    "metric": "balanced_accuracy",
    "seed": 0,
    "explain_layer": None,
    "explain_method": None,
    "unknown_scale_fovs_mm": None,
    "zoom_factors": None,
    "zoom_averaging_below": None,
}
REQUIRED = ("task", "labels", "network", "input_size", "scan_transforms")


class RecipeError(ScintipipeError):
    """A recipe file is missing, malformed or lacks a required field."""


def load_recipe(path_or_name: str | Path, pm: Any = None) -> dict[str, Any]:
    """Read a recipe from a file, or by the name a plugin registered it under.

    Args:
        path_or_name: a JSON file, or a registered recipe name such as ``uptake4_paper``
            (the core's) or ``remnant_resnet18_paper`` (the remnant plugin's).
        pm: the plugin manager whose ``register_recipes`` names are searched; default
            the process-wide one (built-in and installed plugins).

    Returns:
        The recipe with defaults filled in.

    Raises:
        RecipeError: neither a file nor a registered name (listing the registered ones),
            or not a valid recipe.
    """
    path = Path(path_or_name)
    if not path.is_file():
        path = registered_recipe(str(path_or_name), pm)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path} is not valid JSON: {exc}") from exc
    return complete_recipe(raw, source=str(path))


def registered_recipe(name: str, pm: Any = None) -> Path:
    """The file of the recipe registered as ``name`` through ``register_recipes``.

    Args:
        name: the registered name.
        pm: the plugin manager to ask; default the process-wide one.

    Raises:
        RecipeError: no plugin registers ``name``, with the registered names.
    """
    from scintipipe.plugins import default_plugin_manager, recipes

    registered = recipes(pm if pm is not None else default_plugin_manager()).recipes
    if name not in registered:
        raise RecipeError(f"no recipe file {name!r} and no registered recipe of that name (registered: {', '.join(sorted(registered)) or 'none'})")
    return registered[name]


def complete_recipe(raw: dict[str, Any], source: str = "recipe") -> dict[str, Any]:
    """Fill defaults and check required fields."""
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise RecipeError(f"{source} lacks {', '.join(missing)}")
    recipe = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    if recipe["optimizer"]["name"] not in ("adam", "adamw", "sgd"):
        raise RecipeError(f"{source}: optimizer {recipe['optimizer']['name']!r} is not one of adam, adamw, sgd")
    if recipe["balance"] not in ("weighted_sampler", "class_weights", "none"):
        raise RecipeError(f"{source}: balance must be weighted_sampler, class_weights or none")
    return recipe


def network_def(recipe: dict[str, Any]) -> dict[str, Any]:
    """The network's config entry with the label count filled in.

    ``num_classes`` is added only when the config names no class count of its own
    (``num_classes``, ``classes`` as in MONAI's ``Classifier``, or ``out_channels``).
    """
    net = dict(recipe["network"])
    if not {"num_classes", "classes", "out_channels"} & set(net):
        net["num_classes"] = len(recipe["labels"])
    return net
