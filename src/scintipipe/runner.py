"""The streaming part of :meth:`scintipipe.pipeline.Pipeline.process`: a bounded, ordered pool.

Decoding, gating and preprocessing run in a pool of workers while the calling thread
classifies the previous batch. At most ``in_flight`` units of work are submitted ahead of
the one the caller waits for, so memory holds a few batches, never the folder.

Two kinds of pool (``docs/decisions.md``, ADRs 13 and 15):

- **threads** (:func:`ordered_map`): everywhere, and the only kind the server, the DICOM
  listener and Dask workers use. Most of a scan's time is pydicom and MONAI Python code
  holding the GIL, so threads overlap little.
- **forked processes** (:func:`ordered_map` with ``processes=True``): ``scintipipe run`` on
  CPU where the platform can fork, for :data:`MIN_UNITS_FOR_PROCESSES` units or more. The workers are forked from the runner, so they share
  its plugin manager, bundle and options without pickling any of them; each result comes
  back as one ``pickle`` byte string (PyTorch's own reducers would move every tensor
  through shared memory, which was slower than the work itself).
"""

from __future__ import annotations

import contextvars
import dataclasses
import io
import multiprocessing
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

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


def portable(item: Result) -> Result:
    """``item``, or for a :class:`Failure` whose exception cannot be pickled, a copy with a
    :class:`~scintipipe.errors.ScanError` of the same reason in its place (a worker process
    sends its failures back pickled; a plugin's own exception type may not survive it)."""
    if not isinstance(item, Failure) or item.error is None:
        return item
    try:
        pickle.loads(pickle.dumps(item.error))
    except Exception:  # noqa: BLE001  (any failure to round-trip: replace it)
        from scintipipe.errors import ScanError

        return dataclasses.replace(item, error=ScanError(item.source, f"{type(item.error).__name__}: {item.reason}"))
    return item


def default_workers(processes: bool = False) -> int:
    """Workers for decoding and preprocessing: threads, one per core beyond the first, at
    least one; processes, one per core (the runner's own process mostly waits for them)."""
    cores = os.cpu_count() or 1
    return max(1, min(8, cores)) if processes else max(1, min(4, cores - 1))


def default_torch_threads() -> int:
    """PyTorch intra-op threads while a worker pool runs beside the classifier: half the cores, at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


#: fewer units than this are prepared by threads even where processes are asked for: forking
#: the pool costs about 70 ms, which a worker process wins back at about 5 ms a scan only
#: after some 30 scans (measured on the 2-core machine, docs/decisions.md, ADR 15)
MIN_UNITS_FOR_PROCESSES = 32


#: units a worker process prepares per task (:func:`ordered_map`'s ``chunk_size``). On 2,000
#: scans, two interleaved rounds: chunks of 1 / 4 / 8 / 16 ran at 108-114 / 137-139 / 138-145 /
#: 159-165 scans/s; 32 and 64 were no faster than 16 (docs/decisions.md, ADR 15)
PROCESS_CHUNK_SIZE = 16

#: a shorter run gets smaller chunks, so that each worker still has this many: the last chunk
#: then leaves the other workers idle for a small share of the run
MIN_CHUNKS_PER_WORKER = 8


def chunk_size_for(n_units: int, workers: int) -> int:
    """Units per chunk for a run of ``n_units`` cheap units on ``workers`` processes.

    Example:
        >>> chunk_size_for(2000, 2), chunk_size_for(200, 2), chunk_size_for(40, 2)
        (16, 12, 2)
    """
    return max(1, min(PROCESS_CHUNK_SIZE, n_units // (MIN_CHUNKS_PER_WORKER * max(1, workers))))


def can_fork_workers() -> bool:
    """Whether worker processes can be forked here: a POSIX platform, and not inside a daemonic process (a Dask or multiprocessing worker)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def ordered_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    in_flight: int | None = None,
    processes: bool = False,
    worker_setup: Callable[[], None] | None = None,
    chunk_size: int = 1,
) -> Iterator[Result]:
    """``map(function, items)`` on a pool of ``workers``, in order, with a bounded look-ahead.

    Args:
        function: applied to each item; it should not raise (return failures as values).
        items: consumed lazily, ``in_flight`` ahead of the result being waited for.
        workers: pool threads or processes; ``0`` runs everything in the calling thread.
        in_flight: items submitted but not yet taken by the caller (default ``2 * workers``;
            with processes, ``2 * workers`` chunks).
        processes: fork worker processes instead of threads (see :func:`can_fork_workers`).
            ``function`` and ``worker_setup`` reach the workers by the fork, not by pickling;
            items and results are pickled.
        worker_setup: run once in each worker process before its first item.
        chunk_size: items sent to a worker process in one task, and their results sent
            back in one message (processes only; ``in_flight`` still counts items). Each
            task costs a few hundred microseconds of queueing and pickling on both sides,
            which a chunk pays once.

    Yields:
        ``function(item)`` for every item, in the items' order.

    Raises:
        concurrent.futures.process.BrokenProcessPool: a worker process died (killed, or
            out of memory).

    Example:
        >>> list(ordered_map(lambda x: x * x, range(5), workers=2))
        [0, 1, 4, 9, 16]
    """
    if workers <= 0:
        yield from map(function, items)
        return
    if processes:
        chunk, limit = process_chunks(workers, in_flight, chunk_size)
        pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_install_in_worker, initargs=(function, worker_setup)
        )
        with pool:
            for results in _bounded(lambda chunk_items: pool.submit(_call_in_worker, chunk_items), _chunks(items, chunk), limit):
                yield from pickle.loads(results)
        return
    limit = max(1, in_flight or 2 * workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scintipipe-worker") as threads:
        # each call runs in a copy of the caller's context, taken at submission, as a plain call would
        yield from _bounded(lambda item: threads.submit(contextvars.copy_context().run, function, item), items, limit)


def process_chunks(workers: int, in_flight: int | None, chunk_size: int) -> tuple[int, int]:
    """``(items per chunk, chunks in flight)`` for :func:`ordered_map` on worker processes.

    Two chunks a worker are in flight, so none waits for the caller; a given ``in_flight``
    (items) caps the chunk size so that it still holds two chunks a worker.

    Example:
        >>> process_chunks(2, None, 16), process_chunks(2, 8, 16), process_chunks(2, 1, 16)
        ((16, 4), (2, 4), (1, 1))
    """
    if in_flight is None:
        return max(1, chunk_size), 2 * max(1, workers)
    chunk = max(1, min(chunk_size, in_flight // (2 * max(1, workers))))
    return chunk, max(1, in_flight // chunk)


def _bounded(submit: Callable[[Any], Future[Any]], items: Iterable[Any], limit: int) -> Iterator[Any]:
    """``submit(item)`` for each item, at most ``limit`` ahead of the result yielded; the results in order."""
    pending: deque[Future[Any]] = deque()
    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # the caller stopped early (an error, KeyboardInterrupt, a break): drop the rest
        for future in pending:
            future.cancel()


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Lists of ``size`` consecutive items (the last may be shorter)."""
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: the function a forked worker process applies (set by :func:`_install_in_worker`)
_WORKER_FUNCTION: Callable[[Any], Any] | None = None


def _install_in_worker(function: Callable[[Any], Any], setup: Callable[[], None] | None) -> None:
    global _WORKER_FUNCTION
    _WORKER_FUNCTION = function
    if setup is not None:
        setup()


def _call_in_worker(chunk: list[Any]) -> bytes:
    function = _WORKER_FUNCTION
    assert function is not None, "not a worker process forked by ordered_map"
    return dumps([function(item) for item in chunk])


def dumps(obj: Any) -> bytes:
    """``pickle.dumps(obj)`` with CPU tensors (MONAI metatensors too) stored as NumPy arrays.

    A tensor pickled as itself goes through ``torch.serialization``, about 0.5 ms a tensor
    each way; as an array it is a copy of its bytes. ``pickle.loads`` reads the result.
    """
    buffer = io.BytesIO()
    _TensorsAsArrays(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


class _TensorsAsArrays(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")  # a tensor exists only if PyTorch is imported
        if torch is None or not isinstance(obj, torch.Tensor) or obj.device.type != "cpu" or obj.requires_grad:
            return NotImplemented
        from monai.data import MetaTensor

        if isinstance(obj, MetaTensor):
            return _meta_tensor, (obj.as_tensor().numpy(), obj.__dict__)
        return torch.from_numpy, (obj.numpy(),)


def _meta_tensor(array: Any, state: dict[str, Any]) -> Any:
    """A ``MetaTensor`` of ``array`` with the attributes ``state`` (metadata, applied operations)."""
    import torch
    from monai.data import MetaTensor

    tensor = torch.from_numpy(array).as_subclass(MetaTensor)  # not MetaTensor(...): its __init__ (0.1 ms) makes what state replaces
    tensor.__dict__.update(state)
    return tensor
