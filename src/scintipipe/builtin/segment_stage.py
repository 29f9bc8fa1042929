"""Built-in ``segment`` stage: runs the segmenter chosen by name, and owns the stage's options.

``scintipipe run --segmenter NAME`` (the server's ``segmenter`` param) picks one of the
segmenters plugins register with ``register_segmenters`` (built in: ``classical``,
``learned``). Registered ``trylast``, so a task plugin's own ``segment_scan`` takes over.
The syringe images for the thyroid uptake (``--syringe-full``, ``--syringe-empty``) are
options of this stage too; :func:`scintipipe.segment.result.segmentation_result` reads
them from the context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl

DEFAULT_SEGMENTER = "classical"


def check_syringes(options: dict[str, Any]) -> None:
    """Refuse an empty-syringe image without a full one."""
    if options.get("syringe_empty") and not options.get("syringe_full"):
        raise ValueError("--syringe-empty needs --syringe-full")


@hookimpl
def add_options(register: Any) -> None:
    """``--segmenter``, ``--syringe-full`` and ``--syringe-empty``."""
    import click

    image_file = click.Path(exists=True, dir_okay=False, path_type=Path)
    register.option("segmenter", default=DEFAULT_SEGMENTER, choose_from="segmenter", help="Segment stage: the segmenter by name.")
    register.option("syringe_full", type=image_file, help="Full-syringe DICOM image: adds the 99mTc thyroid uptake.", served=False)
    register.option("syringe_empty", type=image_file, help="Empty-syringe (residual) DICOM image for the uptake.", served=False)
    register.check(check_syringes)


@hookimpl(trylast=True)
def segment_scan(scan: dict[str, Any], bundle: Any, context: Any) -> dict[str, Any] | None:
    """The chosen segmenter's result, with ``segmenter`` set to its name."""
    name = context.options.get("segmenter") or DEFAULT_SEGMENTER
    result = context.alternative("segmenter", name).function(scan, bundle, context)
    if result is not None:
        result.setdefault("segmenter", name)
    return result
