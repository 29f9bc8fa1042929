"""The listener's processing step: the same pipeline as ``scintipipe run``, on one study's files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOG = logging.getLogger("scintipipe.dicomnet")


def pipeline_processor(pm: Any, bundle: Any, options: Any) -> Any:
    """A :data:`~scintipipe.dicomnet.listener.Processor` that runs :class:`scintipipe.pipeline.Pipeline`.

    Args:
        pm: the plugin manager.
        bundle: the :class:`~scintipipe.bundle.Bundle`.
        options: the :class:`~scintipipe.pipeline.RunOptions` (``progress`` is best off).

    Returns:
        ``process(files, out_dir)``: runs the study's files together (so a syringe image
        gives its thyroid views the uptake) and returns ``files``, ``classified``,
        ``failures``, ``skipped`` and ``seconds``. The pipeline's notes (skipped files) go
        to the ``scintipipe.dicomnet`` logger at debug level.
    """

    def process(files: list[Path], out_dir: Path) -> dict[str, Any]:
        from scintipipe.pipeline import Pipeline

        summary = Pipeline(pm, bundle, options, log=LOG.debug).run(files, out_dir)
        return {
            "files": summary.files,
            "classified": summary.classified,
            "failures": len(summary.failures),
            "skipped": len(summary.skipped),
            "seconds": round(summary.seconds, 3),
        }

    return process


def deferred_pipeline(pm: Any, bundle: Any, device: str | None, **run_options: Any) -> tuple[Any, Any]:
    """``(process, warm_up)`` that import PyTorch only in warm-up, so the listener answers before PyTorch has loaded.

    Args:
        pm: the plugin manager.
        bundle: the :class:`~scintipipe.bundle.Bundle`.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when present).
        **run_options: other :class:`~scintipipe.pipeline.RunOptions` fields.

    Returns:
        ``warm_up()`` builds the run options and loads the network (the listener calls it
        in its processing thread before the first study); ``process(files, out_dir)`` as
        :func:`pipeline_processor`.
    """
    built: dict[str, Any] = {}

    def load() -> None:
        from scintipipe.pipeline import RunOptions, default_device

        options = RunOptions(device=device or default_device(), progress=False, **run_options)
        bundle.network(options.device)
        built["process"] = pipeline_processor(pm, bundle, options)

    def process(files: list[Path], out_dir: Path) -> dict[str, Any]:
        if "process" not in built:
            load()
        return built["process"](files, out_dir)

    return process, load
