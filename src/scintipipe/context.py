"""What a run gives every stage hook besides its data: :class:`RunContext`.

The runner builds one context per run and passes it to the stage hooks as their
``context`` argument. A hook implementation that does not need it leaves ``context`` out
of its signature (pluggy passes only the arguments an implementation names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scintipipe.bundle import Bundle
    from scintipipe.registry import Alternative


@dataclass(frozen=True)
class RunContext:
    """The run a stage hook is called in.

    Attributes:
        options: every plugin option's value by name (the names plugins declare in
            ``add_options``, e.g. ``context.options["segmenter"]``), defaults filled in.
        device: ``"cpu"`` or ``"cuda"``.
        out_dir: the run's results folder; ``None`` outside :meth:`Pipeline.run`
            (the server, training).
        bundle: the bundle the run classifies with.
        segmenters: the named segmenters plugins registered (``register_segmenters``).
        explainers: the named explain methods plugins registered (``register_explainers``).
        stage_plugins: the plugins implementing each stage hook, in the order pluggy calls
            them, wrappers first (``{"preprocess_scan": ("scintipipe.builtin.stage_timing",
            "scintipipe.builtin.preprocess_bundle")}``); the provenance plugin records them
            in every report.

    Example:
        >>> @hookimpl
        ... def report_case(case, bundle, out_dir, context):
        ...     if not context.options["my_plugin_notes"]:
        ...         return None
        ...     ...
    """

    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    out_dir: Path | None = None
    bundle: Bundle | None = None
    segmenters: dict[str, Alternative] = field(default_factory=dict)
    explainers: dict[str, Alternative] = field(default_factory=dict)
    stage_plugins: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def alternative(self, kind: str, name: str) -> Alternative:
        """The registered alternative ``name`` of ``kind`` (``"segmenter"`` or ``"explainer"``).

        Raises:
            KeyError: none of that name is registered (the message lists those that are).
        """
        alternatives = self.segmenters if kind == "segmenter" else self.explainers
        if name not in alternatives:
            raise KeyError(f"no {kind} named {name!r}; registered: {', '.join(sorted(alternatives)) or 'none'}")
        return alternatives[name]
