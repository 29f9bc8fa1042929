"""Seed 001's design on simulated scans, end to end (issue 7).

Runs the ``scintipipe`` commands a user would run, in order, and gathers their figures:

1. ``simulate``: 800 balanced centre-a scans (training, seed 1) and 200 balanced centre-b
   scans (the "external" second camera, seed 2).
2. ``cv``: five-fold stratified cross-validation of the recipes, retrained per fold with
   ``--cv-epochs`` epochs (the same folds for every recipe, so folds are paired).
3. ``pretrain`` (with ``--pretrain RECIPE``): the recipe's network trained on 1200 simulated
   uptake4 scans (another scintigraphy task), the stand-in for the paper's ImageNet
   pre-training, which cannot be downloaded here.
4. ``train``: each recipe trained once on the 800 scans (20 % validation split, best epoch);
   with ``--pretrain`` also ``RECIPE_uptake4init``, fine-tuned from the pre-trained weights
   (``scintipipe train --init-weights``).
5. ``external``: the shipped bundle and the trained ones on the 200 external scans, in one
   ``scintipipe evaluate --readers`` (accuracy with 95 % CI, per-class sensitivity, DeLong
   per class, McNemar), each compared with two synthetic "physicians" made from the truth
   (junior wrong on every 4th scan, senior on every 8th; a wrong call is the next label).
   There are no real reader calls for simulated scans; the readers show the mechanics only.

Each step's output lives under ``--work``; a step whose output exists is reused, so an
interrupted run continues and ``--steps summary`` rebuilds only the tables. Training uses
``--threads`` PyTorch threads (1 is often faster than 2 on a busy 2-core machine).

Usage (about 70 min on a 2-core CPU with the defaults):
    python benchmarks/disease_paper.py
    python benchmarks/disease_paper.py --recipes disease_demo_cpu disease_resnet34_cpu --steps cv summary
    python benchmarks/disease_paper.py --pretrain disease_resnet34_cpu   # adds transfer learning (about 25 min more)
    python benchmarks/disease_paper.py --pretrain disease_resnet34_cpu --finetune-lr 3e-4   # also fine-tune at a lower rate (as reported)
    python benchmarks/disease_paper.py --n-train 80 --n-external 40 --cv-epochs 1 --work /tmp/dp-small   # smoke run
    python benchmarks/disease_paper.py --executor-args '--executor dask --workers 2'   # the CV grid as jobs (docs/scale_out.md)

Writes ``benchmarks/results/disease_paper.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from scintipipe.training.recipe import load_recipe
from scintipipe_disease import BUNDLE_DIR
from scintipipe_disease import RECIPES_DIR as RECIPES
from scintipipe_disease.simulator import LABELS

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["simulate", "cv", "pretrain", "train", "external", "summary"]
DEFAULT_RECIPES = ["disease_demo_cpu", "disease_resnet34_cpu", "disease_alexnet_cpu", "disease_shufflenet_cpu", "disease_mobilenet_cpu"]
DEFAULT_CV = ["disease_demo_cpu", "disease_resnet34_cpu"]
PAPER = {"internal": 0.944, "external": 0.931, "senior_external": 0.868, "comparators_above": 0.85}


def scintipipe(*args: str) -> float:
    """Run one ``scintipipe`` command (output streamed); return its wall seconds."""
    command = [sys.executable, "-m", "scintipipe", *args]
    print("$ scintipipe " + " ".join(args), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return round(time.perf_counter() - start, 1)


def simulate(folder: Path, n: int, seed: int, center: str, task: str = "disease") -> None:
    """Simulate ``n`` balanced scans of ``task`` unless ``folder`` has them already."""
    if not (folder / "labels.csv").is_file():
        scintipipe(
            "simulate", "--task", task, "--n", str(n), "--seed", str(seed), "--center", center, "--class-mix", "balanced", "--out", str(folder)
        )


def finetuned_name(recipe: str, lr: float | None) -> str:
    """Bundle name of ``recipe`` fine-tuned from uptake4 weights (with a non-default learning rate)."""
    return f"{recipe}_uptake4init" + ("" if lr is None else f"_lr{lr:g}")


def evaluated(folder: Path, bundles: list[str]) -> bool:
    """Whether ``folder/evaluation.json`` already covers every bundle."""
    path = folder / "evaluation.json"
    return path.is_file() and set(json.loads(path.read_text())["models"]) >= {Path(b).name for b in bundles}


def make_readers(labels_csv: Path, labels: list[str], out: Path) -> None:
    """Synthetic junior (wrong on every 4th scan) and senior (every 8th) reader calls."""
    with labels_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "reader", "label"])
        for i, row in enumerate(rows):
            wrong = labels[(labels.index(row["label"]) + 1) % len(labels)]
            writer.writerow([row["file"], "junior", wrong if i % 4 == 3 else row["label"]])
            writer.writerow([row["file"], "senior", wrong if i % 8 == 7 else row["label"]])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "data/disease-paper", help="data, bundles and evaluations (reused when present)")
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES, help="recipes to train and test externally")
    parser.add_argument("--cv-recipes", nargs="+", default=DEFAULT_CV, help="recipes to cross-validate")
    parser.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS)
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--n-external", type=int, default=200)
    parser.add_argument("--cv-epochs", type=int, default=12)
    parser.add_argument("--epochs", type=int, help="override the recipes' epochs for the train step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--pretrain", metavar="RECIPE", help="also pre-train RECIPE's network on simulated uptake4 scans and fine-tune it (transfer learning)"
    )
    parser.add_argument("--pretrain-n", type=int, default=1200)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument(
        "--finetune-lr",
        type=float,
        nargs="+",
        default=[],
        help="more fine-tuning learning rates besides the recipe's own (RECIPE_uptake4init); each gives RECIPE_uptake4init_lrX",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/disease_paper")
    parser.add_argument(
        "--executor-args",
        default="",
        metavar="ARGS",
        help="passed to the cross-validation's scintipipe evaluate, which runs each fold x recipe as a job "
        "(e.g. '--executor dask --workers 2' or '--executor slurm --slurm-config slurm.toml'; docs/scale_out.md)",
    )
    args = parser.parse_args(argv)
    unknown = sorted({*args.recipes, *args.cv_recipes, *([args.pretrain] if args.pretrain else [])} - {p.stem for p in RECIPES.glob("*.json")})
    if unknown:
        parser.error(f"unknown recipes {unknown}; the disease plugin ships {sorted(p.stem for p in RECIPES.glob('*.json'))}")

    work = args.work.resolve()
    train, ext = work / "train", work / "external-data"
    timings_file = work / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    threads = ["--threads", str(args.threads), "--no-progress"]
    labels = list(LABELS)

    def train_disease(name: str, recipe: Path, *init: str) -> None:
        """``scintipipe train --bundle disease`` with ``recipe`` (and ``init`` arguments) into ``bundles/NAME``, timed."""
        epochs = ["--epochs", str(args.epochs)] if args.epochs else []
        timings[f"train:{name}"] = scintipipe(
            "train",
            "--bundle",
            "disease",
            "--recipe",
            str(recipe),
            "--labels",
            str(train / "labels.csv"),
            *init,
            "--data-description",
            f"{args.n_train} simulated centre-a scans",
            *epochs,
            *threads,
            "--out",
            str(work / "bundles" / name),
        )
        timings_file.write_text(json.dumps(timings, indent=2))

    if "simulate" in args.steps:
        simulate(train, args.n_train, 1, "a")
        simulate(ext, args.n_external, 2, "b")
    if "cv" in args.steps and not (work / "cv/experiment.json").is_file():
        recipe_args = [a for name in args.cv_recipes for a in ("--recipe", str(RECIPES / f"{name}.json"))]
        timings["cv"] = scintipipe(
            "evaluate",
            "--bundle",
            "disease",
            *recipe_args,
            "--labels",
            str(train / "labels.csv"),
            "--cv",
            "5",
            "--epochs",
            str(args.cv_epochs),
            *threads,
            *shlex.split(args.executor_args),
            "--out",
            str(work / "cv"),
            str(train),
        )
        timings_file.write_text(json.dumps(timings, indent=2))
    pretrained = work / "bundles" / f"uptake4-{args.pretrain}" / "models/model.pt" if args.pretrain else None
    if pretrained and "pretrain" in args.steps and not pretrained.is_file():
        data = work / "pretrain-data"
        simulate(data, args.pretrain_n, 3, "a", task="uptake4")
        recipe = json.loads((RECIPES / f"{args.pretrain}.json").read_text())
        recipe.update(
            name=f"uptake4-{args.pretrain}",
            task="uptake4",
            labels=load_recipe("uptake4")["labels"],
            epochs=args.pretrain_epochs,
            description=f"Pre-training of {args.pretrain}'s network on simulated uptake4 scans, for transfer learning to disease.",
        )
        (work / "pretrain-recipe.json").write_text(json.dumps(recipe, indent=2))
        timings[f"pretrain:{args.pretrain}"] = scintipipe(
            "train",
            "--bundle",
            "uptake4",
            "--recipe",
            str(work / "pretrain-recipe.json"),
            "--labels",
            str(data / "labels.csv"),
            "--data-description",
            f"{args.pretrain_n} simulated uptake4 centre-a scans",
            *threads,
            "--out",
            str(pretrained.parents[1]),
        )
        timings_file.write_text(json.dumps(timings, indent=2))
    if "train" in args.steps:
        for lr in [None, *args.finetune_lr] if pretrained and pretrained.is_file() else []:
            name = finetuned_name(args.pretrain, lr)
            if (work / "bundles" / name / "models/model.pt").is_file():
                continue
            recipe = json.loads((RECIPES / f"{args.pretrain}.json").read_text())
            if lr is not None:
                recipe["optimizer"]["lr"] = lr
            (work / f"finetune-{name}.json").write_text(json.dumps(recipe, indent=2))
            train_disease(name, work / f"finetune-{name}.json", "--init-weights", str(pretrained))
        for name in args.recipes:
            if name == "disease_demo_cpu":
                continue  # the shipped bundle is this recipe, trained by the same command (model card)
            if not (work / "bundles" / name / "models/model.pt").is_file():
                train_disease(name, RECIPES / f"{name}.json")
    names = [n for n in args.recipes if n != "disease_demo_cpu"] + (
        [finetuned_name(args.pretrain, lr) for lr in [None, *args.finetune_lr]] if args.pretrain else []
    )
    bundles = ["disease"] + [str(work / "bundles" / n) for n in names if (work / "bundles" / n / "models/model.pt").is_file()]
    if "external" in args.steps and not evaluated(work / "external", bundles):
        make_readers(ext / "labels.csv", labels, work / "readers.csv")
        bundle_args = [a for b in bundles for a in ("--bundle", b)]
        scintipipe(
            "evaluate",
            *bundle_args,
            "--labels",
            str(ext / "labels.csv"),
            "--readers",
            str(work / "readers.csv"),
            "--no-progress",
            "--out",
            str(work / "external"),
            str(ext),
        )
    results = gather(work, labels, timings)
    results["command"] = " ".join(["python benchmarks/disease_paper.py", *rerun_args(argv if argv is not None else sys.argv[1:])])
    write(results, args.out)
    return results


def rerun_args(argv: list[str]) -> list[str]:
    """The command line without ``--steps ...`` (a rerun makes every step)."""
    kept, skipping = [], False
    for arg in argv:
        if arg == "--steps":
            skipping = True
        elif skipping and not arg.startswith("--"):
            continue
        else:
            skipping = False
            kept.append(arg)
    return kept


def gather(work: Path, labels: list[str], timings: dict) -> dict:
    """Collect the figures of every finished step into one dictionary."""
    results: dict = {"labels": labels, "paper": PAPER, "timings_s": timings, "cv": None, "external": {}, "readers": None}
    cv_file = work / "cv/experiment.json"
    if cv_file.is_file():
        cv = json.loads(cv_file.read_text())
        results["cv"] = {"summary": cv["summary"], "mann_whitney": cv["mann_whitney"], "splits": cv["splits"]}
    ext_file = work / "external/evaluation.json"
    if ext_file.is_file():
        ev = json.loads(ext_file.read_text())
        for name, model in ev["models"].items():
            results["external"][name] = {
                "n": model["n"],
                "accuracy": model["overall"]["accuracy"],
                "sensitivity": {c: model["per_class"][c]["sensitivity"]["value"] for c in labels},
                "auc": {c: model["per_class"][c]["auc"]["value"] for c in labels},
                **bundle_facts(name, work),
            }
        results["comparisons"] = [
            {
                "a": c["model_a"],
                "b": c["model_b"],
                "mcnemar_p": c["mcnemar"]["p_value"],
                "delong_p": {k: v["p_value"] for k, v in c["delong"].items()},
            }
            for c in ev.get("comparisons", [])
        ]
    readers = {f.parent.name: json.loads(f.read_text()) for f in sorted((work / "external").glob("*/readers.json"))}
    results["readers"] = readers or None
    return results


def bundle_facts(name: str, work: Path) -> dict:
    """Parameters, weights size and best validation accuracy of a bundle by name."""
    import torch

    folder = BUNDLE_DIR if name == "disease" else work / "bundles" / name
    state = torch.load(folder / "models/model.pt", map_location="cpu", weights_only=True)
    meta = json.loads((folder / "configs/metadata.json").read_text())
    recipe = json.loads((folder / "configs/recipe.json").read_text())
    return {
        "params": sum(t.numel() for k, t in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))),
        "weights_mb": round((folder / "models/model.pt").stat().st_size / 1e6, 2),
        "validation_accuracy": meta["eval_metrics"]["validation"]["accuracy"]["value"],
        "epochs": recipe["epochs"],
        "network": recipe["network"].get("name", recipe["network"]["_target_"].rsplit(".", 1)[-1]),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def write(results: dict, out: Path) -> None:
    """Write the JSON and a Markdown summary next to each other."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    labels = results["labels"]
    lines = [
        "# disease: seed 001's design on simulated scans",
        "",
        f"Rerun: `{results['command']}` (simulated scans; see the script's docstring).",
        "",
    ]
    if results["cv"]:
        lines += [
            f"## Five-fold cross-validation ({results['cv']['splits']} folds, same folds for every recipe)",
            "",
            "| recipe | overall accuracy % (mean ± SD) | per fold | macro sensitivity % | macro specificity % | macro AUC |",
            "|---|---|---|---|---|---|",
        ]
        for name, s in results["cv"]["summary"].items():
            acc = s["overall_accuracy"]
            folds = ", ".join(_pct(v) for v in acc["values"])
            lines.append(
                f"| {name} | {_pct(acc['mean'])} ± {_pct(acc['sd'])} | {folds} | {_pct(s['sensitivity']['mean'])} ± {_pct(s['sensitivity']['sd'])} "
                f"| {_pct(s['specificity']['mean'])} ± {_pct(s['specificity']['sd'])} | {s['auc']['mean']:.3f} ± {s['auc']['sd']:.3f} |"
            )
        for pair, tests in results["cv"]["mann_whitney"].items():
            p = tests.get("overall_accuracy", {}).get("p_value") if isinstance(tests, dict) else None
            if p is not None:
                lines.append(f"\nMann-Whitney U on per-fold overall accuracy, {pair}: p = {p:.3g}")
        lines.append(f"\nPaper (real scans, improved ResNet-34): internal accuracy {PAPER['internal']}.")
    if results["external"]:
        lines += [
            "",
            "## External set (second simulated camera)",
            "",
            "| bundle | network | params M | weights MB | epochs | validation acc. % | external acc. % (95 % CI) | "
            + " | ".join(f"{c} sens. %" for c in labels)
            + " |",
            "|---|---|---|---|---|---|---|" + "---|" * len(labels),
        ]
        for name, r in results["external"].items():
            a = r["accuracy"]
            sens = " | ".join(_pct(r["sensitivity"][c]) for c in labels)
            lines.append(
                f"| {Path(name).name} | {r['network']} | {r['params'] / 1e6:.2f} | {r['weights_mb']:.2f} | {r['epochs']} | {_pct(r['validation_accuracy'])} "
                f"| {_pct(a['value'])} ({_pct(a['lower'])}-{_pct(a['upper'])}) | {sens} |"
            )
        lines.append(
            f"\nPaper (real scans): improved ResNet-34 external accuracy {PAPER['external']}; every comparator above {PAPER['comparators_above']}."
        )
        shipped = [c for c in results.get("comparisons", []) if c["a"] == "disease"]
        if shipped:
            lines += ["", "| shipped vs | McNemar p | " + " | ".join(f"DeLong p {c}" for c in labels) + " |", "|---|---|" + "---|" * len(labels)]
            lines += [
                f"| {Path(c['b']).name} | {c['mcnemar_p']:.3g} | " + " | ".join(f"{c['delong_p'][k]:.3g}" for k in labels) + " |" for c in shipped
            ]
    if results["readers"]:
        lines += [
            "",
            "## Readers (synthetic: made from the truth, mechanics only)",
            "",
            "| model | who | accuracy % (95 % CI) | macro sensitivity % | macro specificity % | McNemar p vs model |",
            "|---|---|---|---|---|---|",
        ]
        for model, comp in results["readers"].items():
            m = comp["model"]
            lines.append(
                f"| {model} | model | {_pct(m['accuracy']['value'])} ({_pct(m['accuracy']['lower'])}-{_pct(m['accuracy']['upper'])}) "
                f"| {_pct(m['sensitivity']['value'])} | {_pct(m['specificity']['value'])} | - |"
            )
            for reader, r in comp["readers"].items():
                lines.append(
                    f"| {model} | {reader} | {_pct(r['accuracy']['value'])} ({_pct(r['accuracy']['lower'])}-{_pct(r['accuracy']['upper'])}) "
                    f"| {_pct(r['sensitivity']['value'])} | {_pct(r['specificity']['value'])} | {r['mcnemar_vs_model']['p_value']:.3g} |"
                )
        kappas = next(iter(results["readers"].values())).get("kappa", [])  # between readers: the same for every model
        lines += [f"\nCohen's kappa {k['reader_a']} vs {k['reader_b']}: {k['kappa']:.3f} (n {k['n']})" for k in kappas]
        lines.append(
            f"\nPaper (real readers): senior physician {PAPER['senior_external']} vs model {PAPER['external']} on the external set, p < 0.001."
        )
    if results["timings_s"]:
        lines += ["", "Wall times (s): " + ", ".join(f"{k} {v}" for k, v in results["timings_s"].items())]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
