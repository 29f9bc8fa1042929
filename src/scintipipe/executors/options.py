"""The command-line options that choose an executor (``--executor``, ``--scheduler``, ``--workers``, Slurm)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from scintipipe.executors.engines import EXECUTORS, ExecutorSettings, SlurmSettings
from scintipipe.extras import MissingExtra, require_extra

EXECUTOR_HELP = "Where the jobs run: local (this process; a LocalCluster of N processes with --workers N), dask (--scheduler tcp://HOST:8786, or a LocalCluster), slurm (dask-jobqueue). See docs/scale_out.md."


def executor_options(workers_flag: str = "--workers") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for :func:`settings_from_options` (``workers_flag`` renames ``--workers`` where a command already has one)."""
    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True, help=EXECUTOR_HELP),
        click.option("--scheduler", default=None, help="With --executor dask: the address of a running Dask scheduler (tcp://HOST:8786)."),
        click.option(
            workers_flag,
            "executor_workers",
            type=click.IntRange(1),
            default=None,
            help="Dask worker processes of a LocalCluster (local, or dask without --scheduler); Slurm jobs to start (slurm).",
        ),
        click.option("--retries", type=click.IntRange(0), default=2, show_default=True, help="Times a failed or lost job is run again."),
        click.option(
            "--slurm-config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="JSON or YAML file of Slurm settings (cores, memory, walltime, queue, processes, account, and SLURMCluster keywords).",
        ),
        click.option("--slurm-cores", type=click.IntRange(1), default=None, help="Cores per Slurm job (default 4)."),
        click.option("--slurm-memory", default=None, help="Memory per Slurm job (default 16GB)."),
        click.option("--slurm-walltime", default=None, help="Walltime per Slurm job (default 04:00:00)."),
        click.option("--slurm-queue", default=None, help="Slurm partition (#SBATCH -p)."),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def settings_from_options(values: dict[str, Any]) -> ExecutorSettings:
    """An :class:`ExecutorSettings` from the values of :func:`executor_options` (popped from ``values``).

    Raises:
        click.UsageError: a combination that cannot work.
    """
    slurm = {
        "cores": values.pop("slurm_cores", None),
        "memory": values.pop("slurm_memory", None),
        "walltime": values.pop("slurm_walltime", None),
        "queue": values.pop("slurm_queue", None),
    }
    config = values.pop("slurm_config", None)
    try:
        slurm_settings = SlurmSettings.from_file(config, **slurm) if config else SlurmSettings(**{k: v for k, v in slurm.items() if v is not None})
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--slurm-config: {exc}") from exc
    settings = ExecutorSettings(
        kind=values.pop("executor", "local"),
        workers=values.pop("executor_workers", None),
        scheduler=values.pop("scheduler", None),
        slurm=slurm_settings,
        retries=values.pop("retries", 2),
    )
    try:
        settings.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    return settings


def run_executor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``scintipipe run``'s executor options (its ``--workers`` are loader threads, so Dask's are ``--dask-workers``).

    Their values reach the command among its keyword arguments; :func:`pop_run_executor` takes them out.
    """
    options = [
        click.option(
            "--executor",
            "run_executor",
            type=click.Choice(EXECUTORS),
            default="local",
            show_default=True,
            help="local: this process; dask: partitions of the inputs on Dask workers (--scheduler, or a LocalCluster of --dask-workers processes); slurm: on Slurm through dask-jobqueue (--slurm-config). See docs/scale_out.md.",
        ),
        click.option(
            "--scheduler", "run_scheduler", default=None, help="With --executor dask: the address of a running Dask scheduler (tcp://HOST:8786)."
        ),
        click.option(
            "--dask-workers",
            "run_dask_workers",
            type=click.IntRange(1),
            default=None,
            help="Processes of a LocalCluster (--executor local or dask without --scheduler); Slurm jobs (slurm).",
        ),
        click.option(
            "--partition-size",
            "run_partition_size",
            type=click.IntRange(1),
            default=None,
            help="Files per partition with --executor dask|slurm (default: about four partitions per worker).",
        ),
        click.option(
            "--slurm-config",
            "run_slurm_config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="JSON or YAML file of Slurm settings for --executor slurm.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_run_executor(values: dict[str, Any]) -> tuple[ExecutorSettings | None, int | None]:
    """Take :func:`run_executor_options`' values out of ``values``: the executor (``None``: the ordinary in-process run) and the partition size.

    Raises:
        click.UsageError: a combination that cannot work.
    """
    kind = values.pop("run_executor", "local")
    scheduler = values.pop("run_scheduler", None)
    workers = values.pop("run_dask_workers", None)
    size = values.pop("run_partition_size", None)
    config = values.pop("run_slurm_config", None)
    if kind == "local" and not workers:
        if scheduler or size or config:
            raise click.UsageError("--scheduler, --partition-size and --slurm-config go with --executor dask or slurm")
        return None, None
    settings = settings_from_options({"executor": kind, "scheduler": scheduler, "executor_workers": workers, "slurm_config": config})
    try:
        require_extra("scale", f"scintipipe run --executor {kind}")
    except MissingExtra as exc:
        raise click.UsageError(str(exc)) from exc
    return settings, size
