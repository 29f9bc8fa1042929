"""How far apart do training runs of one recipe land on fresh sets? The yardstick for a candidate.

Run from the repository root::

    python benchmarks/training_run_spread.py
    python benchmarks/training_run_spread.py --train-seeds 1,2,3 --seeds 1703,1704,1702 --out /tmp/spread
    python benchmarks/training_run_spread.py --seeds 1803,1804,1802 --candidate CAND/seed-0 --candidate CAND/seed-1 --candidate CAND/seed-2
    (CAND: a candidate's runs, trained in its worktree by ``training_run_spread.py --train-only --train-seeds 0,1,2``)

A candidate's ship rule (docs/training.md) compares one training run of the candidate with
one of the shipped recipe. This script measures what the same comparison gives when
nothing but the training seed changes, and judges a candidate by several runs of each side:

1. the shipped bundle's training sets are simulated into ``--data`` as
   ``benchmarks/ship_uptake4.py`` makes them (skipped when present, and when every run is
   already trained);
2. the shipped recipe (``src/scintipipe/recipes/uptake4.json``; the shipped bundle is its
   seed 0) is trained again with each of ``--train-seeds`` by one
   ``scintipipe train --sweep seed=...`` into ``--runs`` (default
   ``DATA/uptake4-seed-runs/seed-K/``; a finished run is kept; ``--workers`` runs them side
   by side, one thread each). ``--train-only`` stops here: run it in a candidate simulator's
   worktree to train the candidate's runs on the candidate's data (``--train-seeds 0,1,2``);
3. the fresh sets of ``benchmarks/fresh_seed_comparison.py`` (``--seeds``: randomised DICOM,
   exports, centre b) are simulated, and the shipped bundle, every run and every
   ``--candidate`` bundle are evaluated on each with one ``scintipipe evaluate`` (the
   network's arg-max; the gate plays no part). An evaluation already in ``--work`` for the
   same labels and the same weights (``evaluated.json``) is reused;
4. every other model is compared with the shipped one, scan by scan, as the one-run ship
   rule does (the paired difference per set and pooled, with its 95 % interval, and each
   class's sensitivity); the spread (lowest to highest) of each figure over the recipe's
   runs is listed; with candidates, the mean over the candidate's runs is compared with the
   mean over the runs trained here (not the shipped bundle, which may have been trained with
   other threads or on other bytes: train the candidate's runs with the same seeds, threads
   and data seeds), as a difference of means with a paired bootstrap 95 % interval over
   scans, and each class's mean sensitivity.

Outputs: ``OUT/training_run_spread.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the steps the ship scripts take
from _common import ROOT
from fresh_seed_comparison import SETS, evaluate_models, missing_bundle_folder, paired, wilson
from ship_uptake4 import TRAIN_SETS

RECIPE = "src/scintipipe/recipes/uptake4.json"


def trained(out: Path, seeds: list[int]) -> bool:
    """Whether the sweep in ``out`` finished every seed and each run's weights are the ones it recorded.

    Training writes each run's bundle with its initial (random) weights before the first
    epoch, so the presence of ``models/model.pt`` says nothing; ``out/sweep.json`` is written
    only when every point has finished, with the SHA-256 of its weights.
    """
    from scintipipe.executors.sweeps import weights_digest

    summary = out / "sweep.json"
    if not summary.is_file():
        return False
    recorded = {point["values"].get("seed"): point for point in json.loads(summary.read_text())["points"]}
    return all(seed in recorded and recorded[seed].get("weights_sha256") == weights_digest(out / recorded[seed]["bundle"]) for seed in seeds)


def train_runs(data: Path, out: Path, seeds: list[int], workers: int) -> dict[str, Path]:
    """Train the recipe once per seed into ``out/seed-K/`` (simulating the training sets first where a run is missing).

    Args:
        data: where the shipped bundle's training sets are (or are simulated).
        out: the sweep's folder.
        seeds: the recipe seeds.
        workers: runs trained side by side.

    Returns:
        ``{"seed K": bundle folder}`` in the order of ``seeds``.
    """
    runs = {f"seed {seed}": out / f"seed-{seed}" for seed in seeds}
    if trained(out, seeds):
        return runs
    common.simulate_sets(data, TRAIN_SETS, {}, 1, "uptake4")
    labels_csv = data / "uptake4-train-labels.csv"
    common.combined_labels([data / name for name, *_ in TRAIN_SETS], data, labels_csv)
    command = [*common.SCINTIPIPE, "train", "--bundle", "uptake4", "--recipe", str(ROOT / RECIPE), "--data", str(data)]
    command += ["--labels", str(labels_csv), "--out", str(out), "--sweep", "seed=" + ",".join(map(str, seeds))]
    command += [
        "--threads",
        "1",
        "--no-progress",
        "--data-description",
        "the training sets of benchmarks/ship_uptake4.py (TRAIN_SETS), drawn by this checkout's simulator",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    common.sh(command, 1)
    return runs


def summarise(sets: dict[str, Any], reference: str) -> dict[str, Any]:
    """Accuracy and sensitivities of every model, and each model's paired difference from ``reference``."""
    models = list(next(iter(sets.values()))["correct"])
    summary: dict[str, Any] = {"reference": reference, "models": {}}
    for model in models:
        entry: dict[str, Any] = {"sets": {}}
        for name, s in sets.items():
            correct, truth = s["correct"][model], np.array(s["truth"])
            entry["sets"][name] = {
                "correct": int(correct.sum()),
                "n": s["n"],
                "accuracy": float(correct.mean()),
                "ci95": wilson(int(correct.sum()), s["n"]),
                "per_class": {label: [int(correct[truth == label].sum()), int((truth == label).sum())] for label in sorted(set(s["truth"]))},
            }
            if model != reference:
                difference = paired(s["correct"][reference], correct)
                entry["sets"][name]["difference_points"] = difference["difference_points"]
                entry["sets"][name]["difference_ci95_points"] = difference["difference_ci95_points"]
        if model != reference:
            pooled = paired(
                np.concatenate([s["correct"][reference] for s in sets.values()]), np.concatenate([s["correct"][model] for s in sets.values()])
            )
            entry["pooled"] = {key: pooled[key] for key in ("difference_points", "difference_ci95_points", "mcnemar")}
        summary["models"][model] = entry
    return summary


def spread(summary: dict[str, Any], runs: list[str]) -> dict[str, dict[str, list[float]]]:
    """Lowest and highest accuracy (%) and class sensitivity (%) of each set over ``runs``."""
    out: dict[str, dict[str, list[float]]] = {}
    for name in summary["models"][runs[0]]["sets"]:
        figures: dict[str, list[float]] = {"accuracy": [100 * summary["models"][run]["sets"][name]["accuracy"] for run in runs]}
        for label in summary["models"][runs[0]]["sets"][name]["per_class"]:
            figures[label] = [100 * k / n for k, n in (summary["models"][run]["sets"][name]["per_class"][label] for run in runs)]
        out[name] = {key: [min(values), max(values)] for key, values in figures.items()}
    return out


def compare_groups(sets: dict[str, Any], baseline: list[str], candidate: list[str], resamples: int = 2000) -> dict[str, Any]:
    """Mean accuracy over each group's runs, per set and pooled, and the difference of means (candidate - baseline).

    The interval is a paired bootstrap over scans (every model saw the same scans): scans are
    resampled with replacement, ``resamples`` times with seed 0, and the 2.5 and 97.5
    percentiles of the difference of means are taken.
    """
    rng = np.random.default_rng(0)

    def figures(correct_b: np.ndarray, correct_c: np.ndarray) -> dict[str, Any]:
        per_scan = correct_c.mean(axis=0) - correct_b.mean(axis=0)  # runs x scans -> scans
        draws = rng.integers(0, per_scan.size, size=(resamples, per_scan.size))
        boot = per_scan[draws].mean(axis=1)
        return {
            "n": int(per_scan.size),
            "baseline_mean_accuracy": float(correct_b.mean()),
            "candidate_mean_accuracy": float(correct_c.mean()),
            "difference_points": 100 * float(per_scan.mean()),
            "difference_ci95_points": [100 * float(np.percentile(boot, 2.5)), 100 * float(np.percentile(boot, 97.5))],
        }

    result: dict[str, Any] = {"baseline": baseline, "candidate": candidate, "sets": {}}
    for name, s in sets.items():
        correct_b = np.stack([s["correct"][m] for m in baseline]).astype(float)
        correct_c = np.stack([s["correct"][m] for m in candidate]).astype(float)
        entry = figures(correct_b, correct_c)
        truth = np.array(s["truth"])
        entry["per_class_mean_sensitivity"] = {
            label: [float(correct_b[:, truth == label].mean()), float(correct_c[:, truth == label].mean())] for label in sorted(set(s["truth"]))
        }
        result["sets"][name] = entry
    result["pooled"] = figures(
        np.concatenate([np.stack([s["correct"][m] for m in baseline]) for s in sets.values()], axis=1).astype(float),
        np.concatenate([np.stack([s["correct"][m] for m in candidate]) for s in sets.values()], axis=1).astype(float),
    )
    return result


def render_groups(groups: dict[str, Any]) -> list[str]:
    """The Markdown lines of :func:`compare_groups`."""
    lines = [
        "",
        f"Mean over runs: the recipe ({', '.join(groups['baseline'])}) against the candidate ({', '.join(groups['candidate'])}); "
        "difference of means (candidate - recipe, points) with a paired bootstrap 95 % interval over scans:",
        "",
        "| set | n | recipe, mean accuracy | candidate, mean accuracy | difference of means, points (95 % CI) |",
        "|---|---|---|---|---|",
    ]
    for name, entry in [*groups["sets"].items(), ("pooled", groups["pooled"])]:
        low, high = entry["difference_ci95_points"]
        lines.append(
            f"| {name} | {entry['n']} | {100 * entry['baseline_mean_accuracy']:.2f} % | {100 * entry['candidate_mean_accuracy']:.2f} % | "
            f"{entry['difference_points']:+.2f} ({low:+.2f} to {high:+.2f}) |"
        )
    lines += ["", "Mean sensitivity per class over the runs (recipe -> candidate, %):", ""]
    for name, entry in groups["sets"].items():
        lines.append(
            f"- {name}: " + ", ".join(f"{label} {100 * b:.1f} -> {100 * c:.1f}" for label, (b, c) in entry["per_class_mean_sensitivity"].items())
        )
    return lines


def render(
    summary: dict[str, Any], ranges: dict[str, Any], runs: list[str], command: str, commands: list[str], groups: dict[str, Any] | None = None
) -> str:
    """The Markdown report (with :func:`render_groups` when candidates were compared)."""
    reference = summary["reference"]
    lines = [
        "# Spread between training runs of one recipe, on fresh simulated sets",
        "",
        f"Command: `{command}` (commit {common.git_commit()}). Reference `{reference}`; runs of its recipe: {', '.join(runs)}. "
        "Accuracy is the network's arg-max with Wilson 95 % intervals; differences are paired (model - reference, points) with "
        "normal-approximation 95 % intervals, as the ship rule computes them.",
        "",
        "| model | " + " | ".join(summary["models"][reference]["sets"]) + " | pooled difference, points (95 % CI) |",
        "|---|" + "---|" * (len(summary["models"][reference]["sets"]) + 1),
    ]
    for model, entry in summary["models"].items():
        cells = []
        for figures in entry["sets"].values():
            low, high = figures["ci95"]
            cell = f"{100 * figures['accuracy']:.1f} % ({100 * low:.1f}-{100 * high:.1f})"
            if "difference_points" in figures:
                cell += f"; {figures['difference_points']:+.2f}"
            cells.append(cell)
        pooled = entry.get("pooled")
        last = (
            "reference"
            if pooled is None
            else f"{pooled['difference_points']:+.2f} ({pooled['difference_ci95_points'][0]:+.2f} to {pooled['difference_ci95_points'][1]:+.2f})"
        )
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {last} |")
    lines += ["", "Sensitivity per class (correct / n):", ""]
    for name in summary["models"][reference]["sets"]:
        per_model = "; ".join(
            f"{model}: " + ", ".join(f"{label} {k}/{n}" for label, (k, n) in entry["sets"][name]["per_class"].items())
            for model, entry in summary["models"].items()
        )
        lines.append(f"- {name}: {per_model}")
    lines += ["", f"Spread over the runs of the recipe ({', '.join(runs)}), lowest to highest, %:", ""]
    for name, figures in ranges.items():
        lines.append(f"- {name}: " + ", ".join(f"{key} {low:.1f}-{high:.1f}" for key, (low, high) in figures.items()))
    if groups is not None:
        lines += render_groups(groups)
    lines += ["", "Data:", "", "```", *commands, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="uptake4", help="the shipped bundle (its recipe's seed 0); default uptake4")
    parser.add_argument("--train-seeds", default="1,2", help="seeds to train the recipe with, comma-separated (default 1,2)")
    parser.add_argument("--runs", type=Path, default=None, help="the runs' folder (default DATA/uptake4-seed-runs)")
    parser.add_argument("--train-only", action="store_true", help="train the runs and stop (a candidate's runs, in its worktree)")
    parser.add_argument("--candidate", action="append", default=[], help="a candidate bundle, one run of it; repeatable")
    parser.add_argument("--seeds", default="1603,1604,1602", help="fresh sets' seeds: randomised DICOM, exports, centre b (default 1603,1604,1602)")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="where training and fresh sets are simulated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/training_run_spread"), help="where the evaluations are written")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/training_run_spread")
    parser.add_argument("--workers", type=int, default=2, help="training runs side by side (one thread each)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the evaluations")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) != len(SETS):
        parser.error(f"--seeds needs {len(SETS)} seeds (randomised DICOM, exports, centre b), not {len(seeds)}")
    train_seeds = [int(s) for s in args.train_seeds.split(",") if s.strip()]
    if not train_seeds:
        parser.error("--train-seeds needs at least one seed")
    for bundle in [args.reference, *args.candidate]:
        if (reason := missing_bundle_folder(bundle)) is not None:
            parser.error(reason)
    runs = train_runs(args.data, args.runs or args.data / "uptake4-seed-runs", train_seeds, args.workers)
    if args.train_only:
        print("trained: " + ", ".join(str(folder) for folder in runs.values()))
        return 0
    reference = "seed 0 (shipped)"
    candidates = {f"candidate {k} ({Path(bundle).name})": bundle for k, bundle in enumerate(args.candidate)}
    models = {reference: args.reference, **{name: str(folder) for name, folder in runs.items()}, **candidates}
    sets = evaluate_models(models, seeds, args.data, args.work, args.threads)
    summary = summarise(sets, reference)
    recipe_runs = [reference, *runs]
    ranges = spread(summary, recipe_runs)
    groups = compare_groups(sets, list(runs), list(candidates)) if candidates else None  # the runs trained here, as the candidate's were
    command = "python benchmarks/training_run_spread.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"summary": summary, "spread": ranges, "groups": groups, "bundles": models}
    (args.out / "training_run_spread.json").write_text(json.dumps(result, indent=2) + "\n")
    text = render(summary, ranges, recipe_runs, command.strip(), [s["command"] for s in sets.values()], groups)
    (args.out / "training_run_spread.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
