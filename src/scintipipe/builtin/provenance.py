"""Built-in cross-cutting plugin: what produced each case, recorded in its report.

A ``wrapper=True`` ``report_case`` implementation sets ``case["provenance"]`` before the
reporters run, so ``report.json`` (and any other reporter) carries it:

``scintipipe_version``
    The installed scintipipe.
``bundle``
    The bundle's ``name`` and ``version``.
``plugins``
    For each stage hook the case went through, the plugins implementing it, in the order
    pluggy calls them (``RunContext.stage_plugins``: the wrappers, such as the stage
    timing, this plugin and the HTML reporter, first).
``options``
    The run's ``device`` and every plugin option's value (``RunContext.options``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from scintipipe import __version__, hookimpl


def stages_run(case: dict[str, Any]) -> list[str]:
    """The stage hooks ``case`` went through, in order.

    Every classified case was loaded, gated, preprocessed, scored by the learned gate and
    classified; ``segment_scan`` ran when the case has a ``segmentation`` and
    ``explain_batch`` when it has ``heatmaps``; ``report_case`` is running.

    Example:
        >>> stages_run({"prediction": {}, "heatmaps": {}})
        ['load_scans', 'gate_scan', 'preprocess_scan', 'gate_batch', 'classify_batch', 'explain_batch', 'report_case']
    """
    hooks = ["load_scans", "gate_scan", "preprocess_scan"]
    if "segmentation" in case:
        hooks.append("segment_scan")
    hooks += ["gate_batch", "classify_batch"]
    if "heatmaps" in case:
        hooks.append("explain_batch")
    return [*hooks, "report_case"]


def case_provenance(case: dict[str, Any], bundle: Any, context: Any) -> dict[str, Any]:
    """The ``provenance`` record of ``case``, classified with ``bundle`` in the run ``context``."""
    implementers = context.stage_plugins
    return {
        "scintipipe_version": __version__,
        "bundle": {"name": getattr(bundle, "name", None), "version": getattr(bundle, "version", None)},
        "plugins": {hook: list(implementers.get(hook, ())) for hook in stages_run(case)},
        "options": {"device": context.device, **context.options},
    }


@hookimpl(wrapper=True)
def report_case(case: dict[str, Any], bundle: Any, context: Any) -> Generator[None, Any, Any]:
    """Record ``case["provenance"]`` for the reporters, then let them run."""
    case["provenance"] = case_provenance(case, bundle, context)
    return (yield)
