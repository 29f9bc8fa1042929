"""Built-in ``segment`` stage: classical neck segmentation, quantities and syringe uptake.

Registered ``trylast`` so a task plugin (or a learned segmenter) can take over. The
syringe images come from ``scintipipe run --syringe-full/--syringe-empty``: the runner
puts its :class:`~scintipipe.pipeline.RunOptions` in ``scan["run_options"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scintipipe import hookimpl
from scintipipe.segment import quantify, segment_neck
from scintipipe.segment.uptake import HALF_LIFE_H, SyringeCount, read_syringe_dicom, scan_start_seconds, thyroid_uptake_percent

SECONDS_PER_DAY = 86400.0


def syringe_view(meta: dict[str, Any]) -> str:
    """The detector view of the syringe frame to use: the thyroid scan's own."""
    view = str(meta.get("view") or "anterior").upper()
    return "POST" if view.startswith("POST") else "ANT"


def elapsed_seconds(later: float, earlier: float) -> float:
    """``later - earlier``; when one clock has a date and the other only a time of day,
    compare the times of day."""
    difference = later - earlier
    if abs(difference) > 2 * SECONDS_PER_DAY:
        difference = (difference + SECONDS_PER_DAY / 2) % SECONDS_PER_DAY - SECONDS_PER_DAY / 2
    return difference


def uptake_quantities(meta: dict[str, Any], net_counts: float, full_path: Path, empty_path: Path | None) -> tuple[dict[str, float], list[str]]:
    """Uptake and the syringe figures it used, with notes on what was assumed.

    Raises:
        ValueError: a syringe image or the scan lacks the times or durations needed.
    """
    duration = meta.get("frame_duration_s")
    start = scan_start_seconds(meta)
    if not duration or start is None:
        raise ValueError("the scan has no frame duration or acquisition time")
    view = syringe_view(meta)
    full = read_syringe_dicom(full_path, view)
    empty = read_syringe_dicom(empty_path, view) if empty_path else None
    radionuclide = meta.get("radionuclide") or "Tc-99m"
    half_life = HALF_LIFE_H.get(str(radionuclide), HALF_LIFE_H["Tc-99m"])
    full = SyringeCount(full.counts, full.duration_s, start - elapsed_seconds(start, full.time_s), full.view)
    if empty is not None:
        empty = SyringeCount(empty.counts, empty.duration_s, start - elapsed_seconds(start, empty.time_s), empty.view)
    uptake = thyroid_uptake_percent(net_counts, float(duration), start, full, empty, half_life)
    quantities = {
        "uptake_percent": uptake,
        "syringe_full_counts_per_s": full.rate,
        "syringe_full_to_scan_minutes": (start - full.time_s) / 60.0,
    }
    notes = [f"uptake: {radionuclide} half-life {half_life:g} h; syringe frame {full.view or 'first'}"]
    if empty is None:
        notes.append("uptake: no empty-syringe image, residual activity taken as zero (the uptake is low by the residual fraction)")
    else:
        quantities["syringe_empty_counts_per_s"] = empty.rate
    return quantities, notes


@hookimpl(trylast=True)
def segment_scan(scan: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """Thyroid lobes, isthmus, nodules, salivary glands and background, with quantities."""
    image = scan["image"]
    meta = dict(getattr(image, "meta", {}) or {})
    counts = np.asarray(image[0], dtype=np.float32)
    spacing = meta.get("spacing")
    rois = segment_neck(counts, spacing)
    quantities = quantify(counts, rois, spacing)
    notes = []
    if spacing is None:
        notes.append("no pixel spacing: areas left out; a 280 mm field of view was assumed for the method's sizes")
    if meta.get("is_counts") is False:
        notes.append("display image, not counts: count figures and ratios are only indicative")
    options = scan.get("run_options")
    full_path = getattr(options, "syringe_full", None)
    if full_path:
        try:
            extra, uptake_notes = uptake_quantities(meta, quantities["thyroid_net_counts"], Path(full_path), getattr(options, "syringe_empty", None))
            quantities.update(extra)
            notes.extend(uptake_notes)
        except (ValueError, OSError) as exc:
            notes.append(f"uptake not computed: {exc}")
    return {"rois": rois, "quantities": quantities, "method": "classical (top-hat, connected components, GrabCut)", "notes": notes}
