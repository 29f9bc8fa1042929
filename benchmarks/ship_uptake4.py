"""Rebuild the shipped ``bundles/uptake4`` from scratch: simulate, train, evaluate, write the card.

One command (about 40-60 min on a 2-core CPU, most of it simulation and training)::

    python benchmarks/ship_uptake4.py

Steps (every one is a plain ``scintipipe`` command, printed as it runs):

1. simulate the training scans into ``data/`` (git-ignored; skipped when present), all from
   the ``randomised`` centre (a different camera, count level, matrix, collimator and
   framing for every scan, independent of the class) with a balanced class mix: DICOM
   counts, plus a second set written as display exports (8-bit PNG/JPEG with windowing,
   gamma, colour tables, inversion and burned-in annotation, ``--display-exports 1``);
2. simulate the test sets: held-out ``randomised`` scans (DICOM and display exports) and
   the external set (centre b, 128 x 128, 2.21 mm, ~300k counts, the paper's external mix
   120/49/13/120 of 302), a fixed camera never seen in training;
3. ``scintipipe train --bundle uptake4 --recipe src/scintipipe/recipes/uptake4.json`` on
   both training sets into ``bundles/uptake4`` (the old ``configs/gate.json``
   radionuclides are kept; its statistics and temperature belonged to the old weights);
4. ``checkpoint.pt`` and ``logs/`` (TensorBoard) are moved out of the bundle into
   ``data/uptake4-training/`` so that only configs/, models/, docs/ and LICENSE are shipped;
5. ``scintipipe gate fit`` refits the input gate's learned score and the temperature for
   the new weights (:func:`gate_fit_command`: the training sets, the held-out DICOM and
   export sets and the external set, as the shipped ``configs/gate.json`` records), which
   writes ``models/ood.pt``, ``configs/gate.json`` and the card's gate section;
6. ``scintipipe evaluate`` on every test set into ``benchmarks/results/uptake4_<set>``;
7. the model card ``bundles/uptake4/docs/README.md``: the training card written by
   ``scintipipe train`` (command, data hash, seed, versions) plus the evaluations in seed
   002's Table 2 layout next to the paper's InceptionV3 figures and the gate section; then
   rerun ``python benchmarks/real_images.py`` to add the real-image table.

``--skip-train`` re-evaluates and rewrites the card only (the gate is not refitted).

The real images in ``../shared/reference-scans`` are never used here: not for training,
not for choosing epochs or thresholds.

Threads: torch uses ``--threads`` (default 1): on the shared 2-core machine two threads
trained up to 15x slower than one because of contention.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]

#: seed 002 (Zhao et al. 2021), Table 2, InceptionV3: {metric: {dataset: [per class, label order]}}
PAPER_INCEPTION_V3 = {
    "accuracy": {"internal": [94.51, 99.68, 98.38, 92.89], "external": [89.74, 99.34, 98.68, 87.75]},
    "sensitivity": {"internal": [90.77, 99.56, 100.00, 81.48], "external": [90.00, 95.92, 76.92, 83.33]},
    "specificity": {"internal": [97.21, 99.75, 98.32, 95.30], "external": [89.56, 100.00, 99.65, 90.66]},
    "ppv": {"internal": [95.93, 99.56, 71.43, 78.57], "external": [85.04, 100.00, 90.91, 85.47]},
    "npv": {"internal": [93.57, 99.75, 100.00, 96.06], "external": [93.14, 99.22, 98.97, 89.19]},
    "f1": {"internal": [93.28, 99.56, 83.33, 80.00], "external": [87.45, 97.92, 83.33, 84.39]},
}
PAPER_OVERALL = {"internal": 92.73, "external": 87.75}
MARKER = "<!-- below: the card written by scintipipe train -->"
#: the gate section ``scintipipe gate fit`` writes (``<!-- gate:start -->``): placed before "How it was made"
GATE_MARKER = "gate"
#: the learned score used when the old bundle records none
DEFAULT_GATE_METHOD = "mahalanobis_blocks"
#: TEST_SETS keys the gate is fitted on as held-out in-distribution folders, and as external folders
GATE_HELD_OUT = ("internal", "exports")
GATE_EXTERNAL = ("external",)
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity (Recall)",
    "specificity": "Specificity",
    "ppv": "PPV (Precision)",
    "npv": "NPV",
    "f1": "F1 score",
    "auc": "ROC AUC",
}


def sh(cmd: list[str], threads: int) -> None:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def simulate_command(folder: Path, n: int, seed: int, center: str, extra: list[str] | None = None, task: str = "uptake4") -> list[str]:
    """The ``scintipipe simulate`` command that makes ``folder``."""
    return [
        "scintipipe",
        "simulate",
        "--task",
        task,
        "--n",
        str(n),
        "--seed",
        str(seed),
        "--center",
        center,
        *(extra or []),
        "--out",
        str(folder.relative_to(ROOT)),
        "--no-progress",
    ]


def simulate(folder: Path, n: int, seed: int, center: str, threads: int, extra: list[str] | None = None, task: str = "uptake4") -> list[str]:
    """Simulate a data set into ``folder`` unless it is already there; return the command."""
    cmd = simulate_command(folder, n, seed, center, extra, task)
    if not (folder / "labels.csv").is_file():
        sh(cmd, threads)
    return cmd


def combined_labels(folders: list[Path], base: Path, out_csv: Path) -> int:
    """Write one ``file,label`` CSV over several simulated folders, paths relative to ``base``."""
    import csv

    rows = []
    for folder in folders:
        with (folder / "labels.csv").open(newline="") as handle:
            rows += [((folder / row["file"]).relative_to(base).as_posix(), row["label"]) for row in csv.DictReader(handle)]
    with out_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows(rows)
    return len(rows)


def old_gate(out: Path) -> dict:
    """The bundle's current ``configs/gate.json`` (``{}`` when absent), read before the folder is cleared."""
    path = out / "configs/gate.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def seed_gate(out: Path, old: dict) -> None:
    """Write the ``configs/gate.json`` keys a retrained bundle keeps (the radionuclides) into the cleared ``out``.

    ``scintipipe train --bundle NAME`` keeps them from the bundle NAME registers; when that
    is ``out`` itself, this is where it finds them after the old bundle was removed.
    """
    from scintipipe.bundle_writer import INHERITED_GATE_KEYS

    kept = {key: old[key] for key in INHERITED_GATE_KEYS if old.get(key)}
    if kept:
        (out / "configs").mkdir(parents=True, exist_ok=True)
        (out / "configs/gate.json").write_text(json.dumps(kept, indent=2) + "\n")


def gate_fit_command(bundle: str, data: Path, train_sets: list, test_sets: dict, method: str, task: str, threads: int) -> list[str]:
    """The ``scintipipe gate fit`` command a reship runs after training.

    The folders are the shipped gate's (its ``configs/gate.json`` ``command``): every
    training set as ``--train``, the :data:`GATE_HELD_OUT` test sets as ``--held-out``
    and the :data:`GATE_EXTERNAL` ones as ``--external``; the simulate commands that make
    them are recorded (``--data-command``) for the card's reproduce block.

    Args:
        bundle: the bundle's registered name (or folder) as ``--bundle``.
        data: the data folder.
        train_sets: ``[(folder, n, seed, centre, extra), ...]`` (:data:`TRAIN_SETS`).
        test_sets: ``{key: (folder, n, seed, centre, extra, text)}`` (:data:`TEST_SETS`).
        method: the learned score.
        task: the simulator task.
        threads: ``--threads``.
    """

    def rel(folder):
        return str((data / folder).relative_to(ROOT))

    cmd = ["scintipipe", "gate", "fit", "--bundle", bundle]
    cmd += [x for name, *_ in train_sets for x in ("--train", rel(name))]
    cmd += [x for key in GATE_HELD_OUT for x in ("--held-out", rel(test_sets[key][0]))]
    cmd += [x for key in GATE_EXTERNAL for x in ("--external", rel(test_sets[key][0]))]
    cmd += ["--method", method]
    made = [simulate_command(data / name, n, seed, center, extra, task) for name, n, seed, center, extra in train_sets]
    made += [simulate_command(data / test_sets[key][0], *test_sets[key][1:5], task=task) for key in (*GATE_HELD_OUT, *GATE_EXTERNAL)]
    cmd += [x for c in made for x in ("--data-command", " ".join(c))]
    return cmd + ["--cache", "data/gate-cache", "--threads", str(threads), "--no-progress"]


def pct(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "-"
    return f"{100 * entry['value']:.2f}"


def side_by_side(internal: dict, external: dict) -> str:
    """Seed 002's Table 2 layout: rows metric x dataset, columns classes; ours | paper's."""
    head = (
        "| Metric | Dataset | "
        + " | ".join(f"{label.replace('_', ' ')} (%): ours / paper" for label in LABELS)
        + " | Overall accuracy (%): ours / paper |"
    )
    lines = [head, "|---|---|" + "---|" * (len(LABELS) + 1)]
    for metric, name in METRIC_NAMES.items():
        for dataset, report in (("Internal", internal), ("External", external)):
            cells = []
            for c, label in enumerate(LABELS):
                ours = report["per_class"][label].get(metric)
                value = f"{ours['value']:.3f}" if metric == "auc" and ours and ours.get("value") is not None else pct(ours)
                paper = PAPER_INCEPTION_V3.get(metric, {}).get(dataset.lower())
                cells.append(f"{value} / {paper[c]:.2f}" if paper else f"{value} / n.r.")
            overall = f"{pct(report['overall']['accuracy'])} / {PAPER_OVERALL[dataset.lower()]:.2f}" if metric == "accuracy" else ""
            lines.append(f"| {name} | {dataset} | " + " | ".join(cells) + f" | {overall} |")
    return "\n".join(lines)


def targets_line(external: dict) -> str:
    acc = external["overall"]["accuracy"]["value"]
    sens = {label: external["per_class"][label]["sensitivity"]["value"] for label in LABELS}
    met = acc >= 0.95 and all(v >= 0.90 for v in sens.values())
    worst = min(sens, key=sens.get)
    verdict = "**met**" if met else "**not met**"
    return (
        f"Targets on the external simulated centre (overall accuracy >= 95 %, every class sensitivity >= 90 %): {verdict} "
        f"(overall {100 * acc:.2f} %; lowest sensitivity {worst.replace('_', ' ')} {100 * sens[worst]:.2f} %; "
        f"focal increased has only {external['per_class']['focal_increased']['support']} external cases, so its 95 % CI is wide)."
    )


#: (folder, n, seed, centre, extra simulate arguments); balanced, class-independent domain randomisation
TRAIN_SETS = [
    ("u4-rand-train3000", 3000, 71, "randomised", ["--class-mix", "balanced"]),
    ("u4-rand-exports1200", 1200, 72, "randomised", ["--class-mix", "balanced", "--display-exports", "1"]),
]
#: evaluation name -> (folder, n, seed, centre, extra arguments, description)
TEST_SETS = {
    "internal": ("u4-rand-test400", 400, 303, "randomised", ["--class-mix", "balanced"], "held-out randomised-camera DICOM scans, balanced"),
    "exports": (
        "u4-rand-exports-test200",
        200,
        304,
        "randomised",
        ["--class-mix", "balanced", "--display-exports", "1"],
        "held-out randomised display exports (8-bit PNG/JPEG), balanced",
    ),
    "external": (
        "b-ext302",
        302,
        202,
        "b",
        [],
        "centre b (128 x 128, 2.21 mm, ~300k counts, a fixed camera not in training), the paper's external mix",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (0 = the recipe's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bundles/uptake4")
    parser.add_argument("--skip-train", action="store_true", help="only re-evaluate and rewrite the card")
    args = parser.parse_args(argv)

    data = ROOT / "data"
    train_cmds, train_dirs = [], []
    for name, n, seed, center, extra in TRAIN_SETS:
        train_dirs.append(data / name)
        train_cmds.append(simulate(data / name, n, seed, center, args.threads, extra))
    tests = {
        key: (data / folder, simulate(data / folder, n, seed, center, args.threads, extra), text)
        for key, (folder, n, seed, center, extra, text) in TEST_SETS.items()
    }
    labels_csv = data / "uptake4-train-labels.csv"
    n_train = combined_labels(train_dirs, data, labels_csv)
    description = (
        f"{n_train} simulated scans from the randomised centre (a new camera, count level, matrix, collimator and framing per scan; balanced classes), {TRAIN_SETS[1][1]} of them as display exports: "
        + "; ".join(" ".join(c) for c in train_cmds)
    )
    out = args.out
    train_cmd = [
        "scintipipe",
        "train",
        "--bundle",
        "uptake4",
        "--recipe",
        "src/scintipipe/recipes/uptake4.json",
        "--data",
        "data",
        "--labels",
        str(labels_csv.relative_to(ROOT)),
        "--out",
        str(out.relative_to(ROOT)),
        "--data-description",
        description,
        "--threads",
        str(args.threads),
        "--no-progress",
    ]
    if args.epochs:
        train_cmd += ["--epochs", str(args.epochs)]
    if not args.skip_train:
        old = old_gate(out)
        if out.exists():
            shutil.rmtree(out)
        seed_gate(out, old)
        sh(train_cmd, args.threads)
        keep = data / "uptake4-training"
        if keep.exists():
            shutil.rmtree(keep)
        keep.mkdir(parents=True)
        for name in ("checkpoint.pt", "logs"):
            if (out / name).exists():
                shutil.move(str(out / name), str(keep / name))
        (out / ".gitignore").write_text("checkpoint.pt\nlogs/\ntrain_errors.csv\n")  # in case training is rerun here
        bundle = "uptake4" if out.resolve() == (ROOT / "bundles/uptake4").resolve() else str(out.relative_to(ROOT))
        method = (old.get("ood") or {}).get("method", DEFAULT_GATE_METHOD)
        sh(gate_fit_command(bundle, data, TRAIN_SETS, TEST_SETS, method, "uptake4", args.threads), args.threads)
    reports = {}
    for key, (folder, _, _) in tests.items():
        dest = ROOT / f"benchmarks/results/uptake4_{key}"
        sh(
            [
                "scintipipe",
                "evaluate",
                "--bundle",
                str(out.relative_to(ROOT)),
                "--labels",
                str((folder / "labels.csv").relative_to(ROOT)),
                "--out",
                str(dest.relative_to(ROOT)),
                str(folder.relative_to(ROOT)),
                "--no-progress",
            ],
            args.threads,
        )
        reports[key] = json.loads((dest / "metrics.json").read_text())
        (dest / "predictions.csv").unlink(missing_ok=True)  # per-scan rows: regenerate, don't commit
    write_card(out, reports, train_cmd, tests)
    metadata_path = out / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata.setdefault("eval_metrics", {}).update(
        {key: {"accuracy": r["overall"]["accuracy"]["value"], "n": r["n"], "data": tests[key][2]} for key, r in reports.items()}
    )
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")
    print(targets_line(reports["external"]))


def split_card(card_path: Path) -> tuple[str, str]:
    """The card's title line and the training card ``scintipipe train`` wrote below :data:`MARKER`.

    The gate section (:func:`gate_section`) is left out of the training part: the ship
    scripts place it themselves.
    """
    from scintipipe.docs_markers import remove_marked

    title, _, rest = card_path.read_text().partition("\n")
    if MARKER in rest:  # a card a ship script wrote before (--skip-train): keep only the training part
        rest = rest.split(MARKER, 1)[1]
    return title, remove_marked(rest, GATE_MARKER)


def gate_section(card_path: Path) -> list[str]:
    """The card's generated gate section, with its markers, as card lines (``[]`` when there is none)."""
    from scintipipe.docs_markers import marked_block, marked_content

    content = marked_content(card_path.read_text(), GATE_MARKER) if card_path.is_file() else None
    return [marked_block(GATE_MARKER, content), ""] if content else []


def write_card_text(card_path: Path, parts: list[str], rest: str) -> None:
    """Write the card: ``parts`` (this script's sections), then :data:`MARKER` and the training card."""
    card_path.write_text("\n".join([*parts, "", MARKER, rest.lstrip("\n")]))


def glance_lines(reports: dict, tests: dict, labels: list[str]) -> list[str]:
    """One bullet per evaluated set: accuracy with its Wilson interval and per-class sensitivity."""
    return [
        f"- {key.capitalize()} ({tests[key][2]}, {r['n']} scans): overall accuracy **{pct(r['overall']['accuracy'])} %** "
        f"(95 % CI {100 * r['overall']['accuracy']['lower']:.1f}-{100 * r['overall']['accuracy']['upper']:.1f}); sensitivity "
        + ", ".join(f"{label.replace('_', ' ')} {pct(r['per_class'][label]['sensitivity'])} %" for label in labels)
        + "."
        for key, r in reports.items()
    ]


def write_card(out: Path, reports: dict, train_cmd: list[str], tests: dict) -> None:
    """Model card: results at a glance, the paper's table layout, intervals, how it was made."""
    from scintipipe.evaluation import format_table

    card_path = out / "docs/README.md"
    gate = gate_section(card_path)
    title, rest = split_card(card_path)
    internal, external = reports["internal"], reports["external"]
    glance = glance_lines(reports, tests, LABELS)
    parts = [
        title,
        "",
        "> **NOT FOR CLINICAL USE. Trained and validated on simulated scans only** (scintipipe's physics-based uptake4 phantom, not patient data). "
        "The simulated figures below say how well the model learned the simulated patterns; the real-image table further down is the only "
        "check on real scans, and it has 6 scored images.",
        "",
        "## Results at a glance (simulated scans)",
        "",
        *glance,
        f"- {targets_line(external)}",
        "",
        "## Held-out and external validation next to seed 002's InceptionV3 (Table 2 layout)",
        "",
        "Cells: this bundle / the paper's InceptionV3 (Zhao et al. 2021, Table 2; n.r. = not reported). "
        "The paper's figures are on real patients (619 internal, 302 external scans). Ours: 'Internal' is held-out randomised-camera "
        "scans (balanced), 'External' is centre b with the paper's external class mix.",
        "",
        side_by_side(internal, external),
        "",
        "### With 95 % confidence intervals (Wilson for proportions, DeLong for AUC)",
        "",
        format_table({key.capitalize(): r for key, r in reports.items()}),
        "",
        "Reproduce the evaluations:",
        "",
        "```",
        *(" ".join(cmd) for _, cmd, _ in tests.values()),
        *(
            f"scintipipe evaluate --bundle uptake4 --labels data/{folder.name}/labels.csv --out benchmarks/results/uptake4_{key} data/{folder.name}"
            for key, (folder, _, _) in tests.items()
        ),
        "```",
        "",
        *gate,
        "## How it was made",
        "",
        "Rebuild the whole bundle (simulation, training, the input gate, evaluations, this card) with one command: `python benchmarks/ship_uptake4.py`, "
        "then `python benchmarks/real_images.py` for the real-image table. "
        f"Training command: `{' '.join(shlex.quote(c) for c in train_cmd)}`. "
        "The training checkpoint and TensorBoard logs are kept out of the bundle (moved to `data/uptake4-training/`). "
        "Why ScintiNet and not the paper's InceptionV3: `benchmarks/results/uptake4_networks.md` (measured on the earlier simulator).",
    ]
    write_card_text(card_path, parts, rest)


if __name__ == "__main__":
    sys.exit(main())
