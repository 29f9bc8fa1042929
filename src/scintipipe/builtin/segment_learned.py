"""Built-in ``segment`` stage, learned: the ``thyroid-seg`` bundle's MONAI UNet.

Off by default. Select it with the environment variable ``SCINTIPIPE_SEGMENTER=learned``
(or a ``segmenter`` attribute of ``"learned"`` on ``scan["run_options"]``); otherwise
:func:`segment_scan` returns ``None`` and the classical segmenter (registered
``trylast``) runs. The bundle is loaded once per process. Quantities and the syringe
uptake are computed exactly as for the classical regions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe import hookimpl
from scintipipe.builtin.segment_classical import uptake_quantities
from scintipipe.segment import quantify

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
    image = scan["image"]
    meta = dict(getattr(image, "meta", {}) or {})
    counts = np.asarray(image[0], dtype=np.float32)
    spacing = meta.get("spacing")
    model = segmenter()
    rois = model.segment(counts, spacing)
    quantities = quantify(counts, rois, spacing)
    notes = [f"learned segmenter: bundle {model.bundle.name} {model.bundle.version}, trained on simulated scans, not for clinical use"]
    if spacing is None:
        notes.append("no pixel spacing: areas left out; a 280 mm field of view was assumed")
    if meta.get("is_counts") is False:
        notes.append("display image, not counts: count figures and ratios are only indicative")
    options = scan.get("run_options")
    full_path = getattr(options, "syringe_full", None)
    if full_path and "thyroid_net_counts" in quantities:
        try:
            extra, uptake_notes = uptake_quantities(meta, quantities["thyroid_net_counts"], Path(full_path), getattr(options, "syringe_empty", None))
            quantities.update(extra)
            notes.extend(uptake_notes)
        except (ValueError, OSError) as exc:
            notes.append(f"uptake not computed: {exc}")
    return {"rois": rois, "quantities": quantities, "method": "learned (MONAI UNet, thyroid-seg bundle)", "notes": notes}
