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
   ``radionuclides``, are kept);
6. renders the model card's "Input gate and calibration" section from ``configs/gate.json``
   into ``docs/README.md``, between ``<!-- gate:start -->`` and ``<!-- gate:end -->``
   (appended when the markers are absent; :func:`write_card_section`, also run alone by
   ``scintipipe gate card``).

Only the learned layer is measured here: the views are preprocessed without the
``metadata`` and ``content`` layers, so every labelled view counts.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from scintipipe.gate.policy import DEFAULT_QUANTILE

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
        return ViewTable(
            {k: v[t] for k, v in self.data.items()},
            self.targets[t],
            [self.sources[i] for i in idx],
            [self.files[i] for i in idx],
            [self.folders[i] for i in idx],
        )

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


def load_views(
    pipeline: Any, rows: Sequence[tuple[Path, str | None]], folder: str, progress: bool | None = None, desc: str | None = None
) -> ViewTable:
    """Load and preprocess each file through the pipeline's ``load`` and ``preprocess`` hooks.

    The ``gate_scan`` layers are not run: every view the loaders read counts.

    Args:
        pipeline: a :class:`scintipipe.pipeline.Pipeline` for the bundle.
        rows: ``(file, label)``; ``label`` may be ``None`` (unlabelled, target ``-1``).
        folder: the folder name recorded for each view.
        progress: progress bar (``None``: on a terminal).
        desc: the progress bar's label.
    """
    from scintipipe.errors import ScintipipeError
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
        except (ScintipipeError, ValueError) as exc:  # recorded, not lost (the pipeline wraps a plugin's exceptions in PluginError)
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
        files = list(dict.fromkeys(f for f, g in zip(data.files, data.folders, strict=True) if g == folder))
        order = rng.permutation(len(files))
        first = {files[i] for i in order[: (len(files) + 1) // 2]}
        for index, (f, g) in enumerate(zip(data.files, data.folders, strict=True)):
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

    def load(folder: Path) -> ViewTable:
        return folder_views(pipeline, folder, progress=progress, cache_dir=cache_dir)

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


def command_folders(command: str) -> list[tuple[str, str]]:
    """The ``(--train|--held-out|--external, folder)`` pairs of a recorded ``gate fit`` command, in order."""
    import shlex

    try:
        words = shlex.split(command or "")
    except ValueError:
        return []
    return [(a, b) for a, b in pairwise(words) if a in ("--train", "--held-out", "--external")]


def write_gate(bundle_root: Path, scorer: Any, gate: dict[str, Any], command: str = "", data_commands: Sequence[str] = ()) -> Path:
    """Write ``models/ood.pt`` and merge ``gate`` into ``configs/gate.json`` (other keys kept).

    Args:
        bundle_root: the bundle folder.
        scorer: the fitted scorer.
        gate: from :func:`fit_gate`.
        command: the ``scintipipe gate fit`` command line, recorded as ``command``.
        data_commands: the commands that made the data folders, recorded as
            ``data_commands`` (shown in the model card). When none are given, the old ones
            are kept only if ``command`` names the same folders as the old command.
    """
    from scintipipe.gate.policy import GATE_CONFIG

    path = Path(bundle_root) / GATE_CONFIG
    try:
        current = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it first") from exc
    scorer.save(Path(bundle_root) / gate["ood"]["statistics"])
    merged = {**current, **gate}
    if data_commands:
        merged["data_commands"] = list(data_commands)
    elif "data_commands" in merged and command_folders(command) != command_folders(current.get("command", "")):
        del merged["data_commands"]  # they made other folders
    if command:
        merged["command"] = command
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


# ---- the model card's gate section ---------------------------------------------------

#: the model card's generated gate section lies between ``<!-- gate:start -->`` and ``<!-- gate:end -->``
CARD_MARKER = "gate"
#: the model card, relative to the bundle folder
CARD_PATH = "docs/README.md"

#: what each learned score is, in the model card's words
METHOD_TEXT = {
    "mahalanobis": "class means of the penultimate features and one shared (Ledoit-Wolf) covariance; the score is the smallest squared Mahalanobis distance to a class mean (Lee et al. 2018)",
    "mahalanobis_blocks": "the channel means of every network block side by side, one Gaussian per class with a shared Ledoit-Wolf covariance; the score is the smallest squared Mahalanobis distance to a class mean",
    "mahalanobis_layers": "for every network block and the penultimate layer, the smallest class-conditional squared Mahalanobis distance (shared Ledoit-Wolf covariance), divided by its mean on the training views; the score is their average (about 1 in distribution)",
    "energy": "the free energy -logsumexp of the logits (Liu et al. 2020)",
    "msp": "minus the largest softmax probability (Hendrycks & Gimpel 2017)",
    "knn": "the distance of the normalised penultimate feature to its k-th nearest normalised training feature (Sun et al. 2022)",
}


def _pct(x: float) -> str:
    return "100" if x >= 1 else f"{100 * x:.1f}"


def _accepted(acc: dict[str, Any]) -> str:
    """``297/300 (99.0 %, Wilson 95 % CI 97.1-99.7)``."""
    if not acc.get("n"):
        return "no views"
    rate = acc.get("rate", acc.get("held_out"))
    rate = acc["accepted"] / acc["n"] if rate is None else rate
    ci = acc.get("ci95")
    interval = f", Wilson 95 % CI {_pct(ci[0])}-{_pct(ci[1])}" if ci else ""
    return f"{acc['accepted']}/{acc['n']} ({_pct(rate)} %{interval})"


def render_card_section(gate: dict[str, Any], model_sha256: str | None = None) -> str:
    """The model card's "Input gate and calibration" section, from ``configs/gate.json`` content.

    Args:
        gate: the parsed ``configs/gate.json``.
        model_sha256: the hash of the bundle's current ``models/model.pt``; when it differs
            from the one the statistics were fitted to, the section says they are stale.

    Returns:
        Markdown, starting with the ``## Input gate and calibration`` heading.
    """
    lines = [
        "## Input gate and calibration",
        "",
        "<!-- generated by `scintipipe gate fit` (or `scintipipe gate card`) from configs/gate.json: edits between the gate markers are overwritten -->",
    ]
    nuclides = gate.get("radionuclides")
    nuclide_line = (
        f"- **Radionuclides** an NM view may carry (metadata layer): {', '.join(nuclides)}."
        if nuclides
        else "- **Radionuclides**: not restricted (no `radionuclides` in `configs/gate.json`)."
    )
    ood, cal = gate.get("ood"), gate.get("calibration") or {}
    if not ood:
        lines += [
            "",
            "No learned out-of-distribution score and no temperature are fitted for these weights: the metadata and content layers gate this bundle alone, and the probabilities are the network's own. Fit them with `scintipipe gate fit --bundle BUNDLE --train TRAINING_FOLDER --held-out HELD_OUT_FOLDER` (`scintipipe gate fit --help`).",
            "",
            nuclide_line,
        ]
    else:
        method = ood["method"]
        acc = ood.get("acceptance") or {}
        lines += [
            "",
            "Measured by `scintipipe gate fit` on the labelled folders named below; shipped in `configs/gate.json` and `models/ood.pt`. "
            "How the layers (metadata, content, this learned score) work together and what each refuses: scintipipe's `docs/gate.md`; "
            "the learned scores compared: `benchmarks/results/gate_ood.md`.",
            "",
            nuclide_line,
        ]
        fitted_sha = ood.get("model_sha256")
        if model_sha256 and fitted_sha and model_sha256 != fitted_sha:
            lines.append(
                f"- **Stale: `models/model.pt` has changed since this gate was fitted** (fitted to SHA-256 `{fitted_sha[:12]}...`, now `{model_sha256[:12]}...`); the threshold, the statistics and the temperature below belong to the old weights. Refit with the command at the end."
            )
        lines += [
            f"- **Learned out-of-distribution score: `{method}`**: {METHOD_TEXT.get(method, 'see scintipipe.gate.ood')}; fitted on {ood.get('fitted_on', 'data not recorded')}.",
            f"- **Threshold {float(ood['threshold']):.4g}**: {ood.get('threshold_rule', 'rule not recorded')}. A view scoring above it is refused (`errors.csv`, stage `gate:ood`; `--accept-ood` classifies it with a banner).",
        ]
        if acc.get("n"):
            per_folder = acc.get("per_folder") or {}
            folders = "; ".join(f"`{name}` {_accepted(a)}" for name, a in per_folder.items()) if len(per_folder) > 1 else ""
            lines.append(f"- **Acceptance, held-out test half: {_accepted(acc)}**" + (f"; per folder: {folders}." if folders else "."))
        external = acc.get("external") or {}
        if external:
            lines.append(
                "- **External**: "
                + "; ".join(f"`{name}` **{_accepted(a)}**" for name, a in external.items())
                + " (acceptance only; nothing is fitted on it)."
            )
        else:
            lines.append("- **External**: no other-centre folder was given (`--external`).")
    if "temperature" in gate and cal:
        t = float(gate["temperature"])
        mood = (
            "; below 1: the network was *under*-confident on these held-out views"
            if t < 1
            else ("; above 1: the network was overconfident on these held-out views" if t > 1 else "")
        )
        ci = cal.get("nll_change_ci95")
        verdict = ""
        if ci:
            verdict = ": no clear gain" if ci[0] < 0 < ci[1] else (": worse" if ci[0] > 0 else "")
        nll = (
            f", NLL {cal['nll_before']:.3f} -> {cal['nll_after']:.3f}"
            + (f" (paired bootstrap 95 % CI of the change {ci[0]:+.3f} to {ci[1]:+.3f}{verdict})" if ci else "")
            if "nll_before" in cal
            else ""
        )
        sd = f"; bootstrap SD {cal['ece_before_sd']:.3f} / {cal['ece_after_sd']:.3f}" if "ece_before_sd" in cal else ""
        accuracy = f", accuracy {100 * cal['accuracy']:.1f} %" if "accuracy" in cal else ""
        lines.append(
            f"- **Temperature {t:.3f}** (logits are divided by it before the softmax; fitted by NLL{mood}). "
            f"On {cal.get('n', '?')} test-half views{accuracy}: **ECE {cal['ece_before']:.3f} -> {cal['ece_after']:.3f}** (top label, {cal.get('bins', 15)} equal-width bins{sd}){nll}. "
            "A temperature does not make the network less confident on inputs unlike its training data; the gate does that."
        )
        if cal.get("data"):
            lines.append(f"- Calibration data: {cal['data']}.")
    commands = [*gate.get("data_commands", []), *([gate["command"]] if gate.get("command") else [])]
    if commands:
        lines += ["", "Reproduce" + (" (the data, then the fit)" if gate.get("data_commands") else "") + ":", "", "```", *commands, "```"]
    return "\n".join(lines)


def bundle_card_section(bundle_root: Path, gate: dict[str, Any] | None = None) -> str:
    """:func:`render_card_section` of a bundle folder (its ``configs/gate.json`` unless ``gate`` is given).

    Raises:
        ValueError: ``configs/gate.json`` is missing or not valid JSON.
    """
    from scintipipe.gate.policy import GATE_CONFIG

    root = Path(bundle_root)
    if gate is None:
        path = root / GATE_CONFIG
        if not path.is_file():
            raise ValueError(f"{path} does not exist: nothing to render (fit the gate first: scintipipe gate fit)")
        try:
            gate = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it first") from exc
    model = root / "models/model.pt"
    sha = hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else None
    return render_card_section(gate, sha)


def write_card_section(bundle_root: Path, gate: dict[str, Any] | None = None) -> Path:
    """Write :func:`bundle_card_section` into the bundle's ``docs/README.md`` between the gate markers.

    The markers (``<!-- gate:start -->``, ``<!-- gate:end -->``) are appended at the end of
    the card when absent; the rest of the card is left alone.

    Args:
        bundle_root: the bundle folder.
        gate: the ``configs/gate.json`` content (default: read from the bundle).

    Returns:
        The model card's path.

    Raises:
        ValueError: ``configs/gate.json`` is missing or not valid JSON.
    """
    from scintipipe.docs_markers import update_file

    card = Path(bundle_root) / CARD_PATH
    update_file(card, CARD_MARKER, bundle_card_section(bundle_root, gate))
    return card
