"""Built-in ``segment`` stage: classical neck segmentation, quantities and syringe uptake.

Registered ``trylast`` so a task plugin (or a learned segmenter) can take over. The
syringe images come from ``scintipipe run --syringe-full/--syringe-empty``: the runner
puts its :class:`~scintipipe.pipeline.RunOptions` in ``scan["run_options"]``.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl(trylast=True)
def segment_scan(scan: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """Thyroid lobes, isthmus, nodules, salivary glands and background, with quantities."""
    from scintipipe.segment import segment_neck
    from scintipipe.segment.result import segmentation_result

    return segmentation_result(scan, segment_neck, "classical (top-hat, connected components, GrabCut)")
