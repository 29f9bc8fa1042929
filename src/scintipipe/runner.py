"""The streaming part of :meth:`scintipipe.pipeline.Pipeline.process`: a bounded, ordered pool.

Decoding, gating and preprocessing run in a pool of worker threads while the calling thread
classifies the previous batch. At most ``in_flight`` units of work are submitted ahead of
the one the caller waits for, so memory holds a few batches, never the folder.

Threads, not processes (measured on the 2-core machine, see ``docs/decisions.md``): the
torch and numpy parts of decoding and preprocessing release the GIL, while a process pool
pays for pickling every scan (a ``MetaTensor`` with its metadata) back to the runner and for
rebuilding the plugin manager in every worker, and gained nothing here.
"""

from __future__ import annotations

import contextvars
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Failure:
    """An input ``Pipeline.process`` could not classify, yielded in its place.

    Attributes:
        source: the file (or ``file#view``) concerned.
        stage: the ``stage`` column of ``errors.csv`` (``load``, ``gate:content``, ...).
        reason: the message for a reader.
        error: the exception raised (``None`` for skips).
        skipped: ``True`` for inputs skipped with a note (side-car files, syringe images),
            which are not failures of the run.
    """

    source: str
    stage: str
    reason: str
    error: BaseException | None = None
    skipped: bool = False


def default_workers() -> int:
    """Worker threads for decoding and preprocessing: one per core beyond the first, at least one."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def default_torch_threads() -> int:
    """PyTorch intra-op threads while a worker pool runs beside the classifier: half the cores, at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


def ordered_map(function: Callable[[Item], Result], items: Iterable[Item], workers: int, in_flight: int | None = None) -> Iterator[Result]:
    """``map(function, items)`` on a pool of ``workers`` threads, in order, with a bounded look-ahead.

    Args:
        function: applied to each item; it should not raise (return failures as values).
        items: consumed lazily, ``in_flight`` ahead of the result being waited for.
        workers: pool threads; ``0`` runs everything in the calling thread.
        in_flight: items submitted but not yet taken by the caller (default ``2 * workers``).

    Yields:
        ``function(item)`` for every item, in the items' order.

    Example:
        >>> list(ordered_map(lambda x: x * x, range(5), workers=2))
        [0, 1, 4, 9, 16]
    """
    if workers <= 0:
        yield from map(function, items)
        return
    limit = max(1, in_flight or 2 * workers)
    pending: deque[Future[Result]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scintipipe-worker") as pool:
        try:
            for item in items:
                pending.append(pool.submit(contextvars.copy_context().run, function, item))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the caller stopped early (an error, KeyboardInterrupt, a break): drop the rest
            for future in pending:
                future.cancel()
