"""Choose a bundle's ``zoom_averaging_below``: confident scans skip the averaging over zooms.

Run from the repository root::

    python benchmarks/zoom_cascade.py --bundle uptake4             # choose, on the rule's selection sets
    python benchmarks/zoom_cascade.py --bundle disease
    python benchmarks/zoom_cascade.py --bundle uptake4 --threshold 0.99 --set internal=data/u4-rand-test400 \
        --set centre-b=data/u4-b-external302 --out /tmp/report      # report one threshold on other sets

A bundle with ``zoom_factors`` classifies a scan with a pixel spacing at each zoom and
averages the probabilities; one with ``zoom_averaging_below`` too classifies a scan once
when its top probability at the spacing as acquired reaches that value
(:mod:`scintipipe.transforms.unknown_scale`). This script compares the two on labelled
scans, for each threshold of a grid, from one preprocessing of each scan at every zoom:

* probabilities as ``scintipipe run`` reports them (softmax of the logits over the gate's
  temperature); full averaging is their mean over the zooms, the cascade keeps the single
  pass where its top probability reaches the threshold;
* per threshold: the share of scans that skip the averaging, the calls that differ from full
  averaging's, the errors of both, accuracy with Wilson 95 % intervals.

The rule (``benchmarks/results/zoom_cascade/rule.md``, written before any result): the
threshold is the smallest in the grid at which the calls differ from full averaging's on at
most 0.5 % of the pooled selection scans and the cascade makes at most 0.25 % of them
(rounded down, at least 1) more errors. The selection sets are fresh draws of the project's
simulator (:data:`SELECTION`), simulated into ``--data`` on first use; the real images and
the stand-in simulator take no part. ``--set`` replaces them (reporting only, with
``--threshold``, no choice made).

Outputs: ``OUT/zoom_cascade_<bundle>.{md,json}`` (default ``benchmarks/results/zoom_cascade``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, bundle_copy, git_commit, repo_relative, simulate_once

#: the thresholds the rule may choose from, in increasing order
GRID = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
#: the rule's limits: calls that differ from full averaging, and extra errors, as shares of the scans
MAX_DISAGREEMENT = 0.005
MAX_EXTRA_ERRORS = 0.0025
#: per task, the rule's fresh selection sets: (name, n, seed, centre, extra simulate arguments)
SELECTION = {
    "uptake4": [
        ("randomised DICOM", 600, 3203, "randomised", ["--class-mix", "balanced"]),
        ("centre b", 302, 3202, "b", []),
    ],
    "disease": [
        ("randomised DICOM", 600, 3213, "randomised", ["--class-mix", "balanced"]),
        ("centre b", 200, 3212, "b", ["--class-mix", "balanced"]),
    ],
}


def reported_probabilities(bundle: Any, folder: Path) -> dict[str, Any]:
    """Every scan of ``folder`` (``labels.csv``) at each of the bundle's zooms, as ``run`` reports probabilities.

    Returns:
        ``{"sources", "truth" (label index), "single" (n, k), "averaged" (n, k), "zoomed" (bool per
        scan: it has a spacing, so the zooms apply)}``.

    Raises:
        SystemExit: the bundle declares no ``zoom_factors``.
    """
    from scintipipe.bundle import Bundle
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.training.data import read_labels
    from scintipipe.training.evaluate import classify_labelled

    if not bundle.zoom_factors:
        raise SystemExit(f"{bundle.root}: the bundle declares no zoom_factors, so there is no zoom averaging to skip")
    with tempfile.TemporaryDirectory() as work:
        # a copy with a threshold marks the rows the zooms apply to (data.zoom_deferred), as
        # against pictures averaged over assumed fields of view; evaluation makes every row's inputs
        marked = Bundle(bundle_copy(Path(bundle.root), Path(work) / "bundle", "zoom_averaging_below", 1.0), name=bundle.name)
        data = classify_labelled(make_plugin_manager(), marked, read_labels(folder / "labels.csv", folder, bundle.labels), "cpu", progress=True)
    network, temperature = bundle.network("cpu"), bundle.gate.temperature

    def probabilities(inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([(network(batch).float() / temperature).softmax(1) for batch in inputs.split(128)])

    single = probabilities(data.inputs)
    averaged = single.clone()
    zoomed = np.zeros(len(data), dtype=bool)
    for row, inputs in data.scale_inputs.items():
        averaged[row] = probabilities(inputs).mean(0)
        zoomed[row] = row in data.zoom_deferred
    return {"sources": data.sources, "truth": data.targets.numpy(), "single": single.numpy(), "averaged": averaged.numpy(), "zoomed": zoomed}


def cascade(single: np.ndarray, averaged: np.ndarray, zoomed: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The cascade's probabilities and which scans skipped the averaging.

    Args:
        single: ``(n, k)`` probabilities at the spacing as acquired.
        averaged: ``(n, k)`` their mean over the zooms (equal to ``single`` where not ``zoomed``).
        zoomed: which scans the zooms apply to.
        threshold: the top probability from which a scan is classified once.

    Returns:
        ``(probabilities, skipped)``.

    Example:
        >>> single = np.array([[0.995, 0.005], [0.6, 0.4]])
        >>> averaged = np.array([[0.9, 0.1], [0.4, 0.6]])
        >>> probs, skipped = cascade(single, averaged, np.array([True, True]), 0.99)
        >>> probs.argmax(1).tolist(), skipped.tolist()
        ([0, 1], [True, False])
    """
    skipped = zoomed & (single.max(axis=1) >= threshold)
    return np.where(skipped[:, None], single, averaged), skipped


def judge(truth: np.ndarray, single: np.ndarray, averaged: np.ndarray, zoomed: np.ndarray, grid: tuple[float, ...] = GRID) -> list[dict[str, Any]]:
    """One row per threshold: skipped share, calls differing from full averaging, errors, and the rule's verdict."""
    from scintipipe.evaluation.intervals import wilson_interval

    n = len(truth)
    full_calls = averaged.argmax(1)
    full_errors = int((full_calls != truth).sum())
    allowed_disagreements = math.floor(MAX_DISAGREEMENT * n)
    allowed_extra = max(1, math.floor(MAX_EXTRA_ERRORS * n))
    rows = []
    for threshold in grid:
        probs, skipped = cascade(single, averaged, zoomed, threshold)
        calls = probs.argmax(1)
        errors = int((calls != truth).sum())
        disagreements = int((calls != full_calls).sum())
        rows.append(
            {
                "threshold": threshold,
                "n": n,
                "skipped": int(skipped.sum()),
                "disagreements": disagreements,
                "errors_full": full_errors,
                "errors_cascade": errors,
                "accuracy_full": 1 - full_errors / n,
                "accuracy_cascade": 1 - errors / n,
                "wilson95_full": wilson_interval(n - full_errors, n),
                "wilson95_cascade": wilson_interval(n - errors, n),
                "meets_rule": disagreements <= allowed_disagreements and errors - full_errors <= allowed_extra,
            }
        )
    return rows


def choose(rows: list[dict[str, Any]]) -> float | None:
    """The smallest threshold meeting the rule, or ``None``."""
    return next((row["threshold"] for row in rows if row["meets_rule"]), None)


def render(results: dict[str, Any]) -> str:
    """The markdown report."""

    def interval(bounds: list[float] | tuple[float, float] | None) -> str:
        return f"{100 * bounds[0]:.1f}-{100 * bounds[1]:.1f}" if bounds else "-"

    lines = [f"# Zoom averaging only below a confidence threshold: {results['bundle']} {results['bundle_version']}", ""]
    lines += [
        f"Measured {results['date']} at commit {results['commit']}: `{results['command']}`.",
        "",
        "Probabilities as `scintipipe run` reports them (temperature-scaled). *Full*: averaged over the bundle's zoom "
        f"factors {', '.join(f'{f:g}' for f in results['zoom_factors'])} for every scan with a spacing; *cascade*: a scan whose top "
        "probability at the spacing as acquired reaches the threshold keeps that single pass. Accuracy with Wilson 95 % intervals.",
        "",
    ]
    for name, entry in results["sets"].items():
        lines.append(f"- **{name}**: `{entry['folder']}`, {entry['n']} scans, {entry['zoomed']} with a spacing")
    lines.append("")
    for block, rows in results["tables"].items():
        lines += [
            f"## {block}",
            "",
            "| threshold | skip the averaging | calls differing from full | errors full | errors cascade | accuracy full % | accuracy cascade % | meets the rule |",
        ]
        lines.append("|---|---|---|---|---|---|---|---|")
        for row in rows:
            lines.append(
                f"| {row['threshold']:g} | {row['skipped']}/{row['n']} ({100 * row['skipped'] / row['n']:.1f} %) | {row['disagreements']} | "
                f"{row['errors_full']} | {row['errors_cascade']} | {100 * row['accuracy_full']:.1f} ({interval(row['wilson95_full'])}) | "
                f"{100 * row['accuracy_cascade']:.1f} ({interval(row['wilson95_cascade'])}) | {'yes' if row['meets_rule'] else 'no'} |"
            )
        lines.append("")
    if results.get("chosen", "not chosen") != "not chosen":
        chosen = results["chosen"]
        lines.append(
            f"**Chosen by the rule** (pooled; differing calls <= {100 * MAX_DISAGREEMENT:g} %, extra errors <= {100 * MAX_EXTRA_ERRORS:g} % "
            f"of the scans, at least 1): {'none: full averaging stays' if chosen is None else f'`zoom_averaging_below` = {chosen:g}'}."
        )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default="uptake4", help="bundle name or folder (default uptake4); it must declare zoom_factors")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="report on this labelled folder instead of the selection sets (repeatable)",
    )
    parser.add_argument("--threshold", type=float, action="append", default=[], help="report these thresholds instead of the grid (repeatable)")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="where the selection sets are simulated (default data/)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoom_cascade", help="output folder")
    args = parser.parse_args(argv)

    from scintipipe.bundle import resolve_bundle
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    bundle = resolve_bundle(args.bundle, tasks_and_bundles(make_plugin_manager()).bundles)
    if args.sets:
        folders = {}
        for text in args.sets:
            name, sep, folder = text.partition("=")
            if not sep or not name or not folder:
                parser.error(f"--set expects NAME=FOLDER, got {text!r}")
            if not (Path(folder) / "labels.csv").is_file():
                parser.error(f"--set {text}: {folder}/labels.csv not found")
            folders[name] = Path(folder)
    else:
        if bundle.task not in SELECTION:
            parser.error(f"no selection sets for task {bundle.task!r}; give --set NAME=FOLDER")
        folders = {
            name: simulate_once(args.data / f"cascade-{bundle.task}-{centre}-{seed}", n, seed, centre, bundle.task, extra, progress=True)
            for name, n, seed, centre, extra in SELECTION[bundle.task]
        }
    grid = tuple(sorted(args.threshold)) or GRID
    results: dict[str, Any] = {
        "bundle": bundle.name,
        "bundle_version": bundle.version,
        "zoom_factors": list(bundle.zoom_factors),
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "command": "python benchmarks/zoom_cascade.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sets": {},
        "tables": {},
    }
    pooled: dict[str, list[np.ndarray]] = {"truth": [], "single": [], "averaged": [], "zoomed": []}
    for name, folder in folders.items():
        print(f"{name}: {folder}", flush=True)
        scored = reported_probabilities(bundle, folder)
        results["sets"][name] = {"folder": repo_relative(folder), "n": len(scored["truth"]), "zoomed": int(scored["zoomed"].sum())}
        results["tables"][name] = judge(scored["truth"], scored["single"], scored["averaged"], scored["zoomed"], grid)
        for key in pooled:
            pooled[key].append(scored[key])
    if len(folders) > 1:
        results["tables"]["pooled"] = judge(*(np.concatenate(pooled[key]) for key in ("truth", "single", "averaged", "zoomed")), grid)
    if not args.sets and not args.threshold:
        results["chosen"] = choose(results["tables"]["pooled" if len(folders) > 1 else next(iter(folders))])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"zoom_cascade_{bundle.name}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    stem.with_suffix(".md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
