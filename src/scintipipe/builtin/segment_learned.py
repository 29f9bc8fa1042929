"""Built-in segmenter ``learned``: the ``thyroid-seg`` bundle's MONAI UNet.

Chosen with ``scintipipe run --segmenter learned`` (the server's ``segmenter`` param). The
bundle is loaded once per process. Quantities and the syringe uptake are computed exactly
as for the classical regions.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl

_SEGMENTERS: dict[str, Any] = {}


def segmenter() -> Any:
    """The shipped bundle's :class:`~scintipipe.segment.learned.LearnedSegmenter`, loaded once."""
    if "shipped" not in _SEGMENTERS:
        from scintipipe.segment.learned import LearnedSegmenter, shipped_segmenter_path

        _SEGMENTERS["shipped"] = LearnedSegmenter(shipped_segmenter_path())
    return _SEGMENTERS["shipped"]


def segment_learned(scan: dict[str, Any], bundle: Any, context: Any = None) -> dict[str, Any]:
    """Regions from the learned network and their quantities."""
    from scintipipe.segment.result import segmentation_result

    model = segmenter()
    note = f"learned segmenter: bundle {model.bundle.name} {model.bundle.version}, trained on simulated scans, not for clinical use"
    return segmentation_result(scan, model.segment, "learned (MONAI UNet, thyroid-seg bundle)", [note], context=context)


@hookimpl
def register_segmenters(register: Any) -> None:
    """Register ``learned``."""
    register.segmenter("learned", segment_learned, "the thyroid-seg U-Net bundle, trained on simulated scans")
