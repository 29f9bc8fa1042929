"""Quantitative baseline: a scikit-learn classifier on the segmenter's scale-free quantities,
against the shipped network, on an external simulated centre and on the real crops.

Run from the repository root::

    python benchmarks/quantitative_baseline.py                     # 600 train, 300 external
    python benchmarks/quantitative_baseline.py --n-train 200 --n-external 100 --no-docs
    python benchmarks/quantitative_baseline.py --train my/train --external my/test   # folders with labels.csv
    # the stand-in simulator's draws, pooled (their labels.csv has one column per task):
    python benchmarks/second_simulator.py --seed 17 --out /tmp/ss17 --simulate-only
    python benchmarks/second_simulator.py --seed 27 --out /tmp/ss27 --simulate-only
    python benchmarks/quantitative_baseline.py --external /tmp/ss17 --external /tmp/ss27 \
        --external-label-column uptake4 --no-docs --out /tmp/qb-standin

What it does:

1. Training data: ``scintipipe simulate --task TASK`` at centre ``a`` (and, when the
   simulator has it, half at centre ``randomised``) with a balanced class mix, or the
   folders given with ``--train`` (``labels.csv`` with ``file,label``). Simulated folders
   are cached under ``--work`` and reused when the same call was made before.
2. Features: every scan is loaded by the pipeline's own loaders (``load_scans`` hook) and
   the classical segmenter's regions are turned into scale-free features
   (:mod:`scintipipe.segment.features`). With ``--views mixed`` (default) every other
   training scan is featurised as an 8-bit display rendering without pixel spacing, so
   the baseline meets display exports in training.
3. Fit: standardised logistic regression and histogram gradient boosting; the better by
   stratified 5-fold cross-validation **on the training data only** is kept
   (:func:`scintipipe.training.quantitative.fit_baseline`).
4. Test sets, never used for fitting or choosing: the external centre (``b``, the task's
   external class mix) as DICOM counts and the same scans as 8-bit display PNGs, and the
   real crops of ``../shared/reference-scans`` that the README maps to the task's labels
   (validation only).
5. Compared: the shipped network (``scintipipe run --no-report --no-explain``, the same
   code users run), the baseline, and a late fusion (the unweighted mean of the two
   probability vectors; nothing tuned). Accuracy with Wilson 95 % intervals, balanced
   accuracy, per-class sensitivity, and an exact McNemar test against the network.

Outputs: ``benchmarks/results/quantitative_baseline.{md,json}`` and the section between
``<!-- quantitative-baseline:start/end -->`` in ``docs/real_images.md``. Nothing here
changes how ``scintipipe run`` classifies.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import real_images  # noqa: E402  (the same bundle runner and expected-label mapping)
from _common import SCINTIPIPE, git_commit, mcnemar_exact, score_predictions, simulate_args  # noqa: E402  (after the sys.path set-up)
from scintipipe.training.quantitative import fit_baseline, late_fusion, save_baseline  # noqa: E402  (after the sys.path set-up)

RESULTS = REPO / "benchmarks" / "results"
MARKER = "quantitative-baseline"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "scintipipe-quantitative"


def display_rendering(image: np.ndarray, percentile: float = 99.8) -> np.ndarray:
    """An 8-bit display of a count image: linear from zero to a high percentile (the
    simulator's preview window)."""
    image = np.asarray(image, dtype=np.float64)
    top = float(np.percentile(image, percentile)) or float(image.max()) or 1.0
    return (255 * np.clip(image / top, 0, 1)).astype(np.uint8)


def simulator_centres() -> list[str]:
    """Centre profiles the installed simulator knows."""
    from scintipipe.simulate.centers import CENTERS

    return sorted(CENTERS)


def simulator_fingerprint() -> str:
    """Short hash of the simulator's sources (core and plugins), so cached data sets made
    by an older simulator are never reused."""
    import hashlib

    import scintipipe.simulate

    digest = hashlib.sha256()
    roots = [Path(scintipipe.simulate.__file__).parent, *sorted((REPO / "plugins").glob("*/src/*"))]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def simulate(task: str, n: int, seed: int, center: str, out: Path, class_mix: str | None, threads: int = 1) -> Path:
    """Run ``scintipipe simulate`` into ``out`` unless the same call already filled it."""
    marker = out / "simulation.json"
    if marker.is_file() and (out / "labels.csv").is_file():
        meta = json.loads(marker.read_text())
        centre = meta.get("center", {})
        centre = centre.get("name") if isinstance(centre, dict) else centre
        if meta.get("n") == n and meta.get("seed") == seed and centre == center and meta.get("task") == task:
            return out
    command = [*SCINTIPIPE, *simulate_args(task, n, seed, center, out), "--overwrite", "--no-progress"]
    if class_mix:
        command += ["--class-mix", class_mix]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"scintipipe simulate failed ({' '.join(command[2:])}): {proc.stderr[-2000:]}")
    return out


def read_labels(folder: Path, column: str = "label") -> list[tuple[Path, str]]:
    """``(file, label)`` from ``folder/labels.csv``, the label from ``column``; rows whose
    label is empty (a case outside the task, such as the stand-in simulator's normal glands
    for uptake4) are left out.

    Raises:
        ValueError: ``labels.csv`` has no ``file`` or no ``column`` column.
    """
    with (folder / "labels.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", column} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{folder / 'labels.csv'} has no {', '.join(sorted(missing))} column (columns: {', '.join(reader.fieldnames or ())})")
        return [(folder / row["file"], row[column]) for row in reader if row[column]]


class Featuriser:
    """Load files with the pipeline's loaders and extract baseline features."""

    def __init__(self) -> None:
        from scintipipe.plugins import make_plugin_manager

        self.pm = make_plugin_manager()

    def scan(self, path: Path) -> dict[str, Any]:
        """The first view of ``path`` as the loaders give it."""
        from scintipipe.loading import load_views

        return load_views(self.pm, path)[0]

    def features(self, path: Path, view: str = "counts") -> dict[str, float]:
        """Features of ``path`` as loaded (``counts``) or of its 8-bit rendering
        without spacing (``display``)."""
        from scintipipe.training.quantitative import extract_features, scan_array

        scan = self.scan(path)
        if view == "display":
            image, _ = scan_array(scan)
            return extract_features(display_rendering(image).astype(np.float32))
        return extract_features(scan)


def write_display_copies(items: list[tuple[Path, str]], out: Path) -> list[tuple[Path, str]]:
    """8-bit PNG renderings of DICOM scans (no spacing, no counts), with their labels."""
    import pydicom
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    copies = []
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for index, (path, label) in enumerate(items):
            target = out / f"{index:05d}_{path.stem}.png"  # folders may repeat a stem
            image = pydicom.dcmread(path).pixel_array.astype(np.float64)
            Image.fromarray(display_rendering(image)).save(target)
            writer.writerow([target.name, label])
            copies.append((target, label))
    return copies


def network_probabilities(bundle: str, files: list[Path], labels: list[str], threads: int) -> np.ndarray:
    """The shipped network's probabilities through ``scintipipe run`` (nan rows for failures)."""
    rows, _ = real_images.run_bundle(bundle, files, threads)
    out = np.full((len(files), len(labels)), np.nan)
    for i, path in enumerate(files):
        row = rows.get(str(path.resolve()))
        if row is not None:
            out[i] = [float(row[f"prob_{label}"]) for label in labels]
    return out


def metrics(truth: list[tuple[str, ...]], probabilities: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy (Wilson 95 %), balanced accuracy and sensitivity per class.

    Args:
        truth: the accepted labels per case (several when either counts).
        probabilities: ``(n, len(labels))``; rows with ``nan`` count as wrong.
        labels: column order.
    """
    predicted = [labels[int(np.nanargmax(row))] if np.isfinite(row).all() else None for row in probabilities]
    scored = score_predictions(predicted, truth, labels)
    per_class = {label: {"n": entry["n"], "sensitivity": entry["sensitivity"]} for label, entry in scored["recall"].items()}
    balanced = float(np.mean([v["sensitivity"] for v in per_class.values()])) if per_class else None
    return {
        "n": scored["n"],
        "correct": scored["k"],
        "accuracy": scored["accuracy"],
        "wilson95": scored["wilson95"],
        "balanced_accuracy": balanced,
        "per_class": per_class,
        "predicted": predicted,
        "_correct": scored["correct"],
    }


def evaluate_set(
    name: str,
    description: str,
    items: list[tuple[Path, tuple[str, ...]]],
    featuriser: Featuriser,
    baseline: Any,
    bundle: str,
    labels: list[str],
    threads: int,
    log,
) -> dict[str, Any]:
    """Network, baseline and fusion on one labelled test set."""
    files = [path for path, _ in items]
    truth = [accepted for _, accepted in items]
    log(f"{name}: {len(files)} scans: network ...")
    net = network_probabilities(bundle, files, labels, threads)
    log(f"{name}: features ...")
    feats = [featuriser.features(path) for path in files]
    base = baseline.predict_proba(feats)
    fused = late_fusion(np.nan_to_num(net, nan=1.0 / len(labels)), base)
    out: dict[str, Any] = {"name": name, "description": description, "n": len(files), "models": {}}
    for model, probs in (("network", net), ("baseline", base), ("fusion", fused)):
        out["models"][model] = metrics(truth, probs, labels)
    reference = out["models"]["network"]["_correct"]
    for model in ("baseline", "fusion"):
        out["models"][model]["mcnemar_vs_network"] = mcnemar_exact(out["models"][model]["_correct"], reference)
    if len(files) <= 20:
        out["cases"] = [
            {
                "file": path.name,
                "expected": list(t),
                "network": out["models"]["network"]["predicted"][i],
                "baseline": out["models"]["baseline"]["predicted"][i],
                "fusion": out["models"]["fusion"]["predicted"][i],
                "p_baseline": dict(zip(labels, map(float, base[i]), strict=True)),
            }
            for i, (path, t) in enumerate(items)
        ]
    for model in out["models"].values():
        model.pop("_correct")
        if len(files) > 20:
            model.pop("predicted")
    return out


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def render(results: dict[str, Any]) -> str:
    """Markdown summary of the comparison."""
    b = results["baseline"]
    lines = [results["note"], ""] if results.get("note") else []
    lines += [
        f"Task `{results['task']}`; network = shipped bundle `{results['bundle']}`; baseline = `{b['chosen']}` on {len(b['feature_names'])} scale-free segmenter features "
        f"(chosen by {results['cv']}-fold CV on the training data only: "
        + ", ".join(f"{k} {v:.3f}" for k, v in b["cv_scores"].items())
        + f" {b['scoring']}); "
        "fusion = mean of the two probability vectors (not tuned). "
        f"Training data: {results['train']['description']} ({results['train']['n']} scans: "
        + ", ".join(f"{k} {v}" for k, v in b["n_train"].items())
        + f"; views {results['views']}). "
        f"{results['date']}, commit {results['commit']}, {results['seconds']:.0f} s.",
        "",
        "| test set (never used to fit or choose) | n | network | baseline | fusion | baseline vs network (McNemar p) |",
        "|---|---|---|---|---|---|",
    ]
    for test in results["tests"]:
        m = test["models"]
        cells = []
        for model in ("network", "baseline", "fusion"):
            r = m[model]
            lo, hi = r["wilson95"] or (None, None)
            cells.append(f"{pct(r['accuracy'])} % ({pct(lo)}-{pct(hi)}); bal. {pct(r['balanced_accuracy'])} %")
        mc = m["baseline"]["mcnemar_vs_network"]
        lines.append(
            f"| {test['description']} | {test['n']} | "
            + " | ".join(cells)
            + f" | {mc['p_value']:.3g} ({mc['only_first_correct']} vs {mc['only_second_correct']} discordant) |"
        )
    lines += ["", "Accuracy % (Wilson 95 % interval); bal. = balanced accuracy. Sensitivity per class (network / baseline / fusion):", ""]
    labels = results["labels"]
    lines += ["| test set | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for test in results["tests"]:
        m = test["models"]
        cells = []
        for label in labels:
            if label in m["network"]["per_class"]:
                n = m["network"]["per_class"][label]["n"]
                cells.append(
                    " / ".join(pct(m[model]["per_class"][label]["sensitivity"]) for model in ("network", "baseline", "fusion")) + f" (n {n})"
                )
            else:
                cells.append("-")
        lines.append(f"| {test['description']} | " + " | ".join(cells) + " |")
    for test in results["tests"]:
        if "cases" in test:
            lines += ["", f"Per image, {test['description']}:", "", "| image | expected | network | baseline | fusion |", "|---|---|---|---|---|"]
            for case in test["cases"]:
                lines.append(f"| {case['file']} | {' or '.join(case['expected'])} | {case['network']} | {case['baseline']} | {case['fusion']} |")
    lines += ["", "Rerun: `python benchmarks/quantitative_baseline.py` (sizes: `--n-train`, `--n-external`)."]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out: Path, docs: bool) -> str:
    """Write ``quantitative_baseline.{md,json}`` (and the docs section); return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    md = render(results)
    (out / "quantitative_baseline.md").write_text(f"# Quantitative baseline vs the shipped network\n\n{md}\n")
    (out / "quantitative_baseline.json").write_text(json.dumps(results, indent=1) + "\n")
    if docs:
        real_images.update_file(real_images.DOC, MARKER, md, title=real_images.DOC_TITLE)
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="uptake4", help="task to simulate and classify (uptake4 or disease)")
    parser.add_argument("--bundle", default=None, help="network bundle to compare with (default: the task's registered bundle)")
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-external", type=int, default=300)
    parser.add_argument("--train", type=Path, action="append", default=None, help="training folder with labels.csv (repeatable; default: simulate)")
    parser.add_argument(
        "--external",
        type=Path,
        action="append",
        default=None,
        help="external test folder with labels.csv (repeatable: the folders are pooled; default: simulate centre --external-center)",
    )
    parser.add_argument(
        "--external-label-column",
        default="label",
        help="labels.csv column holding the task's label in --external folders (the stand-in simulator's folders: the task's name)",
    )
    parser.add_argument(
        "--train-centers", nargs="+", default=None, help="simulated training centres (default: a, plus randomised when the simulator has it)"
    )
    parser.add_argument("--external-center", default="b")
    parser.add_argument("--train-mix", default="balanced", help="--class-mix of the simulated training set")
    parser.add_argument("--seed", type=int, default=4101, help="training-set seed (the external set uses --external-seed)")
    parser.add_argument("--external-seed", type=int, default=202)
    parser.add_argument("--views", choices=["mixed", "counts", "display"], default="mixed", help="how training scans are featurised")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--no-display-test", dest="display_test", action="store_false", help="skip the display-PNG copy of the external set")
    parser.add_argument("--reference", type=Path, default=real_images.DEFAULT_REFERENCE)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="cache folder for simulated data (a subfolder per simulator version)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--save-model", type=Path, default=None, help="also save the fitted baseline (joblib) here")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not touch docs/real_images.md")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--from-json", type=Path, default=None, help="rewrite the outputs from a quantitative_baseline.json of an earlier run (runs nothing)"
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        write_outputs(json.loads(args.from_json.read_text()), args.out, args.docs)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {message}", flush=True)

    from scintipipe.bundle import Bundle

    registered = real_images.registered_bundles()
    bundle_name = args.bundle or args.task
    bundle = registered[bundle_name] if bundle_name in registered else Bundle(bundle_name)
    labels = bundle.labels
    featuriser = Featuriser()
    fingerprint = simulator_fingerprint()

    # ---- training data ----------------------------------------------------------------
    if args.train:
        folders, description = args.train, "folders " + ", ".join(map(str, args.train))
    else:
        centres = args.train_centers or (["a", "randomised"] if "randomised" in simulator_centres() else ["a"])
        per = [args.n_train // len(centres) + (i < args.n_train % len(centres)) for i in range(len(centres))]
        folders = []
        for i, (centre, n) in enumerate(zip(centres, per, strict=True)):
            log(f"simulating {n} training scans at centre {centre} ...")
            folders.append(
                simulate(
                    args.task,
                    n,
                    args.seed + i,
                    centre,
                    args.work / fingerprint / f"{args.task}-train-{centre}-{n}-{args.seed + i}",
                    args.train_mix,
                    args.threads,
                )
            )
        description = (
            f"simulated `{args.task}`, centres "
            + " + ".join(f"{c} ({n}, seed {args.seed + i})" for i, (c, n) in enumerate(zip(centres, per, strict=True)))
            + f", class mix {args.train_mix}"
        )
    train_items = [item for folder in folders for item in read_labels(folder)]
    log(f"features of {len(train_items)} training scans ...")
    train_features, train_labels = [], []
    for i, (path, label) in enumerate(train_items):
        view = {"counts": "counts", "display": "display"}.get(args.views, "display" if i % 2 else "counts")
        train_features.append(featuriser.features(path, view))
        train_labels.append(label)
    log("fitting ...")
    baseline = fit_baseline(train_features, train_labels, label_order=labels, cv=args.cv, seed=args.seed)
    log(f"chosen {baseline.chosen}; CV {baseline.cv_scores}")
    if args.save_model:
        save_baseline(baseline, args.save_model)

    # ---- test sets --------------------------------------------------------------------
    def evaluate(name: str, description: str, items: list[tuple[Path, tuple[str, ...]]]) -> dict[str, Any]:
        return evaluate_set(name, description, items, featuriser, baseline, bundle_name, labels, args.threads, log)

    tests = []
    if args.external:
        ext_items = [item for folder in args.external for item in read_labels(folder, args.external_label_column)]
        ext_description = "folder" + ("s " if len(args.external) > 1 else " ") + " + ".join(map(str, args.external))
        display_folder = "-".join(folder.resolve().name for folder in args.external) + "-display"
    else:
        log(f"simulating {args.n_external} external scans at centre {args.external_center} ...")
        external = simulate(
            args.task,
            args.n_external,
            args.external_seed,
            args.external_center,
            args.work / fingerprint / f"{args.task}-external-{args.external_center}-{args.n_external}-{args.external_seed}",
            None,
            args.threads,
        )
        ext_description = f"simulated centre {args.external_center} (seed {args.external_seed}, task's external mix)"
        ext_items, display_folder = read_labels(external), f"{external.name}-display"
    tests.append(evaluate("external", f"{ext_description}, DICOM counts", [(p, (label,)) for p, label in ext_items]))
    if args.display_test and all(p.suffix.lower() == ".dcm" for p, _ in ext_items):
        copies = write_display_copies(ext_items, args.work / fingerprint / display_folder)
        tests.append(evaluate("external_display", f"{ext_description}, as 8-bit display PNGs", [(p, (label,)) for p, label in copies]))
    if args.reference.is_dir():
        images = [image for image in real_images.discover(args.reference) if image.expected(bundle.task)]
        if images:
            tests.append(
                evaluate(
                    "real",
                    f"real images in ../shared/reference-scans with a {bundle.task} label (validation only)",
                    [(image.path, image.expected(bundle.task)) for image in images],
                )
            )
    else:
        log(f"reference images not found at {args.reference}: real-image comparison skipped")

    results = {
        "task": args.task,
        "bundle": bundle_name,
        "labels": labels,
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "cv": args.cv,
        "views": args.views,
        "train": {"description": description, "n": len(train_items), "folders": [str(f) for f in folders]},
        "baseline": baseline.summary(),
        "tests": tests,
        "seconds": time.perf_counter() - start,
    }
    print(write_outputs(results, args.out, args.docs))
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
