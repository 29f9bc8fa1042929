"""Where jobs run: in this process, or on a Dask cluster (local processes, a scheduler, Slurm).

scintipipe writes no scheduler of its own: ``dask.distributed`` places the jobs, retries
them (``Client.submit(..., retries=n)``), and moves a job whose worker died to another
(the scheduler's ``allowed-failures``); ``dask-jobqueue`` turns Slurm allocations into
Dask workers. Both come with the ``scale`` extra.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scintipipe.extras import require_extra

EXECUTORS = ("local", "dask", "slurm")


@dataclass
class SlurmSettings:
    """One Slurm job's resources (each job runs ``processes`` Dask workers).

    Attributes:
        cores: CPU cores per Slurm job.
        memory: memory per Slurm job (``"16GB"``).
        walltime: ``HH:MM:SS`` per Slurm job.
        queue: the partition (``#SBATCH -p``).
        processes: Dask workers per Slurm job (default 1: one worker per node, all its cores to PyTorch).
        account: accounting string (``#SBATCH -A``).
        extra: further ``SLURMCluster`` keywords (``job_extra_directives``, ``local_directory``, ``interface``, ...).
    """

    cores: int = 4
    memory: str = "16GB"
    walltime: str = "04:00:00"
    queue: str | None = None
    processes: int = 1
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> SlurmSettings:
        """Read a JSON or YAML file of these fields (unknown keys go to ``extra``); non-``None`` ``overrides`` win."""
        text = Path(path).read_text()
        try:
            values = json.loads(text)
        except ValueError:
            import yaml  # type: ignore[import-untyped]  # a dask dependency (scale extra); no stubs installed

            values = yaml.safe_load(text)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of Slurm settings, found {type(values).__name__}")
        known = {k: values.pop(k) for k in list(values) if k in cls.__dataclass_fields__ and k != "extra"}
        settings = cls(**known, extra={**values.pop("extra", {}), **values})
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings

    def cluster_kwargs(self) -> dict[str, Any]:
        """The keywords of ``dask_jobqueue.SLURMCluster``."""
        kwargs: dict[str, Any] = {"cores": self.cores, "memory": self.memory, "walltime": self.walltime, "processes": self.processes}
        if self.queue:
            kwargs["queue"] = self.queue
        if self.account:
            kwargs["account"] = self.account
        return {**kwargs, **self.extra}


@dataclass
class ExecutorSettings:
    """What ``--executor``, ``--scheduler``, ``--workers`` and the Slurm options asked for.

    Attributes:
        kind: ``local``, ``dask`` or ``slurm``.
        workers: ``local``: processes of a ``LocalCluster`` (``None``: in this process);
            ``dask`` without a scheduler: the same; ``slurm``: Slurm jobs to start.
        scheduler: ``dask``: address of a running scheduler (``tcp://HOST:8786``).
        slurm: ``slurm``: each Slurm job's resources.
        retries: times a failed or lost job is run again.
    """

    kind: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    retries: int = 2

    def validate(self) -> None:
        """Raise ``ValueError`` for combinations that cannot work."""
        if self.kind not in EXECUTORS:
            raise ValueError(f"unknown executor {self.kind!r}; choose from {', '.join(EXECUTORS)}")
        if self.scheduler and self.kind != "dask":
            raise ValueError("--scheduler goes with --executor dask")


class InProcess:
    """Runs jobs one after the other in this process (the default; no extra needed)."""

    in_process = True
    n_workers = 1

    def __init__(self) -> None:
        self._running = 0

    def describe(self) -> str:
        return "local (in this process)"

    def running(self) -> int:
        return self._running

    def as_completed(
        self, fn: Callable[[Any], Any], specs: Sequence[Any], names: Sequence[str], retries: int, tick: Callable[[int], None]
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result or exception)``; a failing job is run again up to ``retries`` times."""
        for index, spec in enumerate(specs):
            self._running = 1
            tick(1)
            outcome: Any = None
            for attempt in range(retries + 1):
                try:
                    outcome = fn(spec)
                    break
                except Exception as exc:  # noqa: BLE001  (recorded per job; the others go on)
                    outcome = exc
                    if attempt < retries:
                        continue
            self._running = 0
            yield index, outcome

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs jobs as Dask tasks through a ``distributed.Client``.

    Args:
        client: the client (of a ``LocalCluster``, a scheduler address or a ``SLURMCluster``).
        label: what it is, for the progress line.
        cluster: a cluster this executor started (closed with it).
    """

    in_process = False

    def __init__(self, client: Any, label: str, cluster: Any = None):
        self.client = client
        self.label = label
        self.cluster = cluster

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def describe(self) -> str:
        return self.label

    def running(self) -> int:
        """Tasks now executing: those the scheduler gave each worker, at most its threads."""
        try:
            threads = self.client.nthreads()
            return sum(min(len(keys), threads.get(worker, 1)) for worker, keys in self.client.processing().items())
        except Exception:  # noqa: BLE001  (a progress figure; never fail the grid over it)
            return 0

    def as_completed(
        self, fn: Callable[[Any], Any], specs: Sequence[Any], names: Sequence[str], retries: int, tick: Callable[[int], None], interval: float = 2.0
    ) -> Iterator[tuple[int, Any]]:
        """Submit every spec (``retries=``), then yield ``(index, result or exception)`` as each finishes."""
        from distributed import wait

        futures = {}
        for index, (spec, name) in enumerate(zip(specs, names, strict=True)):
            key = f"{name.replace(' ', '-')}-{index}-{id(self):x}"
            futures[self.client.submit(fn, spec, key=key, retries=retries, pure=False)] = index
        pending = set(futures)
        while pending:
            tick(self.running())
            done, pending = _wait_some(wait, pending, interval)
            for future in done:
                if future.status == "finished":
                    outcome = future.result()
                else:
                    outcome = future.exception() or RuntimeError(f"job {future.key} {future.status}")
                yield futures[future], outcome

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _wait_some(wait: Any, pending: set[Any], interval: float) -> tuple[set[Any], set[Any]]:
    try:
        done, not_done = wait(pending, timeout=interval, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return set(), pending
    return set(done), set(not_done)


def local_cluster(workers: int) -> Any:
    """A ``LocalCluster`` of ``workers`` single-threaded processes (no dashboard)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


@contextlib.contextmanager
def open_executor(settings: ExecutorSettings | None = None) -> Iterator[InProcess | DaskExecutor]:
    """The executor ``settings`` ask for, closed (with any cluster it started) on exit.

    * ``local`` without ``workers``: :class:`InProcess`.
    * ``local`` with ``workers`` N, or ``dask`` without ``scheduler``: a ``LocalCluster`` of N processes.
    * ``dask`` with ``scheduler``: a client of that scheduler.
    * ``slurm``: a ``dask_jobqueue.SLURMCluster`` scaled to ``workers`` Slurm jobs.

    Raises:
        scintipipe.extras.MissingExtra: Dask is needed and the ``scale`` extra is missing.
    """
    settings = settings or ExecutorSettings()
    settings.validate()
    if settings.kind == "local" and not settings.workers:
        executor: InProcess | DaskExecutor = InProcess()
    else:
        require_extra("scale", f"--executor {settings.kind}" + (f" --workers {settings.workers}" if settings.kind == "local" else ""))
        from distributed import Client

        if settings.kind == "slurm":
            from dask_jobqueue import SLURMCluster

            cluster = SLURMCluster(**settings.slurm.cluster_kwargs())
            cluster.scale(jobs=settings.workers or 1)
            executor = DaskExecutor(Client(cluster), f"slurm ({settings.workers or 1} Slurm jobs of {settings.slurm.cores} cores)", cluster)
        elif settings.scheduler:
            executor = DaskExecutor(Client(settings.scheduler), f"dask scheduler {settings.scheduler}")
        else:
            n = settings.workers or 2
            cluster = local_cluster(n)
            executor = DaskExecutor(Client(cluster), f"LocalCluster of {n} processes", cluster)
    try:
        yield executor
    finally:
        executor.close()
