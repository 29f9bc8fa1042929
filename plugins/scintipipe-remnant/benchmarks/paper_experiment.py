"""The remnant study's experiment in one command: ten stratified 3:1 splits, three networks.

For every split each recipe (ResNet-18, SqueezeNet 1.1, ShuffleNetV2) is trained on the
training part and tested on the held-out quarter by the core's
:func:`scintipipe.api.resampling_experiment` (mean ± SD per metric,
Mann-Whitney U between models across splits). This script adds what that function
leaves to the caller for a repeated-split design: each split's best checkpoint is read
back and scored on its test quarter, and the AUCs are compared with DeLong's test (95 %
confidence intervals) on every split's common test views, as the paper compared them on
its test set; the ROC figure pools the test predictions of all splits.

Usage (the scale the docs report; the paper's own settings are the defaults of the
recipes, i.e. omit --epochs/--input-size/--lr)::

    python plugins/scintipipe-remnant/benchmarks/paper_experiment.py \\
        --data studies/ --labels studies/labels.csv --out paper-experiment/ \\
        --splits 10 --test-size 0.25 --epochs 4 --input-size 32 --lr 1e-3

Writes ``experiment.json`` and ``summary.md`` (core), ``delong.json``, ``results.md``
(the table next to the paper's figures) and ``roc_comparison.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scintipipe.api import (
    Bundle,
    build_recipe_network,
    classify_labelled,
    delong_auc_ci,
    delong_test,
    load_recipe,
    make_plugin_manager,
    plot_roc_comparison,
    predict,
    read_labels,
    repeated_stratified_splits,
    resampling_experiment,
)
from scintipipe_remnant import RECIPES_DIR

MODELS = {"ResNet-18": "remnant_resnet18_paper", "SqueezeNet": "remnant_squeezenet_paper", "ShuffleNetV2": "remnant_shufflenet_paper"}
PAPER = {  # the remnant study, Table 4 and Figure 10 (ResNet-18); the paper gives AUCs only for the others
    "ResNet-18": {
        "accuracy": "96.69 ± 1.27",
        "sensitivity": "94.75 ± 1.53",
        "specificity": "99.6 ± 1.26",
        "precision": "99.96 ± 0.09",
        "f1": "97.55 ± 0.90",
        "auc": "0.988 (0.941-1.000)",
    },
    "SqueezeNet": {"auc": "0.898 (0.819-0.951), p = 0.0257 vs ResNet-18"},
    "ShuffleNetV2": {"auc": "0.885 (0.803-0.941), p = 0.0057 vs ResNet-18"},
}


def scaled_recipe(name: str, epochs: int | None, input_size: int | None, lr: float | None, clahe: bool = False) -> dict[str, Any]:
    """A shipped paper recipe with the CPU-scale overrides applied (and recorded)."""
    recipe = copy.deepcopy(load_recipe(RECIPES_DIR / f"{name}.json"))
    if clahe:
        recipe["scan_transforms"][0]["clahe"] = True
    if epochs:
        recipe["epochs"] = epochs
    if input_size:
        recipe["input_size"] = [input_size, input_size]
        for transform in recipe["scan_transforms"]:
            if transform["_target_"] == "Resized":
                transform["spatial_size"] = [input_size, input_size]
    if lr:
        recipe["optimizer"]["lr"] = lr
        recipe["schedule"] = "cosine"
    return recipe


def split_predictions(
    pm: Any, recipes: dict[str, dict], rows: list, out: Path, n_splits: int, test_size: float, seed: int
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Each split's best checkpoint, re-scored on its test views: ``{model: [(y, p_present)]}``."""
    labels = next(iter(recipes.values()))["labels"]
    first = next(iter(recipes))
    data = classify_labelled(pm, Bundle(out / first / "template"), rows, "cpu", False)  # same preprocessing for all
    file_of = [s.split("#")[0] for s in data.sources]
    y_files = np.array([labels.index(label) for _, label in rows])
    splits = list(repeated_stratified_splits(y_files, n_splits, test_size, seed))
    out_scores: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in recipes}
    for name, recipe in recipes.items():
        for k, (_, test_files) in enumerate(splits):
            test_set = {str(rows[j][0]) for j in test_files}
            test = data.subset([i for i, f in enumerate(file_of) if f in test_set])
            model = build_recipe_network(recipe)
            model.load_state_dict(torch.load(out / name / f"split{k}" / "checkpoint.pt", map_location="cpu", weights_only=False)["best_state"])
            probs = predict(model, test.inputs, "cpu").numpy()
            out_scores[name].append((test.targets.numpy(), probs[:, labels.index("present")]))
    return out_scores


def delong_tables(scores: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> dict[str, Any]:
    """Per model: AUC with 95 % CI per split; per comparison with ResNet-18: DeLong per split."""
    names = list(scores)
    result: dict[str, Any] = {"auc": {}, "tests": {}}
    for name in names:
        result["auc"][name] = [delong_auc_ci(y, p) for y, p in scores[name]]
    for other in names[1:]:
        result["tests"][f"{names[0]} vs {other}"] = [delong_test(y, p, scores[other][k][1]) for k, (y, p) in enumerate(scores[names[0]])]
    return result


def results_markdown(summary: dict, mann_whitney: dict, delong: dict, settings: dict) -> str:
    """The docs table: this run's mean ± SD, Mann-Whitney p, DeLong, and the paper's figures."""
    metrics = [
        ("overall_accuracy", "accuracy"),
        ("sensitivity", "sensitivity"),
        ("specificity", "specificity"),
        ("ppv", "precision"),
        ("f1", "f1"),
        ("auc", "auc"),
    ]

    def pct(s: dict, key: str) -> str:
        if s.get(key) is None or s[key].get("mean") is None:
            return "-"
        if key == "auc":
            return f"{s[key]['mean']:.3f} ± {s[key].get('sd') or 0:.3f}"
        return f"{100 * s[key]['mean']:.1f} ± {100 * (s[key].get('sd') or 0):.1f}"

    lines = [f"Settings: {json.dumps(settings)}", "", "| model | " + " | ".join(m for _, m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, s in summary.items():
        lines.append(f"| {name} (this run) | " + " | ".join(pct(s, key) for key, _ in metrics) + " |")
    for name, paper in PAPER.items():
        lines.append(f"| {name} (paper) | " + " | ".join(paper.get(m, "-") for _, m in metrics) + " |")
    lines += [
        "",
        "Mann-Whitney U across splits, p per metric:",
        "",
        "| comparison | " + " | ".join(m for _, m in metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for pair, tests in mann_whitney.items():
        lines.append(
            f"| {pair} | "
            + " | ".join("-" if tests.get(key) is None else f"{tests[key].get('p_value', float('nan')):.3g}" for key, _ in metrics)
            + " |"
        )
    lines += [
        "",
        "AUC (DeLong 95 % CI) per split, median over splits; DeLong test against ResNet-18 on each split's test views:",
        "",
        "| model | median AUC | its 95 % CI | splits with p < 0.05 vs ResNet-18 | median p |",
        "|---|---|---|---|---|",
    ]
    for name, per_split in delong["auc"].items():
        k = int(np.argsort([d["value"] for d in per_split])[len(per_split) // 2])
        tests = delong["tests"].get(f"{next(iter(delong['auc']))} vs {name}")
        sig = "-" if tests is None else f"{sum(t['p_value'] < 0.05 for t in tests)} of {len(tests)}"
        med_p = "-" if tests is None else f"{np.median([t['p_value'] for t in tests]):.3g}"
        lines.append(f"| {name} | {per_split[k]['value']:.3f} | {per_split[k]['lower']:.3f}-{per_split[k]['upper']:.3f} | {sig} | {med_p} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=None, help="override the paper's 80")
    parser.add_argument("--input-size", type=int, default=None, help="override the paper's 224")
    parser.add_argument("--lr", type=float, default=None, help="override the paper's 1e-5 (one-cycle schedule)")
    parser.add_argument("--clahe", action="store_true", help="CLAHE instead of the paper's global equalisation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pm = make_plugin_manager()
    recipes = {name: scaled_recipe(file, args.epochs, args.input_size, args.lr, args.clahe) for name, file in MODELS.items()}
    experiment = resampling_experiment(
        pm, recipes, args.labels, args.data, args.out, design="splits", n_splits=args.splits, test_size=args.test_size, seed=args.seed
    )
    rows = read_labels(args.labels, args.data, recipes["ResNet-18"]["labels"])
    scores = split_predictions(pm, recipes, rows, args.out, args.splits, args.test_size, args.seed)
    delong = delong_tables(scores)
    (args.out / "delong.json").write_text(json.dumps(delong, indent=2, default=float) + "\n")
    pooled_y = np.concatenate([y for y, _ in scores["ResNet-18"]])
    pooled = {name: np.stack([1 - np.concatenate([p for _, p in s]), np.concatenate([p for _, p in s])], 1) for name, s in scores.items()}
    plot_roc_comparison(pooled_y, pooled, ["absent", "present"], args.out / "roc_comparison.png", classes=["present"])
    settings = {
        "studies": len(rows),
        "splits": args.splits,
        "test_size": args.test_size,
        "epochs": recipes["ResNet-18"]["epochs"],
        "input_size": recipes["ResNet-18"]["input_size"],
        "lr": recipes["ResNet-18"]["optimizer"]["lr"],
        "clahe": args.clahe,
        "seed": args.seed,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    (args.out / "results.md").write_text(results_markdown(experiment["summary"], experiment["mann_whitney"], delong, settings))
    print((args.out / "results.md").read_text())


def rewrite_results(out: Path) -> None:
    """Redraw ``results.md`` from a finished run's ``experiment.json`` and ``delong.json``."""
    experiment = json.loads((out / "experiment.json").read_text())
    delong = json.loads((out / "delong.json").read_text())
    settings = json.loads((out / "results.md").read_text().splitlines()[0].removeprefix("Settings: "))
    (out / "results.md").write_text(results_markdown(experiment["summary"], experiment["mann_whitney"], delong, settings))


if __name__ == "__main__":
    main()
