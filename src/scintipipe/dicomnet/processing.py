"""The listener's processing step: the same pipeline as ``scintipipe run``, on the files of the studies that are ready."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOG = logging.getLogger("scintipipe.dicomnet")

#: ``on_done(index, summary)``: the study at ``index`` of a batch has all its results written
StudyDone = Callable[[int, dict[str, Any]], None]
#: ``process(studies, on_done)`` runs one pipeline pass over several studies' ``(files, out_dir)``; their summaries
Processor = Callable[[list[tuple[list[Path], Path]], StudyDone | None], list[dict[str, Any]]]


def brief(summary: Any, batch: int) -> dict[str, Any]:
    """The journal's summary of one study's run: ``files``, ``classified``, ``failures``, ``skipped``, ``seconds``, ``batch``."""
    return {
        "files": summary.files,
        "classified": summary.classified,
        "failures": len(summary.failures),
        "skipped": len(summary.skipped),
        "seconds": round(summary.seconds, 3),
        "batch": batch,
    }


def pipeline_processor(pm: Any, bundle: Any, options: Any) -> Processor:
    """A :data:`Processor` that runs :class:`scintipipe.pipeline.Pipeline` once over a batch of studies.

    Args:
        pm: the plugin manager.
        bundle: the :class:`~scintipipe.bundle.Bundle`.
        options: the :class:`~scintipipe.pipeline.RunOptions` (``progress`` is best off).

    Returns:
        ``process(studies, on_done)``: one :meth:`~scintipipe.pipeline.Pipeline.run_groups`
        pass over every study's files (views batched together; each study's files stay
        one unit, so its syringe images give its thyroid views the uptake), each study's
        results in its own folder. ``on_done(index, summary)`` is called as each study's
        folder is complete; the summaries (:func:`brief`; ``seconds`` from the pass's
        start to that study's completion, ``batch`` the number of studies in the pass) are
        returned in order. The pipeline's notes (skipped files) go to the
        ``scintipipe.dicomnet`` logger at debug level.
    """

    def process(studies: list[tuple[list[Path], Path]], on_done: StudyDone | None = None) -> list[dict[str, Any]]:
        from scintipipe.pipeline import Pipeline

        def done(index: int, summary: Any) -> None:
            if on_done is not None:
                on_done(index, brief(summary, len(studies)))

        summaries = Pipeline(pm, bundle, options, log=LOG.debug).run_groups(studies, done)
        return [brief(summary, len(studies)) for summary in summaries]

    return process


def deferred_pipeline(pm: Any, bundle: Any, device: str | None, **run_options: Any) -> tuple[Processor, Callable[[], None]]:
    """``(process, warm_up)`` that import PyTorch only in warm-up, so the listener answers before PyTorch has loaded.

    Args:
        pm: the plugin manager.
        bundle: the :class:`~scintipipe.bundle.Bundle`.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when present).
        **run_options: other :class:`~scintipipe.pipeline.RunOptions` fields.

    Returns:
        ``warm_up()`` builds the run options and loads the network once (the listener
        calls it in its processing thread before the first study); ``process`` as
        :func:`pipeline_processor`.
    """
    built: dict[str, Processor] = {}

    def load() -> None:
        from scintipipe.pipeline import RunOptions, default_device

        options = RunOptions(device=device or default_device(), progress=False, **run_options)
        bundle.network(options.device)
        built["process"] = pipeline_processor(pm, bundle, options)

    def process(studies: list[tuple[list[Path], Path]], on_done: StudyDone | None = None) -> list[dict[str, Any]]:
        if "process" not in built:
            load()
        return built["process"](studies, on_done)

    return process, load
