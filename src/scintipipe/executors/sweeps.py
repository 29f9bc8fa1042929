"""``scintipipe train --sweep KEY=V1,V2``: one training per point of a grid of recipe values, each a job.

Each point of the grid (the product of every ``--sweep``) is the recipe with those values,
trained by :func:`scintipipe.training.train.train_bundle` into ``OUT/<point>/``, a complete
bundle. The trainings run through an executor (:func:`scintipipe.executors.open_executor`):
in this process, on a ``LocalCluster``, a Dask scheduler or Slurm. A finished point is kept
in ``OUT/jobs/``, so a rerun trains only the points without a result (or whose bundle is
gone). ``OUT/sweep.json`` and ``OUT/sweep.md`` list every point's validation results and
the SHA-256 of its weights: equal whatever the executor, for the same ``--threads``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scintipipe.executors.engines import ExecutorSettings
from scintipipe.executors.jobs import Job, JobCache, job_key


@dataclass(frozen=True)
class SweepJob:
    """One point of a sweep: a recipe trained into its own bundle folder.

    Attributes:
        name: the point (``seed=1 optimizer.lr=0.001``).
        recipe: the completed recipe with the point's values.
        data_dir: folder the CSV's file names are relative to (``None``: the CSV's folder).
        labels_csv: ``file,label`` CSV.
        out_dir: the point's bundle folder.
        device: ``cpu`` or ``cuda``.
        init_weights: local weights file for transfer learning.
        data_description: what the data is, for the model card.
        gate_settings: ``configs/gate.json`` of the new bundle (kept from ``--bundle``).
        plugins_dir: one-file plugins a worker loads as well.
        threads: PyTorch threads (results are identical for the same seeds and threads).
    """

    name: str
    recipe: dict[str, Any]
    data_dir: str | None
    labels_csv: str
    out_dir: str
    device: str = "cpu"
    init_weights: str | None = None
    data_description: str = ""
    gate_settings: dict[str, Any] | None = None
    plugins_dir: str | None = None
    threads: int | None = None


def parse_sweeps(sweeps: Sequence[str], recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid's points: one ``{key: value}`` per combination of the ``KEY=V1,V2`` sweeps, in order.

    Keys are the recipe's, dotted for nested ones (``optimizer.lr``); values are read as
    JSON where they can be (``0.001``, ``true``), else kept as text (``adamw``).

    Raises:
        ValueError: a sweep without ``=`` or values, a key the recipe does not have, or a
            key given twice.

    Example:
        >>> parse_sweeps(["seed=0,1"], {"seed": 0})
        [{'seed': 0}, {'seed': 1}]
    """
    axes: dict[str, list[Any]] = {}
    for sweep in sweeps:
        key, sep, values = sweep.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"--sweep {sweep!r}: expected KEY=V1,V2,... (e.g. seed=0,1,2)")
        if key in axes:
            raise ValueError(f"--sweep {key} is given twice")
        _get(recipe, key)
        axes[key] = [_value(v.strip()) for v in values.split(",") if v.strip()]
    return [dict(zip(axes, point, strict=True)) for point in itertools.product(*axes.values())]


def _get(recipe: dict[str, Any], key: str) -> Any:
    node: Any = recipe
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(k for k, v in recipe.items() if not isinstance(v, (list, dict)) or k in ("optimizer", "augment")))
            raise ValueError(f"--sweep {key}: the recipe has no {key!r} (its keys: {known}; nested as optimizer.lr)")
        node = node[part]
    return node


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def point_recipe(recipe: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """``recipe`` with the point's values set (checked like a recipe file)."""
    from scintipipe.training.recipe import complete_recipe

    out = copy.deepcopy(recipe)
    for key, value in point.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = value
    return complete_recipe(out, source=f"--sweep {point_name(point)}")


def point_name(point: dict[str, Any]) -> str:
    """``seed=1 optimizer.lr=0.001``."""
    return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in point.items())


def point_folder(point: dict[str, Any]) -> str:
    """A folder name for the point (``seed-1_optimizer.lr-0.001``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(f"{k}-{v}" for k, v in point.items()))


def weights_digest(bundle_dir: Path) -> str | None:
    """SHA-256 of ``models/model.pt``, ``None`` when it is missing."""
    path = Path(bundle_dir) / "models/model.pt"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run_sweep_job(job: SweepJob, pm: Any = None) -> dict[str, Any]:
    """Train one point (in this process or on a Dask worker); its results as JSON values.

    Returns:
        ``{"best_epoch", "validation", "weights_sha256", "failures"}``; ``validation`` is
        the flat summary of the validation split (overall accuracy, macro metrics).
    """
    import torch

    from scintipipe.evaluation import class_summary
    from scintipipe.executors import worker
    from scintipipe.training.train import train_bundle

    if job.threads:
        torch.set_num_threads(job.threads)
    result = train_bundle(
        pm or worker.plugin_manager(job.plugins_dir),
        job.recipe,
        Path(job.data_dir) if job.data_dir else None,
        Path(job.labels_csv),
        Path(job.out_dir),
        device=job.device,
        init_weights=Path(job.init_weights) if job.init_weights else None,
        data_description=job.data_description,
        progress=False,
        log=lambda message: None,
        gate_settings=job.gate_settings,
    )
    return json.loads(
        json.dumps(
            {
                "best_epoch": result.best_epoch,
                "validation": class_summary(result.validation),
                "weights_sha256": weights_digest(result.bundle_dir),
                "failures": [list(f) for f in result.failures],
            },
            default=float,
        )
    )


def sweep_jobs(points: Sequence[dict[str, Any]], recipe: dict[str, Any], out_dir: Path, **spec: Any) -> list[Job]:
    """One :class:`~scintipipe.executors.Job` per point, keyed by what decides its result.

    Args:
        points: from :func:`parse_sweeps`.
        recipe: the base recipe.
        out_dir: the sweep's folder (each point's bundle goes in a folder of it).
        **spec: the other :class:`SweepJob` fields (``labels_csv``, ``data_dir``, ...).
    """
    from scintipipe import __version__
    from scintipipe.training.data import hash_dataset, read_labels

    labels_csv = Path(spec["labels_csv"])
    data_dir = Path(spec["data_dir"]) if spec.get("data_dir") else None
    rows = read_labels(labels_csv, data_dir, recipe["labels"])
    data = hash_dataset(rows)
    files = [[path.name, label] for path, label in rows]
    init = spec.get("init_weights")
    init_hash = hashlib.sha256(Path(init).read_bytes()).hexdigest() if init else None
    jobs = []
    for point in points:
        job = SweepJob(name=point_name(point), recipe=point_recipe(recipe, point), out_dir=str(out_dir / point_folder(point)), **spec)
        key = job_key(
            kind="train-sweep",
            version=__version__,
            data=data,
            files=files,
            recipe=job.recipe,
            device=job.device,
            threads=job.threads,
            init_weights=init_hash,
            gate=job.gate_settings,
            description=job.data_description,
            out=point_folder(point),
        )
        jobs.append(Job(key, job.name, job))
    return jobs


def train_sweep(
    pm: Any,
    recipe: dict[str, Any],
    sweeps: Sequence[str],
    labels_csv: Path,
    out_dir: Path,
    data_dir: Path | None = None,
    device: str = "cpu",
    init_weights: Path | None = None,
    data_description: str = "",
    gate_settings: dict[str, Any] | None = None,
    executor: ExecutorSettings | None = None,
    plugins_dir: Path | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every point of the sweep, each as a job; write ``sweep.json`` and ``sweep.md``.

    Args:
        pm: the plugin manager of in-process jobs (workers make their own from ``plugins_dir``).
        recipe: the completed base recipe.
        sweeps: ``KEY=V1,V2`` texts (:func:`parse_sweeps`).
        labels_csv: ``file,label`` CSV.
        out_dir: the sweep's folder.
        data_dir: folder the CSV's file names are relative to (default: the CSV's folder).
        device: ``cpu`` or ``cuda``.
        init_weights: local weights file for transfer learning.
        data_description: what the data is, for the model cards.
        gate_settings: ``configs/gate.json`` of each new bundle.
        executor: where the jobs run (default: in this process).
        plugins_dir: one-file plugins the workers load as well.
        threads: PyTorch threads per job.
        progress: progress bar of the jobs (``None``: on a terminal).
        log: progress lines.

    Returns:
        The content of ``sweep.json``: ``{"sweep": [...], "points": [...]}``.

    Raises:
        ValueError: a malformed sweep (:func:`parse_sweeps`).
        scintipipe.executors.JobsFailed: points failed after their retries (the finished
            ones are cached; rerun to continue).
    """
    from scintipipe.executors import open_executor, run_jobs

    points = parse_sweeps(sweeps, recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = sweep_jobs(
        points,
        recipe,
        out_dir.resolve(),
        labels_csv=str(Path(labels_csv).resolve()),
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
        device=device,
        init_weights=str(Path(init_weights).resolve()) if init_weights else None,
        data_description=data_description,
        gate_settings=gate_settings,
        plugins_dir=str(plugins_dir) if plugins_dir else None,
        threads=threads,
    )
    cache = JobCache(out_dir / "jobs")
    for job in jobs:  # a result stands in for a run only while its bundle is there, unchanged
        cached = cache.get(job.key)
        if cached is not None and cached.get("weights_sha256") != weights_digest(Path(job.spec.out_dir)):
            cache.path(job.key).unlink()
    settings = executor or ExecutorSettings()
    with open_executor(settings) as running:
        fn: Callable[[Any], Any] = functools.partial(run_sweep_job, pm=pm) if running.in_process else run_sweep_job
        done = run_jobs(
            running,
            fn,
            jobs,
            cache,
            retries=settings.retries,
            progress=progress,
            log=log,
            describe=lambda job, r: f"validation accuracy {r['validation'].get('overall_accuracy')}",
        )
    log(f"{len(done.ran)} trainings ran, {len(done.cached)} came from {out_dir / 'jobs'}, in {done.seconds:.1f} s")
    summary = {
        "sweep": list(sweeps),
        "points": [
            {"name": job.name, "values": point, "bundle": point_folder(point), **result}
            for job, point, result in zip(jobs, points, done.results, strict=True)
        ],
    }
    (out_dir / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "sweep.md").write_text(sweep_table(summary))
    return summary


def sweep_table(summary: dict[str, Any]) -> str:
    """Markdown table of the points: folder, best epoch, validation metrics."""
    metrics = list(summary["points"][0]["validation"]) if summary["points"] else []
    lines = [
        f"# Sweep {' '.join(summary['sweep'])}",
        "",
        "| point | bundle | best epoch | " + " | ".join(f"validation {m}" for m in metrics) + " |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for row in summary["points"]:
        values = " | ".join("-" if row["validation"][m] is None else f"{row['validation'][m]:.4f}" for m in metrics)
        lines.append(f"| {row['name']} | {row['bundle']}/ | {row['best_epoch'] + 1} | {values} |")
    return "\n".join(lines) + "\n"
