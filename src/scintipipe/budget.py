"""A per-input time budget and a progress line for slow inputs.

The runner works on one input (a file, or a DICOM study when segmenting) at a time per
worker thread. :class:`InputClock` notes which input and stage each thread is on;
:meth:`InputClock.check` (called by the runner after each stage hook) turns an input that
has used up its budget into a :class:`~scintipipe.errors.ScanError` naming the file, the
stage and the budget, so the run goes on with the others; a watcher thread prints one line
for each input still working after :data:`SLOW_NOTICE_S` seconds, and again every
:data:`SLOW_NOTICE_S` seconds, so that a long run never looks hung.

The budget is checked between stages: a plugin stuck inside one hook call is reported by
the watcher but cannot be interrupted (Python threads cannot be killed); the loaders' input
limits (``scintipipe.loaders.limits``) keep any one built-in stage short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scintipipe.errors import ScanError

#: default seconds one input may take through load, gate, preprocess and segment
DEFAULT_BUDGET_S = 300.0

#: seconds after which (and then every so often) an input still working gets a progress line
SLOW_NOTICE_S = 30.0


@dataclass
class _Work:
    source: str
    started: float
    stage: str = "load"
    noticed: float = 0.0


class InputClock:
    """Which input each worker thread is on, since when, and whether it is over budget.

    Args:
        budget_s: seconds one input may take; ``0`` or ``None`` for no budget.
        log: where progress lines go.
        notice_s: seconds before the first progress line (and between lines).
    """

    def __init__(self, budget_s: float | None, log: Callable[[str], None], notice_s: float = SLOW_NOTICE_S):
        self.budget_s = budget_s or 0.0
        self.log = log
        self.notice_s = notice_s
        self._work: dict[int, _Work] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, source: str) -> None:
        """This thread starts on ``source``."""
        with self._lock:
            self._work[threading.get_ident()] = _Work(source, time.monotonic())

    def stage(self, stage: str) -> None:
        """This thread's input enters ``stage``."""
        work = self._work.get(threading.get_ident())
        if work is not None:
            work.stage = stage

    def check(self) -> None:
        """Raise :class:`ScanError` when this thread's input is over its budget."""
        work = self._work.get(threading.get_ident())
        if work is None or not self.budget_s:
            return
        elapsed = time.monotonic() - work.started
        if elapsed > self.budget_s:
            raise ScanError(
                work.source,
                f"took {elapsed:.1f} s (up to the {work.stage} stage), over the per-input time budget of {self.budget_s:g} s; raise it with --time-budget",
            )

    def finish(self) -> None:
        """This thread is done with its input."""
        with self._lock:
            self._work.pop(threading.get_ident(), None)

    def __enter__(self) -> InputClock:
        self._watcher = threading.Thread(target=self._watch, name="scintipipe-slow-inputs", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2)

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.notice_s / 2)):
            now = time.monotonic()
            with self._lock:
                slow = [work for work in self._work.values() if now - work.started >= self.notice_s and now - work.noticed >= self.notice_s]
                for work in slow:
                    work.noticed = now
            for work in slow:
                self.log(f"still working on {work.source}: {now - work.started:.0f} s so far, in the {work.stage} stage")
