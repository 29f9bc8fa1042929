"""Fit a bundle's learned gate and temperature (what ``scintipipe gate fit`` runs).

For one bundle:

1. loads the labelled training folders (``labels.csv`` as ``scintipipe simulate`` writes
   it) through the loaders and the bundle's own ``scan_transforms``, and fits the OOD
   score on the network's penultimate features;
2. splits the held-out folders' files (views of one file together, each folder on its
   own, seeded) into a calibration half and a test half;
3. sets the threshold at a high quantile (default the 99.5th percentile) of the
   calibration half's scores and reports the acceptance on the test half (Wilson 95 %);
4. fits the softmax temperature on the calibration half (NLL) and reports the expected
   calibration error before and after on the test half;
5. writes ``models/ood.pt`` and updates ``configs/gate.json`` (other keys, such as
   ``radionuclides``, are kept).

Only the learned layer is measured here: the views are preprocessed without the
``metadata`` and ``content`` layers, so every labelled view counts.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm


#: default threshold quantile of calibration-half in-distribution scores
DEFAULT_QUANTILE = 0.995
#: bump to invalidate cached features
CACHE_VERSION = 3


@dataclass
class ViewTable:
    """Per-view tensors of labelled views, with where each view came from.

    Attributes:
        data: per-view tensors, first dimension ``N``: ``{"inputs": (N, C, H, W)}`` for
            loaded views (what the bundle's network is given), or the outputs of
            :func:`scintipipe.gate.ood.network_features` (``"features"``, ``"logits"``,
            ``"layer:<name>"``) for their features.
        targets: ``(N,)`` long tensor (``-1`` for unlabelled views).
        sources: each view's source (``file`` or ``file#view``).
        files: each view's file (views of one file share it).
        folders: each view's data folder (as given).
        failures: ``(file, reason)`` for files that could not be loaded or preprocessed.
    """

    data: dict[str, torch.Tensor]
    targets: torch.Tensor
    sources: list[str]
    files: list[str]
    folders: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def inputs(self) -> torch.Tensor:
        """``(N, C, H, W)`` network inputs of loaded views."""
        return self.data["inputs"]

    @property
    def feats(self) -> dict[str, torch.Tensor]:
        """The network outputs of a feature table."""
        return self.data

    @property
    def logits(self) -> torch.Tensor:
        """``(N, K)`` logits of a feature table."""
        return self.data["logits"]

    def subset(self, index: Sequence[int] | np.ndarray) -> ViewTable:
        """Rows ``index`` (no failures)."""
        idx = np.asarray(index, dtype=np.int64)
        t = torch.as_tensor(idx)
        return ViewTable({k: v[t] for k, v in self.data.items()}, self.targets[t], [self.sources[i] for i in idx], [self.files[i] for i in idx], [self.folders[i] for i in idx])

    @classmethod
    def concat(cls, tables: Sequence[ViewTable]) -> ViewTable:
        """All rows of ``tables``, in order (they must have the same keys)."""
        return cls(
            {k: torch.cat([t.data[k] for t in tables]) for k in tables[0].data},
            torch.cat([t.targets for t in tables]),
            [x for t in tables for x in t.sources],
            [x for t in tables for x in t.files],
            [x for t in tables for x in t.folders],
            [x for t in tables for x in t.failures],
        )


def folder_rows(folder: Path, labels: Sequence[str]) -> list[tuple[Path, str]]:
    """``(file, label)`` rows of ``FOLDER/labels.csv``.

    Raises:
        ValueError: the folder has no ``labels.csv`` or it is malformed (the file is named).
    """
    from scintipipe.training.data import LabelsError, read_labels

    csv_path = Path(folder) / "labels.csv"
    if not csv_path.is_file():
        raise ValueError(f"{csv_path} does not exist: each data folder needs a labels.csv with columns file,label (as scintipipe simulate writes)")
    try:
        return read_labels(csv_path, Path(folder), labels)
    except LabelsError as exc:
        raise ValueError(str(exc)) from exc


def load_views(pipeline: Any, rows: Sequence[tuple[Path, str | None]], folder: str, progress: bool | None = None, desc: str | None = None) -> ViewTable:
    """Load and preprocess each file through the pipeline's ``load`` and ``preprocess`` hooks.

    The ``gate_scan`` layers are not run: every view the loaders read counts.

    Args:
        pipeline: a :class:`scintipipe.pipeline.Pipeline` for the bundle.
        rows: ``(file, label)``; ``label`` may be ``None`` (unlabelled, target ``-1``).
        folder: the folder name recorded for each view.
        progress: progress bar (``None``: on a terminal).
        desc: the progress bar's label.
    """
    from scintipipe.pipeline import plain_tensor

    bundle = pipeline.bundle
    labels = bundle.labels
    inputs: list[torch.Tensor] = []
    targets: list[int] = []
    sources: list[str] = []
    files: list[str] = []
    failures: list[tuple[str, str]] = []
    for path, label in tqdm(rows, desc=desc or f"loading {folder}", unit="file", disable=None if progress is None else not progress, file=sys.stderr):
        try:
            views = []
            for scan in pipeline.load(Path(path)):
                case = pipeline.call("preprocess_scan", scan["source"], scan=scan, bundle=bundle)
                if case is None or "input" not in case:
                    raise ValueError(f"no plugin could preprocess this scan for bundle {bundle.name!r}")
                views.append((scan["source"], plain_tensor(case["input"]).float()))
        except Exception as exc:  # recorded, not lost
            failures.append((str(path), getattr(exc, "reason", None) or str(exc)))
            continue
        for source, tensor in views:
            inputs.append(tensor)
            targets.append(-1 if label is None else labels.index(label))
            sources.append(source)
            files.append(str(path))
    shape = tuple(inputs[0].shape) if inputs else (1, *bundle.input_shape)
    stacked = torch.stack(inputs) if inputs else torch.zeros(0, *shape)
    return ViewTable({"inputs": stacked}, torch.as_tensor(targets, dtype=torch.long), sources, files, [folder] * len(sources), failures)


def folder_views(pipeline: Any, folder: Path, progress: bool | None = None, cache_dir: Path | None = None) -> ViewTable:
    """:func:`load_views` of a labelled folder, cached under ``cache_dir`` when given.

    The cache key is the bundle's ``configs/inference.json`` (its ``scan_transforms``), the
    folder's resolved path and its ``labels.csv`` bytes (a data set rewritten with the
    same labels file is not detected: clear the cache then).
    """
    folder = Path(folder)
    rows = folder_rows(folder, pipeline.bundle.labels)
    cache = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{CACHE_VERSION}|{folder.resolve()}|".encode())
        digest.update((pipeline.bundle.root / "configs/inference.json").read_bytes())
        digest.update((folder / "labels.csv").read_bytes())
        cache = Path(cache_dir) / f"{folder.name}-{digest.hexdigest()[:20]}.pt"
        if cache.is_file():
            views = ViewTable(**torch.load(cache, weights_only=True))
            views.folders = [str(folder)] * len(views)
            return views
    views = load_views(pipeline, rows, str(folder), progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(views.__dict__, cache)
    return views


def features_of(network: torch.nn.Module, views: ViewTable, layers: Sequence[str] = (), device: str = "cpu", batch_size: int = 64) -> ViewTable:
    """:func:`scintipipe.gate.ood.network_features` of every view, in batches."""
    from scintipipe.gate.ood import network_features

    if len(views):
        feats = network_features(network, views.inputs.to(device), layers, batch_size=batch_size)
    else:
        feats = network_features(network, torch.zeros(1, *views.inputs.shape[1:], device=device), layers)
        feats = {k: v[:0] for k, v in feats.items()}
    return ViewTable(feats, views.targets, views.sources, views.files, views.folders, views.failures)


def split_halves(data: ViewTable, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a calibration and a test half: files shuffled per folder, views of a file together."""
    rng = np.random.default_rng(seed)
    calibration: list[int] = []
    test: list[int] = []
    for folder in dict.fromkeys(data.folders):
        files = list(dict.fromkeys(f for f, g in zip(data.files, data.folders) if g == folder))
        order = rng.permutation(len(files))
        first = {files[i] for i in order[: (len(files) + 1) // 2]}
        for index, (f, g) in enumerate(zip(data.files, data.folders)):
            if g == folder:
                (calibration if f in first else test).append(index)
    return np.asarray(calibration, dtype=np.int64), np.asarray(test, dtype=np.int64)


def threshold_at(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of ``scores`` (numpy's ``higher`` rule: always one of the scores)."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), quantile, method="higher"))


def acceptance(scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Share of ``scores`` at or below ``threshold``, with ``n``, ``accepted`` and a Wilson 95 % interval."""
    from scintipipe.evaluation.intervals import wilson_interval

    scores = np.asarray(scores)
    n = int(scores.size)
    k = int((scores <= threshold).sum())
    interval = wilson_interval(k, n) if n else None
    return {"rate": k / n if n else None, "accepted": k, "n": n, "ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None}


def describe_folders(data: ViewTable, folders: Sequence[Path]) -> str:
    """``folder (n views), ...``."""
    counts = {str(f): data.folders.count(str(f)) for f in folders}
    return ", ".join(f"{name} ({n} views)" for name, n in counts.items())


def fit_gate(
    pipeline: Any,
    train_dirs: Sequence[Path],
    held_out_dirs: Sequence[Path],
    external_dirs: Sequence[Path] = (),
    method: str = "mahalanobis_blocks",
    quantile: float = DEFAULT_QUANTILE,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Any, dict[str, Any]]:
    """Fit the learned gate and the temperature of ``pipeline.bundle``; nothing is written.

    Returns:
        ``(scorer, gate)``: the fitted :class:`scintipipe.gate.ood.OODScorer` and the new
        ``configs/gate.json`` content (without the keys it keeps from the old file).
    """
    from scintipipe.gate.calibration import N_BINS, ece_bootstrap_sd, expected_calibration_error, fit_temperature, nll, nll_change_interval, softmax
    from scintipipe.gate.ood import block_layers, make_scorer

    network = pipeline.bundle.network(device)
    load = lambda folder: folder_views(pipeline, folder, progress=progress, cache_dir=cache_dir)  # noqa: E731
    train_views = ViewTable.concat([load(f) for f in train_dirs])
    held_views = ViewTable.concat([load(f) for f in held_out_dirs])
    for source, reason in train_views.failures + held_views.failures:
        log(f"left out {source}: {reason}")
    if len(train_views) == 0 or len(held_views) < 4:
        raise ValueError(f"too few views: {len(train_views)} training, {len(held_views)} held out (need at least 1 and 4)")
    scorer = make_scorer(method)
    layers = block_layers(network, train_views.inputs[:2].to(device)) if method in ("mahalanobis_layers", "mahalanobis_blocks") else []
    train = features_of(network, train_views, layers, device)
    held = features_of(network, held_views, layers, device)
    del train_views, held_views
    scorer.fit_features(train.feats, train.targets)
    cal_idx, test_idx = split_halves(held, seed)
    cal, test = held.subset(cal_idx), held.subset(test_idx)
    cal_scores = scorer.score(cal.feats)
    test_scores = scorer.score(test.feats)
    threshold = threshold_at(cal_scores, quantile)
    held_accept = acceptance(test_scores, threshold)
    per_folder = {str(f): acceptance(test_scores[np.asarray(test.folders) == str(f)], threshold) for f in held_out_dirs}
    external = {}
    for folder in external_dirs:
        data = features_of(network, load(folder), layers, device)
        external[str(folder)] = acceptance(scorer.score(data.feats), threshold)
    temperature = fit_temperature(cal.logits, cal.targets)
    before, after = softmax(test.logits, 1.0), softmax(test.logits, temperature)
    targets = test.targets.numpy()
    ece_before, ece_after = expected_calibration_error(before, targets), expected_calibration_error(after, targets)
    pct = f"{quantile * 100:g}"
    held_desc = describe_folders(held, held_out_dirs)
    gate = {
        "temperature": round(temperature, 4),
        "calibration": {
            "ece_before": round(ece_before, 4),
            "ece_after": round(ece_after, 4),
            "ece_before_sd": round(ece_bootstrap_sd(before, targets), 4),
            "ece_after_sd": round(ece_bootstrap_sd(after, targets), 4),
            "nll_before": round(nll(test.logits, test.targets), 4),
            "nll_after": round(nll(test.logits, test.targets, temperature), 4),
            "nll_change_ci95": [round(x, 4) for x in nll_change_interval(test.logits, test.targets, temperature)[1:]],
            "accuracy": round(float((before.argmax(1) == targets).mean()), 4),
            "bins": N_BINS,
            "n": len(test),
            "n_fit": len(cal),
            "data": f"temperature fitted (NLL) on the calibration half ({len(cal)} views) and ECE (top-label, {N_BINS} equal-width bins; bootstrap SD) and NLL (paired bootstrap 95 % interval of the change) measured on the test half ({len(test)} views) of the held-out simulated scans {held_desc}, split per folder by file with seed {seed}",
        },
        "ood": {
            "method": method,
            "statistics": "models/ood.pt",
            "threshold": threshold,
            "fitted_on": f"{len(train)} training views: {describe_folders(train, train_dirs)}",
            "model_sha256": hashlib.sha256((pipeline.bundle.root / "models/model.pt").read_bytes()).hexdigest(),
            "threshold_rule": f"{pct}th percentile (numpy 'higher') of the scores of the calibration half ({len(cal)} views) of the held-out simulated scans {held_desc}",
            "acceptance": {
                "held_out": held_accept["rate"],
                "n": held_accept["n"],
                "accepted": held_accept["accepted"],
                "ci95": held_accept["ci95"],
                "data": f"test half of the held-out simulated scans (seed {seed})",
                "per_folder": per_folder,
                "external": external,
            },
        },
    }
    return scorer, gate


def write_gate(bundle_root: Path, scorer: Any, gate: dict[str, Any], command: str = "") -> Path:
    """Write ``models/ood.pt`` and merge ``gate`` into ``configs/gate.json`` (other keys kept)."""
    from scintipipe.gate.policy import GATE_CONFIG

    path = Path(bundle_root) / GATE_CONFIG
    try:
        current = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it first") from exc
    scorer.save(Path(bundle_root) / gate["ood"]["statistics"])
    merged = {**current, **gate}
    if command:
        merged["command"] = command
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path
