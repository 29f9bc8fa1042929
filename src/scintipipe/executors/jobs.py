"""Jobs, their keys and the on-disk cache of finished jobs, and :func:`run_jobs`.

A job is a picklable spec handed to a top-level function; its key is a SHA-256 over
everything that decides its result (data hash, recipe, split indices, seed, ...), so a
finished job's result, stored as ``<cache>/<key>.json``, stands in for running it again.
A rerun with the same cache folder runs only the jobs without a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from scintipipe.errors import ScintipipeError


@dataclass(frozen=True)
class Job:
    """One unit of a grid.

    Attributes:
        key: :func:`job_key` of its inputs (the cache file's name).
        name: what it is, for progress lines (``small split 3``).
        spec: the argument of the job function (picklable; sent to a worker).
    """

    key: str
    name: str
    spec: Any


class JobsFailed(ScintipipeError):
    """Some jobs failed after their retries; the others finished (and are cached)."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        super().__init__(f"{len(failures)} job(s) failed: " + "; ".join(f"{name}: {reason}" for name, reason in failures[:5]))


def job_key(**inputs: Any) -> str:
    """SHA-256 of the JSON of ``inputs`` (sorted keys): equal inputs, equal key.

    Example:
        >>> job_key(recipe={"epochs": 1}, seed=3) == job_key(seed=3, recipe={"epochs": 1})
        True
    """
    text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class JobCache:
    """Finished jobs' results as ``<folder>/<key>.json`` (written atomically)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The stored result, or ``None`` (also for an unreadable, half-written file)."""
        try:
            return json.loads(self.path(key).read_text())["result"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, job: Job, result: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": job.key, "name": job.name, "result": result})
        handle, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(tmp, self.path(job.key))


@dataclass
class JobsReport:
    """What :func:`run_jobs` did: results in job order, and which jobs ran or came from the cache."""

    results: list[Any]
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_jobs(
    executor: Any,
    fn: Callable[[Any], Any],
    jobs: Sequence[Job],
    cache: JobCache | None = None,
    retries: int = 2,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    describe: Callable[[Job, Any], str] | None = None,
) -> JobsReport:
    """Run the jobs without a cached result through ``executor``; return every result.

    Results are JSON values; each is cached as it arrives, so an interrupted grid keeps its
    finished jobs. A fresh result goes through the same JSON round trip as a cached one, so
    a rerun gives the same values whichever jobs it ran.

    Args:
        executor: an executor from :func:`scintipipe.executors.open_executor`.
        fn: top-level function ``fn(spec) -> result`` (importable on the workers).
        jobs: the grid.
        cache: where finished jobs are kept (``None``: nothing cached).
        retries: times a failed or lost job is run again.
        progress: progress bar of jobs done, with the number running (``None``: on a terminal).
        log: progress lines (one per finished job: done/total, running).
        describe: a job's result in words, for its progress line.

    Raises:
        JobsFailed: some jobs failed after their retries (the others are cached).
    """
    started = time.perf_counter()
    results: list[Any] = [None] * len(jobs)
    report = JobsReport(results)
    todo = []
    for index, job in enumerate(jobs):
        cached = cache.get(job.key) if cache is not None else None
        if cached is not None:
            results[index] = cached
            report.cached.append(job.name)
        else:
            todo.append(index)
    log(f"{len(jobs)} jobs: {len(todo)} to run, {len(report.cached)} cached; executor {executor.describe()}")
    bar = tqdm(
        total=len(jobs), initial=len(report.cached), desc="jobs", unit="job", disable=None if progress is None else not progress, file=sys.stderr
    )
    failures: list[tuple[str, str]] = []
    done = len(report.cached)

    def tick(running: int) -> None:
        bar.set_postfix(running=running, refresh=True)

    for position, outcome in executor.as_completed(fn, [jobs[i].spec for i in todo], [jobs[i].name for i in todo], retries, tick):
        job = jobs[todo[position]]
        done += 1
        bar.update(1)
        if isinstance(outcome, BaseException):
            failures.append((job.name, f"{type(outcome).__name__}: {outcome}"))
            log(f"[{done}/{len(jobs)} done, {executor.running()} running] {job.name} failed: {outcome}")
            continue
        result = json.loads(json.dumps(outcome))
        if cache is not None:
            cache.put(job, result)
        results[todo[position]] = result
        report.ran.append(job.name)
        note = f": {describe(job, result)}" if describe else ""
        log(f"[{done}/{len(jobs)} done, {executor.running()} running] {job.name}{note}")
    bar.close()
    report.seconds = time.perf_counter() - started
    if failures:
        raise JobsFailed(failures)
    return report
