"""``scintipipe run`` over partitions of the inputs, on Dask workers.

The inputs are cut into partitions (a DICOM study's files stay in one partition, as the
runner handles a study together when it segments). Each worker runs the ordinary
:meth:`Pipeline.run <scintipipe.pipeline.Pipeline.run>` on its partition into
``OUT/partitions/part-NNNNN/`` (the per-case report folders live there, on the shared
output path); the worker keeps the bundle, so its network is loaded once per worker.
Then ``predictions.csv`` and ``errors.csv`` are merged in input order into ``OUT`` with
the same columns as a local run, and ``index.html`` links every partition's cases.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scintipipe.executors import worker
from scintipipe.executors.engines import ExecutorSettings, open_executor

PARTITIONS = "partitions"


@dataclass(frozen=True)
class Partition:
    """One worker's share of a run.

    Attributes:
        index: its place in the input order.
        files: its input files, in input order.
        bundle: the bundle folder.
        options: the run's :class:`~scintipipe.pipeline.RunOptions`.
        out_dir: its results folder (``OUT/partitions/part-NNNNN``).
        plugins_dir: one-file plugins the worker loads as well.
    """

    index: int
    files: list[str]
    bundle: str
    options: Any
    out_dir: str
    plugins_dir: str | None = None


def run_partition(part: Partition) -> dict[str, Any]:
    """Run the pipeline on one partition (on a worker): its summary as plain values.

    Its loader workers stay threads: the executor's workers are the parallelism, and a
    worker may be a thread of a process that must not fork.
    """
    from scintipipe.pipeline import Pipeline

    pm = worker.plugin_manager(part.plugins_dir)
    bundle = worker.bundle(part.bundle)
    summary = Pipeline(pm, bundle, dataclasses.replace(part.options, progress=False, worker_processes=False), log=lambda message: None).run(
        [Path(f) for f in part.files], Path(part.out_dir)
    )
    return {"index": part.index, **dataclasses.asdict(summary)}


def units_of(files: Sequence[Path], segments: bool) -> list[list[Path]]:
    """The units that must stay together: one per DICOM study when the segment stage runs, else one per file."""
    if not segments:
        return [[f] for f in files]
    from scintipipe.loaders.studies import study_groups

    return study_groups(files)


def partition(units: Sequence[list[Path]], size: int) -> list[list[Path]]:
    """Consecutive units packed into partitions of about ``size`` files (a unit is never split).

    Example:
        >>> [len(p) for p in partition([[Path("a")], [Path("b"), Path("c")], [Path("d")]], 2)]
        [3, 1]
    """
    parts: list[list[Path]] = []
    current: list[Path] = []
    for unit in units:
        current.extend(unit)
        if len(current) >= size:
            parts.append(current)
            current = []
    if current:
        parts.append(current)
    return parts


def run_partitioned(
    pm: Any,
    bundle: Any,
    options: Any,
    files: Sequence[Path],
    out_dir: Path,
    settings: ExecutorSettings,
    plugins_dir: Path | None = None,
    partition_size: int | None = None,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> Any:
    """``Pipeline(pm, bundle, options).run(files, out_dir)``, partition by partition on the executor's workers.

    Args:
        pm: this process's plugin manager (for the merged ``index.html``; workers build their own).
        bundle: the :class:`~scintipipe.bundle.Bundle` (its folder must be readable by the workers).
        options: the run's :class:`~scintipipe.pipeline.RunOptions`.
        files: input files (folders already expanded).
        out_dir: results folder, on a path the workers share.
        settings: the executor (``--executor``, ``--scheduler``, workers).
        plugins_dir: one-file plugins the workers load as well.
        partition_size: files per partition (default: about four partitions per worker).

    Returns:
        A :class:`~scintipipe.pipeline.RunSummary` over every partition; its cases'
        ``case_dir`` are relative to ``out_dir``.
    """
    from scintipipe.gate.refusal import GATE_COLUMNS
    from scintipipe.pipeline import Pipeline, RunSummary
    from scintipipe.transforms.predictions import prediction_columns

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / PARTITIONS, ignore_errors=True)
    files = [Path(f) for f in files]  # as given: they are the `source` column (workers must see the same paths)
    units = units_of(files, options.segment and options.report)
    summary = RunSummary(files=len(files))
    with open_executor(settings) as executor:
        size = partition_size or max(1, min(256, math.ceil(len(files) / (4 * executor.n_workers))))
        parts = [
            Partition(
                i,
                [str(f) for f in chunk],
                str(Path(bundle.root).resolve()),
                options,
                str((out_dir / PARTITIONS / f"part-{i:05d}").resolve()),
                str(plugins_dir) if plugins_dir else None,
            )
            for i, chunk in enumerate(partition(units, size))
        ]
        log(f"{len(files)} files in {len(parts)} partitions of about {size}; executor {executor.describe()}")
        results: list[dict[str, Any] | None] = [None] * len(parts)
        done = 0
        for index, outcome in executor.as_completed(
            run_partition, parts, [f"partition {p.index}" for p in parts], settings.retries, lambda running: None
        ):
            done += 1
            if isinstance(outcome, BaseException):
                summary.failures += [(f, f"partition {index} failed: {outcome}") for f in parts[index].files]
                log(f"[{done}/{len(parts)} partitions done, {executor.running()} running] partition {index} failed: {outcome}")
                continue
            results[index] = outcome
            log(
                f"[{done}/{len(parts)} partitions done, {executor.running()} running] partition {index}: {outcome['classified']} views classified, {len(outcome['failures'])} failed"
            )
    labels = bundle.labels
    with (out_dir / "predictions.csv").open("w", newline="") as pred_handle, (out_dir / "errors.csv").open("w", newline="") as err_handle:
        predictions = csv.writer(pred_handle)
        predictions.writerow([*prediction_columns(labels), *GATE_COLUMNS])
        errors = csv.writer(err_handle)
        errors.writerow(["source", "stage", "error"])
        for part, result in zip(parts, results, strict=True):
            if result is None:
                errors.writerows([f, "executor", f"partition {part.index} failed"] for f in part.files)
                continue
            folder = Path(part.out_dir)
            for name, writer in (("predictions.csv", predictions), ("errors.csv", errors)):
                with (folder / name).open(newline="") as handle:
                    rows = csv.reader(handle)
                    next(rows, None)
                    writer.writerows(rows)
            prefix = Path(PARTITIONS) / folder.name
            for case in result["cases"]:
                if case.get("case_dir"):
                    case["case_dir"] = (prefix / case["case_dir"]).as_posix()
                case["outputs"] = [(prefix / o).as_posix() for o in case.get("outputs") or []]
            summary.classified += result["classified"]
            summary.failures += [tuple(f) for f in result["failures"]]
            summary.skipped += [tuple(s) for s in result["skipped"]]
            summary.cases += result["cases"]
    pipeline = Pipeline(pm, bundle, options)
    pipeline.out_dir = out_dir
    try:  # one index.html over every partition's cases, as a local run writes
        pipeline.call("report_run", str(out_dir), cases=summary.cases, bundle=bundle, out_dir=out_dir)
    except Exception as exc:  # noqa: BLE001  (recorded like a local run's report failure)
        summary.failures.append((str(out_dir), f"report: {exc}"))
        with (out_dir / "errors.csv").open("a", newline="") as handle:
            csv.writer(handle).writerow([str(out_dir), "report", str(exc)])
    summary.seconds = time.perf_counter() - started
    return summary
