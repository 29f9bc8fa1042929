"""Built-in ``segment`` stage, learned: the ``thyroid-seg`` bundle's MONAI UNet.

Off by default. Select it with the environment variable ``SCINTIPIPE_SEGMENTER=learned``
(or a ``segmenter`` attribute of ``"learned"`` on ``scan["run_options"]``); otherwise
:func:`segment_scan` returns ``None`` and the classical segmenter (registered
``trylast``) runs. The bundle is loaded once per process. Quantities and the syringe
uptake are computed exactly as for the classical regions.
"""

from __future__ import annotations

import os
from typing import Any

from scintipipe import hookimpl

ENV_VAR = "SCINTIPIPE_SEGMENTER"
_SEGMENTERS: dict[str, Any] = {}


def selected(scan: dict[str, Any]) -> bool:
    """Whether the learned segmenter was asked for (environment or run options)."""
    choice = getattr(scan.get("run_options"), "segmenter", None) or os.environ.get(ENV_VAR, "")
    return str(choice).strip().lower() == "learned"


def segmenter() -> Any:
    """The shipped bundle's :class:`~scintipipe.segment.learned.LearnedSegmenter`, loaded once."""
    if "shipped" not in _SEGMENTERS:
        from scintipipe.segment.learned import LearnedSegmenter, shipped_segmenter_path

        _SEGMENTERS["shipped"] = LearnedSegmenter(shipped_segmenter_path())
    return _SEGMENTERS["shipped"]


@hookimpl
def segment_scan(scan: dict[str, Any], bundle: Any) -> dict[str, Any] | None:
    """Regions from the learned network and their quantities; ``None`` unless selected."""
    if not selected(scan):
        return None
    from scintipipe.segment.result import segmentation_result

    model = segmenter()
    note = f"learned segmenter: bundle {model.bundle.name} {model.bundle.version}, trained on simulated scans, not for clinical use"
    return segmentation_result(scan, model.segment, "learned (MONAI UNet, thyroid-seg bundle)", [note])
