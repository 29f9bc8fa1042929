"""Built-in cross-cutting plugin: how long each stage-hook call takes.

Every stage hook has a ``wrapper=True`` implementation here that times the call of all the
other implementations and adds it to the :class:`StageTimes` of the current run. The
runner (:meth:`scintipipe.pipeline.Pipeline.process`) opens one with :func:`recording`;
outside a recording (or when this plugin is blocked) the wrappers only pass the call on.

The current accumulator is a :class:`contextvars.ContextVar`, so concurrent runs (the
server's threads) keep apart, and the runner's worker threads see their run's accumulator
because it submits their work in a copy of its context.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from scintipipe import hookimpl

#: the stage each hook belongs to (as the ``stage`` column of ``errors.csv`` names them)
STAGE_OF_HOOK = {
    "load_scans": "load",
    "gate_scan": "gate",
    "gate_batch": "gate",
    "preprocess_scan": "preprocess",
    "segment_scan": "segment",
    "classify_batch": "classify",
    "explain_batch": "explain",
    "report_case": "report",
    "report_run": "report",
}


class StageTimes:
    """Seconds spent in, and calls of, each stage hook during one run (thread-safe).

    Example:
        >>> times = StageTimes()
        >>> times.add("load_scans", 0.25)
        >>> times.by_stage()["load"]
        {'seconds': 0.25, 'calls': 1}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, hook_name: str, seconds: float, calls: int = 1) -> None:
        """Add ``seconds`` spent in ``calls`` calls of ``hook_name``."""
        with self._lock:
            self.seconds[hook_name] = self.seconds.get(hook_name, 0.0) + seconds
            self.calls[hook_name] = self.calls.get(hook_name, 0) + calls

    def by_hook(self) -> dict[str, dict[str, float]]:
        """``{hook: {"seconds": s, "calls": n}}`` for every hook called."""
        with self._lock:
            return {name: {"seconds": self.seconds[name], "calls": self.calls[name]} for name in self.seconds}

    def by_stage(self) -> dict[str, dict[str, float]]:
        """``{stage: {"seconds": s, "calls": n}}``, the hooks of one stage added up."""
        stages: dict[str, dict[str, float]] = {}
        for name, figures in self.by_hook().items():
            entry = stages.setdefault(STAGE_OF_HOOK.get(name, name), {"seconds": 0.0, "calls": 0})
            entry["seconds"] += figures["seconds"]
            entry["calls"] += figures["calls"]
        return stages

    def shares(self) -> dict[str, float]:
        """Each stage's fraction of the time spent in all stage hooks together."""
        stages = self.by_stage()
        total = sum(entry["seconds"] for entry in stages.values()) or 1.0
        return {stage: entry["seconds"] / total for stage, entry in stages.items()}


CURRENT_TIMES: ContextVar[StageTimes | None] = ContextVar("scintipipe_stage_times", default=None)


@contextmanager
def recording(times: StageTimes) -> Iterator[StageTimes]:
    """Record the stage-hook calls made in this context (and the copies taken of it) into ``times``."""
    token = CURRENT_TIMES.set(times)
    try:
        yield times
    finally:
        CURRENT_TIMES.reset(token)


def timed(hook_name: str) -> Generator[None, Any, Any]:
    """The body of every wrapper: time the other implementations, pass their result on."""
    times = CURRENT_TIMES.get()
    if times is None:
        return (yield)
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        times.add(hook_name, time.perf_counter() - start)


@hookimpl(wrapper=True, tryfirst=True)
def load_scans() -> Generator[None, Any, Any]:
    """Time ``load_scans``."""
    return (yield from timed("load_scans"))


@hookimpl(wrapper=True, tryfirst=True)
def gate_scan() -> Generator[None, Any, Any]:
    """Time ``gate_scan``."""
    return (yield from timed("gate_scan"))


@hookimpl(wrapper=True, tryfirst=True)
def gate_batch() -> Generator[None, Any, Any]:
    """Time ``gate_batch``."""
    return (yield from timed("gate_batch"))


@hookimpl(wrapper=True, tryfirst=True)
def preprocess_scan() -> Generator[None, Any, Any]:
    """Time ``preprocess_scan``."""
    return (yield from timed("preprocess_scan"))


@hookimpl(wrapper=True, tryfirst=True)
def segment_scan() -> Generator[None, Any, Any]:
    """Time ``segment_scan``."""
    return (yield from timed("segment_scan"))


@hookimpl(wrapper=True, tryfirst=True)
def classify_batch() -> Generator[None, Any, Any]:
    """Time ``classify_batch``."""
    return (yield from timed("classify_batch"))


@hookimpl(wrapper=True, tryfirst=True)
def explain_batch() -> Generator[None, Any, Any]:
    """Time ``explain_batch``."""
    return (yield from timed("explain_batch"))


@hookimpl(wrapper=True, tryfirst=True)
def report_case() -> Generator[None, Any, Any]:
    """Time ``report_case`` (every reporter, the HTML wrapper included)."""
    return (yield from timed("report_case"))


@hookimpl(wrapper=True, tryfirst=True)
def report_run() -> Generator[None, Any, Any]:
    """Time ``report_run``."""
    return (yield from timed("report_run"))
