"""The plugin manager: built-in plugins, entry-point discovery and environment controls.

Environment variables:

``SCINTIPIPE_PLUGINS``
    Comma-separated names of the third-party (entry-point) plugins to load. Unset: load
    all. Empty: load none. Built-in plugins are not affected.
``SCINTIPIPE_DISABLE_PLUGINS``
    Comma-separated plugin names to block, built-in ones included
    (e.g. ``scintipipe.builtin.explain_gradcam``).
``SCINTIPIPE_TRACE_HOOKS``
    When set to ``1``, every hook call is written to stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pluggy

from scintipipe import hookspecs
from scintipipe.registry import (
    CenterRegister,
    CommandRegister,
    ExplainerRegister,
    NetworkRegister,
    OptionRegister,
    RecipeRegister,
    SegmenterRegister,
    ServedModelRegister,
    SimulatorRegister,
    TaskRegister,
    TrainingSourceRegister,
    collect,
)

ENTRY_POINT_GROUP = "scintipipe"

DEFAULT_PLUGINS = (
    "scintipipe.builtin.stage_timing",
    "scintipipe.builtin.provenance",
    "scintipipe.builtin.load_dicom",
    "scintipipe.builtin.load_raster",
    "scintipipe.builtin.load_volume",
    "scintipipe.builtin.gate_metadata",
    "scintipipe.builtin.gate_content",
    "scintipipe.builtin.gate_ood",
    "scintipipe.builtin.preprocess_bundle",
    "scintipipe.builtin.segment_classical",
    "scintipipe.builtin.segment_learned",
    "scintipipe.builtin.segment_stage",
    "scintipipe.builtin.classify_bundle",
    "scintipipe.builtin.explain_gradcam",
    "scintipipe.builtin.report_json",
    "scintipipe.builtin.report_html",
    "scintipipe.builtin.report_dicom",
    "scintipipe.builtin.uptake4",
    "scintipipe.builtin.simulators",
    "scintipipe.builtin.networks",
    "scintipipe.builtin.recipes",
    "scintipipe.builtin.training_commands",
    "scintipipe.builtin.gate_commands",
    "scintipipe.builtin.serve_command",
    "scintipipe.builtin.listen_command",
    "scintipipe.builtin.served_models",
    "scintipipe.builtin.new_plugin",
)


def _split_env(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def make_plugin_manager(plugins_dir: str | Path | None = None, load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build a plugin manager with the built-in, installed and one-file plugins.

    Args:
        plugins_dir: a folder of ``*.py`` one-file plugins to load as well.
        load_entry_points: load third-party plugins from the ``scintipipe`` entry-point group.

    Returns:
        A :class:`pluggy.PluginManager` with every hookspec added and ``check_pending()``
        passed, so a misspelt hook name fails here, naming the plugin.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in _split_env("SCINTIPIPE_DISABLE_PLUGINS") or []:
        pm.set_blocked(name)
    for name in DEFAULT_PLUGINS:
        if pm.is_blocked(name):
            continue
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        allowed = _split_env("SCINTIPIPE_PLUGINS")
        if allowed is None:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        else:
            for name in allowed:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    if plugins_dir is not None:
        load_plugins_dir(pm, Path(plugins_dir))
    pm.check_pending()
    if os.environ.get("SCINTIPIPE_TRACE_HOOKS") == "1":
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    return pm


def load_plugins_dir(pm: pluggy.PluginManager, folder: Path) -> None:
    """Register every ``*.py`` file in ``folder`` as a plugin named after the file."""
    if not folder.is_dir():
        raise FileNotFoundError(f"plugins folder {folder} does not exist")
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        if pm.is_blocked(name) or pm.has_plugin(name):
            continue
        spec = importlib.util.spec_from_file_location(f"scintipipe_plugins_dir.{name}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        pm.register(module, name=name)


@lru_cache(maxsize=1)
def default_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager used by the command line."""
    return make_plugin_manager()


def tasks_and_bundles(pm: pluggy.PluginManager) -> TaskRegister:
    """Collect tasks and bundles from every plugin's ``register_tasks``."""
    return collect(pm, "register_tasks", TaskRegister())


def commands(pm: pluggy.PluginManager) -> CommandRegister:
    """Collect click commands from every plugin's ``register_commands``."""
    return collect(pm, "register_commands", CommandRegister())


def simulators(pm: pluggy.PluginManager) -> SimulatorRegister:
    """Collect simulators from every plugin's ``register_simulators``."""
    return collect(pm, "register_simulators", SimulatorRegister())


def networks(pm: pluggy.PluginManager) -> NetworkRegister:
    """Collect networks from every plugin's ``register_networks``."""
    return collect(pm, "register_networks", NetworkRegister())


def centers(pm: pluggy.PluginManager) -> CenterRegister:
    """Collect simulator centres from every plugin's ``register_centers``."""
    return collect(pm, "register_centers", CenterRegister())


def recipes(pm: pluggy.PluginManager) -> RecipeRegister:
    """Collect training recipes from every plugin's ``register_recipes``."""
    return collect(pm, "register_recipes", RecipeRegister())


def plugin_options(pm: pluggy.PluginManager) -> OptionRegister:
    """Collect the options every plugin declares in ``add_options``."""
    return collect(pm, "add_options", OptionRegister())


def training_sources(pm: pluggy.PluginManager) -> TrainingSourceRegister:
    """Collect the extra training data every plugin offers ``scintipipe train`` in ``register_training_sources``."""
    return collect(pm, "register_training_sources", TrainingSourceRegister())


def segmenters(pm: pluggy.PluginManager) -> SegmenterRegister:
    """Collect named segmenters from every plugin's ``register_segmenters``."""
    return collect(pm, "register_segmenters", SegmenterRegister())


def explainers(pm: pluggy.PluginManager) -> ExplainerRegister:
    """Collect named explain methods from every plugin's ``register_explainers``."""
    return collect(pm, "register_explainers", ExplainerRegister())


def served_models(pm: pluggy.PluginManager, bundles: dict[str, Any] | None = None) -> ServedModelRegister:
    """Collect the server's models from every plugin's ``register_served_models``, for the served ``bundles``."""
    return collect(pm, "register_served_models", ServedModelRegister(bundles))


def stage_plugins(pm: pluggy.PluginManager) -> dict[str, tuple[str, ...]]:
    """The plugins implementing each stage hook, in the order pluggy calls them (wrappers first).

    Returns:
        ``{hook: (plugin, ...)}`` for every stage hook (``load_scans`` ... ``report_run``).
    """
    from scintipipe.builtin.stage_timing import STAGE_OF_HOOK

    return {name: tuple(impl.plugin_name for impl in reversed(getattr(pm.hook, name).get_hookimpls())) for name in STAGE_OF_HOOK}


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """List loaded plugins with the hooks each implements and its distribution version.

    Returns:
        One dict per plugin: ``name``, ``hooks`` (sorted), ``version`` (or ``None``),
        ``builtin`` (bool).
    """
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        dist = dists.get(id(plugin))
        rows.append(
            {
                "name": name,
                "hooks": hooks,
                "version": dist.version if dist is not None else None,
                "builtin": name in DEFAULT_PLUGINS,
            }
        )
    return rows
