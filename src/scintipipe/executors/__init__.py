"""Executors: the same grids and batch runs in this process, on a Dask cluster, or on Slurm.

* :func:`open_executor` gives an executor for :class:`ExecutorSettings` (``--executor``).
* :func:`run_jobs` runs a grid of :class:`Job` through it, keeping finished jobs in a
  :class:`JobCache` so that a rerun continues where it stopped.
* :func:`scintipipe.executors.batch.run_partitioned` is ``scintipipe run`` over partitions on
  the workers.

See ``docs/scale_out.md``.
"""

from scintipipe.executors.engines import EXECUTORS, DaskExecutor, ExecutorSettings, InProcess, SlurmSettings, open_executor
from scintipipe.executors.jobs import Job, JobCache, JobsFailed, JobsReport, job_key, run_jobs

__all__ = [
    "EXECUTORS",
    "DaskExecutor",
    "ExecutorSettings",
    "InProcess",
    "Job",
    "JobCache",
    "JobsFailed",
    "JobsReport",
    "SlurmSettings",
    "job_key",
    "open_executor",
    "run_jobs",
]
