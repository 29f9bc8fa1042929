"""``scintipipe evaluate``: bundles on a labelled set, and resampling experiments.

Two designs:

* **held-out evaluation**: each bundle classifies the labelled scans (through the same
  stages as ``scintipipe run``); per bundle a Table-2-style report, ``metrics.json``,
  confusion matrix and ROC PNGs; with several bundles, paired statistics (DeLong for
  each class's AUC, McNemar for accuracy) on the same scans.
* **resampling**: k-fold cross-validation or repeated stratified random splits of one
  labelled folder, retraining each recipe per split; mean ± SD per metric, Mann-Whitney U
  between models across splits, DeLong on the pooled out-of-fold predictions.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import torch

from scintipipe import evaluation as ev
from scintipipe.bundle import Bundle
from scintipipe.executors.engines import ExecutorSettings
from scintipipe.executors.jobs import Job, job_key
from scintipipe.pipeline import Pipeline, RunOptions
from scintipipe.training.data import LabelledSet, hash_dataset, load_labelled_set, read_labels
from scintipipe.training.loop import fit, predict
from scintipipe.training.train import build_network, split_rows, write_recipe_bundle
from scintipipe.transforms.unknown_scale import below_threshold


def _json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, default=float) + "\n")


def write_report_files(report: dict[str, Any], y_true: np.ndarray, probs: np.ndarray, labels: list[str], out: Path, title: str) -> None:
    """metrics.json, table.md, metrics.csv, confusion.png and roc.png for one model."""
    out.mkdir(parents=True, exist_ok=True)
    _json(out / "metrics.json", report)
    (out / "table.md").write_text(f"# {title}\n\n{ev.format_table(report)}\n")
    ev.write_metrics_csv(report, out / "metrics.csv")
    ev.plot_confusion_matrix(report["confusion_matrix"]["counts"], labels, out / "confusion.png")
    ev.plot_roc_curves(y_true, probs, labels, out / "roc.png")


def classify_labelled(
    pm: pluggy.PluginManager, bundle: Bundle, rows: Sequence[tuple[Path, str]], device: str, progress: bool | None, scale_averaging: bool = True
) -> LabelledSet:
    """Preprocess the labelled scans with ``bundle``'s own preprocessing (and its scales, unless ``scale_averaging`` is off)."""
    options = RunOptions(device=device, segment=False, explain=False, report=False, plugin_options={"scale_averaging": scale_averaging})
    pipeline = Pipeline(pm, bundle, options)
    return load_labelled_set(pipeline, rows, progress)


def predict_averaging_scales(
    network: torch.nn.Module, data: LabelledSet, device: str, zoom_averaging_below: float | None = None, temperature: float = 1.0
) -> torch.Tensor:
    """Softmax probabilities of every row; a row the bundle classifies at several scales
    (``data.scale_inputs``) is the mean over them, as ``scintipipe run`` classifies it.

    Args:
        network: the bundle's network.
        data: the preprocessed set.
        device: where to run it.
        zoom_averaging_below: the bundle's threshold: a row of ``data.zoom_deferred`` whose
            top probability at the spacing as acquired, scaled by ``temperature`` as
            ``scintipipe run`` reports it, reaches it keeps its single-pass probabilities.
        temperature: the bundle's gate temperature (only the threshold uses it).
    """
    probs = predict(network, data.inputs, device)
    skip: set[int] = set()
    if zoom_averaging_below is not None and data.zoom_deferred:
        deferred = sorted(data.zoom_deferred)
        reported = (probs[deferred].clamp_min(1e-12).log() / temperature).softmax(1)
        skip = {row for row, average in zip(deferred, below_threshold(reported, zoom_averaging_below).tolist(), strict=True) if not average}
    if data.scale_inputs:
        rows, stacked = zip(*data.scale_inputs.items(), strict=True)
        scaled = predict(network, torch.cat(stacked), device).split([len(inputs) for inputs in stacked])  # one batched pass
        for row, per_scale in zip(rows, scaled, strict=True):
            if row not in skip:
                probs[row] = per_scale.mean(0)
    return probs


def evaluate_bundles(
    pm: pluggy.PluginManager,
    bundles: Sequence[Bundle],
    labels_csv: Path,
    data_dir: Path | None,
    out_dir: Path,
    device: str = "cpu",
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    readers_csv: Path | None = None,
    scale_averaging: bool = True,
) -> dict[str, Any]:
    """Evaluate each bundle on the same labelled scans; compare them pairwise.

    With ``readers_csv`` (``file,reader,label``, file names as in the labels CSV), each
    reader's accuracy, sensitivity and specificity are reported beside each model's, with
    McNemar p for model versus reader and Cohen's kappa between readers
    (``readers.json``, ``readers.md``). A multi-view file's model call is the arg-max of
    the mean of its views' probabilities. A view the bundle classifies at several scales
    is averaged over them, as ``scintipipe run`` does, unless ``scale_averaging`` is off
    (``--no-scale-averaging``).

    Returns:
        ``{"models": {name: report}, "comparisons": [...]}`` (also written as JSON).
    """
    labels = bundles[0].labels
    for bundle in bundles[1:]:
        if bundle.labels != labels:
            raise ValueError(f"bundles disagree on labels: {bundles[0].name} {labels} vs {bundle.name} {bundle.labels}")
    rows = read_labels(labels_csv, data_dir, labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"labels": labels, "n_files": len(rows), "models": {}, "comparisons": []}
    predictions: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    names = _unique_names([b.name for b in bundles])
    for name, bundle in zip(names, bundles, strict=True):
        data = classify_labelled(pm, bundle, rows, device, progress, scale_averaging)
        probs = predict_averaging_scales(bundle.network(device), data, device, bundle.zoom_averaging_below, bundle.gate.temperature).numpy()
        y_true = data.targets.numpy()
        report = ev.classification_report(y_true, probs, labels)
        report["failures"] = [{"source": s, "error": r} for s, r in data.failures]
        target = out_dir if len(bundles) == 1 else out_dir / name
        write_report_files(report, y_true, probs, labels, target, f"{name} on {labels_csv}")
        _write_predictions(target / "predictions.csv", data.sources, y_true, probs, labels)
        results["models"][name] = report
        predictions[name] = (data.sources, y_true, probs)
        if readers_csv is not None:
            comparison = ev.compare_readers(*file_level_calls(rows, base_of(labels_csv, data_dir), data.sources, probs, labels), readers_csv, labels)
            results.setdefault("readers", {})[name] = comparison
            (target / "readers.md").write_text(format_readers(name, comparison))
            _json(target / "readers.json", comparison)
        acc = report["overall"]["accuracy"]
        log(f"{name}: accuracy {acc['value']:.4f} ({acc['lower']:.4f}-{acc['upper']:.4f}) on {report['n']} views; {len(data.failures)} files failed")
    if len(bundles) > 1:
        results["comparisons"] = compare_models(predictions, labels)
        ev.plot_roc_comparison(predictions[names[0]][1], {n: p[2] for n, p in predictions.items()}, labels, out_dir / "roc_comparison.png")
        (out_dir / "comparison.md").write_text(format_comparisons(results["comparisons"]))
    _json(out_dir / "evaluation.json", results)
    return results


def compare_models(predictions: dict[str, tuple[list[str], np.ndarray, np.ndarray]], labels: list[str]) -> list[dict[str, Any]]:
    """Pairwise DeLong (per class AUC) and McNemar (accuracy) on the views both models saw."""
    comparisons = []
    for a, b in combinations(predictions, 2):
        src_a, y_a, p_a = predictions[a]
        src_b, _, p_b = predictions[b]
        common = sorted(set(src_a) & set(src_b))
        ia = [src_a.index(s) for s in common]
        ib = [src_b.index(s) for s in common]
        y = y_a[ia]
        entry: dict[str, Any] = {"model_a": a, "model_b": b, "n": len(common), "delong": {}}
        for c, label in enumerate(labels):
            positive = (y == c).astype(int)
            if 0 < positive.sum() < len(positive):
                entry["delong"][label] = ev.delong_test(positive, p_a[ia, c], p_b[ib, c])
        entry["mcnemar"] = ev.mcnemar_from_predictions(y, p_a[ia].argmax(1), p_b[ib].argmax(1))
        comparisons.append(entry)
    return comparisons


def format_comparisons(comparisons: list[dict[str, Any]]) -> str:
    """Markdown table of the paired tests."""
    lines = ["# Paired comparisons", "", "| models | class | AUC A | AUC B | difference (95 % CI) | DeLong p |", "|---|---|---|---|---|---|"]
    for c in comparisons:
        for label, d in c["delong"].items():
            lines.append(
                f"| {c['model_a']} vs {c['model_b']} | {label} | {d['auc_a']:.3f} | {d['auc_b']:.3f} | {d['difference']:+.3f} ({d['lower']:+.3f} to {d['upper']:+.3f}) | {d['p_value']:.4g} |"
            )
    lines += ["", "| models | n | McNemar p (accuracy) |", "|---|---|---|"]
    lines += [f"| {c['model_a']} vs {c['model_b']} | {c['n']} | {c['mcnemar']['p_value']:.4g} |" for c in comparisons]
    return "\n".join(lines) + "\n"


def _views_of(file_rows: Iterable[int], rows: Sequence[tuple[Path, str]], index_of_file: dict[str, list[int]]) -> list[int]:
    """Indices of the views of the files ``rows[j]`` for each ``j`` in ``file_rows``."""
    return [i for j in file_rows for i in index_of_file.get(str(rows[j][0]), [])]


@dataclass(frozen=True)
class SplitJob:
    """One recipe trained on one split and tested on its held-out files: a job of the grid.

    Attributes:
        name: the model's name.
        recipe: the completed recipe (its ``seed`` is the experiment's; the job adds ``k``).
        template: a bundle folder whose preprocessing the scans go through.
        rows: ``(file, label)`` of the whole labelled set, in CSV order.
        k: the split's index.
        train_files, test_files: indices into ``rows``.
        seed: the experiment's seed (the inner validation split uses ``seed + k``).
        device: ``cpu`` or ``cuda``.
        out_dir: the split's folder (``checkpoint.pt``, ``logs/``).
        plugins_dir: the one-file plugins a worker loads as well.
        threads: PyTorch threads (results are identical for the same seeds and threads).
        data_key: names the preprocessed set, so a worker makes it once.
    """

    name: str
    recipe: dict[str, Any]
    template: str
    rows: list[tuple[str, str]]
    k: int
    train_files: list[int]
    test_files: list[int]
    seed: int
    device: str
    out_dir: str
    plugins_dir: str | None = None
    threads: int | None = None
    data_key: str = ""


def run_split_job(job: SplitJob, pm: pluggy.PluginManager | None = None, data_cache: dict[str, LabelledSet] | None = None) -> dict[str, Any]:
    """Train ``job.recipe`` on the split's training files, test it on its held-out files.

    Runs in this process or on a Dask worker (where the plugin manager and the
    preprocessed set are made once per worker process).

    Returns:
        ``{"sources", "truth", "probabilities", "summary", "best_epoch"}`` as JSON values.
    """
    from scintipipe.executors import worker

    if job.threads:
        torch.set_num_threads(job.threads)
    pm = pm or worker.plugin_manager(job.plugins_dir)
    rows = [(Path(path), label) for path, label in job.rows]
    recipe, k = job.recipe, job.k

    def preprocess() -> LabelledSet:
        return classify_labelled(pm, Bundle(Path(job.template)), rows, job.device, False)

    if data_cache is None:
        data_by_file = worker.cached_data(job.data_key, preprocess)
    else:
        data_by_file = data_cache[job.data_key] if job.data_key in data_cache else data_cache.setdefault(job.data_key, preprocess())
    file_of = [s.split("#")[0] for s in data_by_file.sources]
    index_of_file: dict[str, list[int]] = {}
    for i, f in enumerate(file_of):
        index_of_file.setdefault(f, []).append(i)
    inner_train, _ = split_rows([rows[j] for j in job.train_files], float(recipe["val_fraction"]), job.seed + k)
    inner_train_set = {str(p) for p, _ in inner_train}
    train_views = _views_of(job.train_files, rows, index_of_file)
    train_idx = [i for i in train_views if file_of[i] in inner_train_set]
    val_idx = [i for i in train_views if file_of[i] not in inner_train_set]
    test_idx = _views_of(job.test_files, rows, index_of_file)
    torch.manual_seed(int(recipe["seed"]) + k)
    model = build_network(recipe)
    result = fit(
        model,
        data_by_file.subset(train_idx),
        data_by_file.subset(val_idx),
        {**recipe, "seed": int(recipe["seed"]) + k},
        Path(job.out_dir),
        device=job.device,
        progress=False,
        log=lambda m: None,
    )
    model.load_state_dict(result.best_state)
    test = data_by_file.subset(test_idx)
    probs = predict(model, test.inputs, job.device).numpy()
    report = ev.classification_report(test.targets.numpy(), probs, data_by_file.labels, n_bootstrap=0)
    summary = json.loads(json.dumps(ev.class_summary(report), default=float))
    return {
        "sources": test.sources,
        "truth": test.targets.tolist(),
        "probabilities": probs.astype(float).tolist(),
        "summary": summary,
        "best_epoch": result.best_epoch,
    }


def split_jobs(
    recipes: dict[str, dict[str, Any]],
    templates: dict[str, Path],
    rows: Sequence[tuple[Path, str]],
    splits: Sequence[tuple[Any, Any]],
    seed: int,
    device: str,
    out_dir: Path,
    plugins_dir: str | None,
    threads: int | None,
    data_hash: str,
) -> list[Job]:
    """The grid: one :class:`~scintipipe.executors.Job` per recipe and split, keyed by what decides its result."""
    from scintipipe import __version__

    files = [[path.name, label] for path, label in rows]
    jobs = []
    for name, recipe in recipes.items():
        data_key = job_key(data=data_hash, files=files, transforms=recipe["scan_transforms"], template=str(templates[name]), device=device)
        for k, (train_files, test_files) in enumerate(splits):
            spec = SplitJob(
                name=name,
                recipe=recipe,
                template=str(templates[name]),
                rows=[(str(p), label) for p, label in rows],
                k=k,
                train_files=[int(i) for i in train_files],
                test_files=[int(i) for i in test_files],
                seed=seed,
                device=device,
                out_dir=str(out_dir / name / f"split{k}"),
                plugins_dir=plugins_dir,
                threads=threads,
                data_key=data_key,
            )
            key = job_key(
                kind="resampling-split",
                version=__version__,
                data=data_hash,
                files=files,
                recipe=recipe,
                train=spec.train_files,
                test=spec.test_files,
                seed=seed,
                k=k,
                device=device,
                threads=threads,
            )
            jobs.append(Job(key, f"{name} split {k + 1}/{len(splits)}", spec))
    return jobs


def resampling_experiment(
    pm: pluggy.PluginManager,
    recipes: dict[str, dict[str, Any]],
    labels_csv: Path,
    data_dir: Path | None,
    out_dir: Path,
    design: str = "kfold",
    n_splits: int = 5,
    test_size: float = 0.25,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    executor: ExecutorSettings | None = None,
    plugins_dir: Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Retrain each recipe on every split and test it on the held-out part.

    Each recipe x split is one job (:func:`run_split_job`), run through the executor
    ``executor`` asks for (default: one after the other in this process). Finished jobs
    are kept in ``out_dir/jobs/``: a rerun into the same folder runs only the rest.
    Results do not depend on the executor: every job seeds itself (the recipe's seed + k).

    Args:
        recipes: ``{model name: completed recipe}``; all must share labels.
        design: ``kfold`` (stratified k-fold) or ``splits`` (repeated stratified random
            splits with ``test_size``).
        n_splits: folds, or number of random splits.
        executor: where the jobs run (:class:`scintipipe.executors.ExecutorSettings`).
        plugins_dir: one-file plugins the workers load as well (``--plugins-dir``).
        threads: PyTorch threads per job (``--threads``).

    Raises:
        scintipipe.executors.JobsFailed: jobs failed after their retries (the finished
            ones are cached; rerun to continue).
    """
    from scintipipe.executors import JobCache, open_executor, run_jobs

    names = list(recipes)
    labels = recipes[names[0]]["labels"]
    rows = read_labels(labels_csv, data_dir, labels)
    y_files = np.array([labels.index(label) for _, label in rows])
    splits = list(
        ev.stratified_kfold_splits(y_files, n_splits, seed)
        if design == "kfold"
        else ev.repeated_stratified_splits(y_files, n_splits, test_size, seed)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    templates = {}
    for name, recipe in recipes.items():
        template = out_dir / name / "template"
        if not (template / "configs/recipe.json").is_file() or json.loads((template / "configs/recipe.json").read_text()) != json.loads(
            json.dumps(recipe)
        ):
            write_recipe_bundle(template, recipe, build_network(recipe).state_dict(), "# preprocessing template\n")
        templates[name] = template.resolve()
    jobs = split_jobs(
        recipes, templates, rows, splits, seed, device, out_dir.resolve(), str(plugins_dir) if plugins_dir else None, threads, hash_dataset(rows)
    )
    settings = executor or ExecutorSettings()
    with open_executor(settings) as running:
        fn: Callable[[Any], Any] = functools.partial(run_split_job, pm=pm, data_cache={}) if running.in_process else run_split_job
        done = run_jobs(
            running,
            fn,
            jobs,
            JobCache(out_dir / "jobs"),
            retries=settings.retries,
            progress=progress,
            log=log,
            describe=lambda job, r: f"accuracy {r['summary'].get('accuracy')}",
        )
    log(f"{len(done.ran)} jobs ran, {len(done.cached)} came from {out_dir / 'jobs'}, in {done.seconds:.1f} s")
    by_job = {job.name: result for job, result in zip(jobs, done.results, strict=True)}
    per_split: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    split_predictions: dict[str, list[tuple[list[str], np.ndarray, np.ndarray]]] = {name: [] for name in names}
    pooled: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for name in names:
        for k in range(len(splits)):
            result = by_job[f"{name} split {k + 1}/{len(splits)}"]
            per_split[name].append(result["summary"])
            split_predictions[name].append(
                (result["sources"], np.asarray(result["truth"], dtype=np.int64), np.asarray(result["probabilities"], dtype=np.float64))
            )
        sources_all = [s for run in split_predictions[name] for s in run[0]]
        y_cat = np.concatenate([run[1] for run in split_predictions[name]])
        p_cat = np.concatenate([run[2] for run in split_predictions[name]])
        pooled[name] = (sources_all, y_cat, p_cat)
        report = ev.classification_report(y_cat, p_cat, labels)
        write_report_files(report, y_cat, p_cat, labels, out_dir / name, f"{name}: pooled out-of-split predictions ({design}, {len(splits)} splits)")
    results: dict[str, Any] = {
        "design": design,
        "splits": len(splits),
        "labels": labels,
        "per_split": per_split,
        "summary": {name: ev.summarize_splits(rows_) for name, rows_ in per_split.items()},
        "mann_whitney": {f"{a} vs {b}": ev.compare_split_metrics(per_split[a], per_split[b]) for a, b in combinations(names, 2)},
    }
    if design == "kfold" and len(names) > 1:  # every view is tested exactly once: pair them
        results["pooled_comparisons"] = compare_models(pooled, labels)
    if len(names) > 1:  # the models saw the same test files in each split: pair them per split
        results["per_split_comparisons"] = [compare_models({name: split_predictions[name][k] for name in names}, labels) for k in range(len(splits))]
    results["split_predictions"] = {
        name: [{"sources": s, "truth": [labels[int(t)] for t in y], "probabilities": p.round(6).tolist()} for s, y, p in runs]
        for name, runs in split_predictions.items()
    }
    (out_dir / "summary.md").write_text("# Mean ± SD across splits\n\n" + ev.format_split_summary(results["summary"]) + "\n")
    _json(out_dir / "experiment.json", results)
    return results


def base_of(labels_csv: Path, data_dir: Path | None) -> Path:
    """The folder the labels CSV's file names are relative to."""
    return data_dir or labels_csv.parent


def file_level_calls(
    rows: Sequence[tuple[Path, str]], base: Path, sources: list[str], probs: np.ndarray, labels: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Truth and model call per labelled file name (views averaged), keyed as in the CSV."""
    name_of = {str(path): str(path.relative_to(base)) if path.is_relative_to(base) else str(path) for path, _ in rows}
    truth = {name_of[str(path)]: label for path, label in rows}
    summed: dict[str, np.ndarray] = {}
    for source, p in zip(sources, probs, strict=True):
        key = name_of.get(source.split("#")[0])
        if key is not None:
            summed[key] = summed.get(key, 0) + p
    return truth, {key: labels[int(np.argmax(p))] for key, p in summed.items()}


def format_readers(model: str, comparison: dict[str, Any]) -> str:
    """Markdown: model and readers side by side, then kappa between readers."""

    def pct(entry: Any) -> str:
        value = entry.get("value") if isinstance(entry, dict) else entry
        if value is None:
            return "–"
        text = f"{100 * value:.1f}"
        if isinstance(entry, dict) and entry.get("lower") is not None:
            text += f" ({100 * entry['lower']:.1f}–{100 * entry['upper']:.1f})"
        return text

    lines = [
        "# Model and readers",
        "",
        "| who | n | accuracy % (95 % CI) | sensitivity % (macro) | specificity % (macro) | McNemar p vs model |",
        "|---|---|---|---|---|---|",
    ]
    rows = [(f"model {model}", comparison["model"], None)] + [
        (reader, s, s["mcnemar_vs_model"]["p_value"]) for reader, s in comparison["readers"].items()
    ]
    for who, s, p in rows:
        lines.append(
            f"| {who} | {s['n']} | {pct(s['accuracy'])} | {pct(s['sensitivity'])} | {pct(s['specificity'])} | {'–' if p is None else f'{p:.4g}'} |"
        )
    if comparison["kappa"]:
        lines += ["", "| readers | n | Cohen's kappa |", "|---|---|---|"]
        lines += [f"| {k['reader_a']} vs {k['reader_b']} | {k.get('n', '–')} | {k['kappa']:.3f} |" for k in comparison["kappa"]]
    return "\n".join(lines) + "\n"


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _write_predictions(path: Path, sources: list[str], y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "truth", "label", "confidence"] + [f"prob_{label}" for label in labels])
        for source, t, p in zip(sources, y_true, probs, strict=True):
            writer.writerow([source, labels[int(t)], labels[int(p.argmax())], f"{p.max():.6f}"] + [f"{v:.6f}" for v in p])
