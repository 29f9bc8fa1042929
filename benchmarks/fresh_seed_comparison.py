"""Paired comparison of two uptake4 bundles on fresh simulated sets: the ship decision's figures.

Run from the repository root::

    python benchmarks/fresh_seed_comparison.py --candidate data/uptake4-ensemble
    python benchmarks/fresh_seed_comparison.py --baseline uptake4 --candidate my-uptake4/ --seeds 1503,1504,1502 --out /tmp/cmp

A candidate replaces the shipped bundle only by a rule written before any result (see
docs/training.md). The rule is judged on sets that no earlier candidate has seen, drawn by
the current simulator with seeds chosen before the run:

* randomised DICOM: ``--n 600 --center randomised --class-mix balanced``;
* display exports: ``--n 400 --center randomised --class-mix balanced --display-exports 1``;
* centre b: ``--n 302 --center b`` (the paper's external class mix).

Each set is simulated into ``--data`` (skipped when present), both bundles are run on it
with one ``scintipipe evaluate --bundle BASELINE --bundle CANDIDATE`` (:func:`evaluate_models`,
which ``training_run_spread.py`` also uses for more bundles; an evaluation in ``--work`` made
from the same labels and weights is reused). Accuracy is the network's
arg-max, as in every figure in docs/training.md (the gate and the temperature play no part),
and the per-scan correctness of the two is compared: accuracy with Wilson 95 % intervals,
the paired difference with its normal-approximation 95 % interval, the exact McNemar test,
and each class's sensitivity. The sets are pooled for the headline difference.

Outputs: ``OUT/fresh_seed_comparison.{md,json}`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the steps the ship scripts take
from _common import ROOT, mcnemar_exact

#: (name, n, centre, extra simulate arguments); the seeds come from --seeds, in this order
SETS = [
    ("randomised DICOM", 600, "randomised", ["--class-mix", "balanced"]),
    ("display exports", 400, "randomised", ["--class-mix", "balanced", "--display-exports", "1"]),
    ("centre b", 302, "b", []),
]
#: the seeds the seed-ensemble candidate was judged on (2026-12-01); a new candidate needs new ones
#: (used so far: 1202, 1303, 1304, 1402-1404, 1502-1504, 1602-1604, 1702-1704, 1802-1804, 1902-1904, 2002-2004, 2102-2104, 2202-2204, 2302-2304; docs/training.md;
#: benchmarks/training_run_spread.py judges on the same sets)
DEFAULT_SEEDS = (1403, 1404, 1402)


def read_predictions(path: Path) -> dict[str, tuple[str, str]]:
    """``{source: (truth, predicted label)}`` from an evaluation's ``predictions.csv``."""
    with path.open(newline="") as handle:
        return {row["source"]: (row["truth"], row["label"]) for row in csv.DictReader(handle)}


def wilson(k: int, n: int) -> list[float]:
    """Wilson 95 % interval of ``k / n``."""
    from scintipipe.evaluation.intervals import wilson_interval

    low, high = wilson_interval(k, n)
    return [float(low), float(high)]


def paired(first: np.ndarray, second: np.ndarray) -> dict[str, Any]:
    """Accuracy of each and the paired difference (second - first), in points, with 95 % intervals."""
    n = len(first)
    diff = second.astype(float) - first.astype(float)
    mean = float(diff.mean())
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {
        "n": n,
        "baseline": {"correct": int(first.sum()), "accuracy": float(first.mean()), "ci95": wilson(int(first.sum()), n)},
        "candidate": {"correct": int(second.sum()), "accuracy": float(second.mean()), "ci95": wilson(int(second.sum()), n)},
        "difference_points": 100 * mean,
        "difference_ci95_points": [100 * (mean - 1.96 * se), 100 * (mean + 1.96 * se)],
        "mcnemar": mcnemar_exact(first, second),
    }


def shown(path: Path) -> Path:
    """``path`` relative to the repository root when it lies inside it (as commands are shown)."""
    return Path(common.repo_relative(path))


def missing_bundle_folder(bundle: str) -> str | None:
    """Why ``bundle`` (a ``--bundle`` value) cannot be used, when it names a folder that is not a bundle; else ``None``.

    A value without a path separator is a registered bundle name, resolved by ``scintipipe``.
    """
    path = Path(bundle)
    if "/" not in bundle and not path.exists():
        return None
    if not (path / "configs").is_dir():
        return f"{bundle}: no bundle folder there (a bundle has configs/ and models/)"
    return None


def evaluation_key(models: dict[str, str], folder: Path) -> dict[str, Any]:
    """What an evaluation in ``--work`` was made from: the set's labels and each bundle with its weights' SHA-256.

    An evaluation whose ``evaluated.json`` holds the same key is reused, so a rerun that only
    changes the comparison does not classify the sets again.
    """
    from scintipipe.executors.sweeps import weights_digest

    labels = folder / "labels.csv"
    return {
        "labels_sha256": hashlib.sha256(labels.read_bytes()).hexdigest(),
        "bundles": [[bundle, weights_digest(Path(bundle)) if Path(bundle).is_dir() else None] for bundle in models.values()],
    }


def evaluate_models(models: dict[str, str], seeds: list[int], data: Path, work: Path, threads: int) -> dict[str, Any]:
    """Evaluate every model on each fresh set; ``{set name: {"n", "truth", "correct": {model: bool array}, "command"}}``."""
    sets: dict[str, Any] = {}
    for (name, n, centre, extra), seed in zip(SETS, seeds, strict=True):
        folder = common.simulate_once(data / f"fresh-{seed}", n, seed, centre, extra=extra)
        out = work / f"fresh-{seed}"
        key = evaluation_key(models, folder)
        if not (out / "evaluated.json").is_file() or json.loads((out / "evaluated.json").read_text()) != key:
            command = [*common.SCINTIPIPE, "evaluate", *[a for bundle in models.values() for a in ("--bundle", bundle)]]
            common.sh(
                command + ["--labels", str(folder / "labels.csv"), "--out", str(out), "--threads", str(threads), "--no-progress", str(folder)],
                threads,
            )
            (out / "evaluated.json").write_text(json.dumps(key, indent=2) + "\n")
        folders = list(json.loads((out / "evaluation.json").read_text())["models"])
        predictions = {model: read_predictions(out / result / "predictions.csv") for model, result in zip(models, folders, strict=True)}
        sources = sorted(next(iter(predictions.values())))
        if any(sorted(p) != sources for p in predictions.values()):
            raise SystemExit(f"{out}: the models classified different files")
        truth = [predictions[next(iter(models))][s][0] for s in sources]
        sets[name] = {
            "n": len(sources),
            "truth": truth,
            "correct": {model: np.array([p[s][1] == p[s][0] for s in sources]) for model, p in predictions.items()},
            "command": " ".join(["scintipipe", *common.simulate_args("uptake4", n, seed, centre, shown(folder), extra)]),
        }
    return sets


def run(baseline: str, candidate: str, seeds: list[int], data: Path, work: Path, threads: int) -> dict[str, Any]:
    """Simulate (where missing), evaluate both bundles, and compare each set and the pool."""
    sets = evaluate_models({"baseline": baseline, "candidate": candidate}, seeds, data, work, threads)
    results: dict[str, Any] = {"baseline": baseline, "candidate": candidate, "sets": {}}
    for name, evaluated in sets.items():
        a, b = evaluated["correct"]["baseline"], evaluated["correct"]["candidate"]
        truth = np.array(evaluated["truth"])
        entry = paired(a, b)
        entry["per_class"] = {
            label: {"n": int((truth == label).sum()), "baseline": int(a[truth == label].sum()), "candidate": int(b[truth == label].sum())}
            for label in sorted(set(evaluated["truth"]))
        }
        entry["command"] = evaluated["command"]
        results["sets"][name] = entry
    results["pooled"] = paired(
        np.concatenate([s["correct"]["baseline"] for s in sets.values()]), np.concatenate([s["correct"]["candidate"] for s in sets.values()])
    )
    return results


def render(results: dict[str, Any], command: str) -> str:
    """The Markdown report."""

    def pct(entry: dict[str, Any]) -> str:
        low, high = entry["ci95"]
        return f"{100 * entry['accuracy']:.1f} % ({100 * low:.1f}-{100 * high:.1f})"

    def diff(entry: dict[str, Any]) -> str:
        low, high = entry["difference_ci95_points"]
        return f"{entry['difference_points']:+.2f} ({low:+.2f} to {high:+.2f})"

    lines = [
        "# Paired comparison on fresh simulated sets",
        "",
        f"Command: `{command}` (commit {common.git_commit()}). Baseline `{results['baseline']}`, candidate `{results['candidate']}`. "
        "Accuracy is the network's arg-max; intervals are Wilson 95 % for accuracy and normal-approximation 95 % for the paired "
        "difference (candidate - baseline, in points); McNemar is exact.",
        "",
        "| set | n | baseline | candidate | difference, points (95 % CI) | only baseline / only candidate right | McNemar p |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in [*results["sets"].items(), ("pooled", results["pooled"])]:
        m = entry["mcnemar"]
        lines.append(
            f"| {name} | {entry['n']} | {pct(entry['baseline'])} | {pct(entry['candidate'])} | {diff(entry)} | "
            f"{m['only_first_correct']} / {m['only_second_correct']} | {m['p_value']:.3g} |"
        )
    lines += ["", "Sensitivity per class (correct / n, baseline -> candidate):", ""]
    for name, entry in results["sets"].items():
        cells = ", ".join(f"{label} {c['baseline']}/{c['n']} -> {c['candidate']}/{c['n']}" for label, c in entry["per_class"].items())
        lines.append(f"- {name}: {cells}")
    lines += ["", "Data:", "", "```", *(entry["command"] for entry in results["sets"].values()), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="uptake4", help="bundle name or folder (default: the shipped uptake4)")
    parser.add_argument("--candidate", required=True, help="bundle name or folder")
    parser.add_argument(
        "--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="seeds of the three sets, in order: randomised DICOM, exports, centre b"
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="where the sets are simulated (fresh-<seed>/)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fresh_seed_comparison"), help="where the evaluations are written")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results", help="folder for fresh_seed_comparison.{md,json}")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) != len(SETS):
        parser.error(f"--seeds needs {len(SETS)} seeds (randomised DICOM, exports, centre b), not {len(seeds)}")
    for option, bundle in (("--baseline", args.baseline), ("--candidate", args.candidate)):
        if (reason := missing_bundle_folder(bundle)) is not None:
            parser.error(f"{option} {reason}")
    results = run(args.baseline, args.candidate, seeds, args.data, args.work, args.threads)
    command = "python benchmarks/fresh_seed_comparison.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fresh_seed_comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render(results, command.strip())
    (args.out / "fresh_seed_comparison.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
