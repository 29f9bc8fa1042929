"""The hooks that make ``disease`` a scintipipe task; the entry point names this module.

* ``register_tasks``: the task (labels ``graves``, ``subacute_thyroiditis``,
  ``thyroid_tumour``, ``normal``) and the shipped bundle.
* ``register_simulators``: the four-class simulator for ``scintipipe simulate --task disease``.
* ``register_recipes``: the training recipes (``scintipipe train --recipe disease_resnet34_paper``).
"""

from __future__ import annotations

from typing import Any

from scintipipe.api import hookimpl
from scintipipe_disease import BUNDLE_DIR, LABELS, RECIPES_DIR

TASK = "disease"
DESCRIPTION = "thyroid disease on 99mTc-pertechnetate scans: Graves' disease, subacute thyroiditis, thyroid tumour, normal"


@hookimpl
def register_tasks(register: Any) -> None:
    """Register the task and its bundle."""
    register.task(TASK, LABELS, DESCRIPTION)
    register.bundle(TASK, BUNDLE_DIR, task=TASK)


@hookimpl
def register_simulators(register: Any) -> None:
    """Register the simulator (``scintipipe simulate --task disease``)."""
    from scintipipe_disease.simulator import DISEASE_SIMULATOR

    register.simulator(TASK, DISEASE_SIMULATOR)


@hookimpl
def register_recipes(register: Any) -> None:
    """Register the recipes in ``recipes/`` by file name (``disease_demo_cpu``, ``disease_resnet34_paper``, ...)."""
    register.recipe_folder(RECIPES_DIR)
