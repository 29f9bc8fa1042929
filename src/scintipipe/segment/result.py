"""What every segmenter plugin returns: regions, their quantities, syringe uptake, notes.

A segmenter only has to find the regions; :func:`segmentation_result` does the rest the
same way for all of them, so quantities and uptake never depend on which one ran.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scintipipe.segment.quantify import quantify
from scintipipe.segment.uptake import uptake_quantities

if TYPE_CHECKING:
    from scintipipe.context import RunContext


def segmentation_result(
    scan: dict[str, Any],
    find_regions: Callable[[np.ndarray, Any], dict[str, np.ndarray]],
    method: str,
    notes: list[str] | None = None,
    context: RunContext | None = None,
) -> dict[str, Any]:
    """Segment ``scan`` with ``find_regions`` and quantify the regions.

    Args:
        scan: the scan (``scan["image"]`` holds counts; ``scan["syringe"]``
            (``{"full": file, "empty": file}``) names the syringe images the runner found
            in the scan's study).
        find_regions: ``(counts, spacing) -> {region name: bool mask}`` on the scan grid.
        method: how the regions were found, for the report.
        notes: notes of the segmenter itself, reported first.
        context: the run's context; its options ``syringe_full`` and ``syringe_empty``
            (``--syringe-full``, ``--syringe-empty``) win over the images found in the study.

    Returns:
        ``{"rois", "quantities", "method", "notes"}`` as the ``segment_scan`` hook returns.
    """
    image = scan["image"]
    meta = dict(getattr(image, "meta", {}) or {})
    counts = np.asarray(image[0], dtype=np.float32)
    spacing = meta.get("spacing")
    rois = find_regions(counts, spacing)
    quantities = quantify(counts, rois, spacing)
    notes = list(notes or [])
    if spacing is None:
        notes.append("no pixel spacing: areas left out; a 280 mm field of view was assumed for the method's sizes")
    if meta.get("is_counts") is False:
        notes.append("display image, not counts: count figures and ratios are only indicative")
    options = context.options if context is not None else {}
    full_path, empty_path = options.get("syringe_full"), options.get("syringe_empty")
    found = scan.get("syringe") or {}
    if not full_path and found.get("full"):
        full_path, empty_path = found["full"], found.get("empty")
        notes.append(
            f"uptake: syringe image found in the same study: {Path(full_path).name}" + (f" (empty: {Path(empty_path).name})" if empty_path else "")
        )
    if full_path and "thyroid_net_counts" in quantities:
        try:
            extra, uptake_notes = uptake_quantities(meta, quantities["thyroid_net_counts"], Path(full_path), Path(empty_path) if empty_path else None)
            quantities.update(extra)
            notes.extend(uptake_notes)
        except (ValueError, OSError) as exc:
            notes.append(f"uptake not computed: {exc}")
    return {"rois": rois, "quantities": quantities, "method": method, "notes": notes}
