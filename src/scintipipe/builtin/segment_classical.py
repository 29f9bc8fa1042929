"""Built-in segmenter ``classical``: neck regions without training, quantities and syringe uptake.

Registered by name; the segment stage (:mod:`scintipipe.builtin.segment_stage`) runs it
unless ``--segmenter`` names another.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


def segment_classical(scan: dict[str, Any], bundle: Any, context: Any = None) -> dict[str, Any]:
    """Thyroid lobes, isthmus, nodules, salivary glands and background, with quantities."""
    from scintipipe.segment import segment_neck
    from scintipipe.segment.result import segmentation_result

    return segmentation_result(scan, segment_neck, "classical (top-hat, connected components, GrabCut)", context=context)


@hookimpl
def register_segmenters(register: Any) -> None:
    """Register ``classical``."""
    register.segmenter("classical", segment_classical, "top-hat, connected components and GrabCut, no training")
