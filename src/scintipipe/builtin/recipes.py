"""Registers the training recipes scintipipe ships (``scintipipe/recipes/*.json``) through ``register_recipes``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl

#: the recipes shipped with the core (``uptake4``, ``uptake4_paper``)
SHIPPED_RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


@hookimpl
def register_recipes(register: Any) -> None:
    """Register every shipped recipe under its file name (``scintipipe train --recipe uptake4_paper``)."""
    register.recipe_folder(SHIPPED_RECIPES_DIR)
