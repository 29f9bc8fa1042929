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
   ``data/uptake4-training/`` so that only configs/, models/, docs/ and LICENSE are shipped
   (with an ensemble recipe, also ``members/``: each seed's own bundle, whose weights the
   ensemble's ``models/model.pt`` already holds);
5. ``scintipipe gate fit`` refits the input gate's learned score and the temperature for
   the new weights (:func:`gate_fit_command`: the training sets, the held-out DICOM and
   export sets and the external set, as the shipped ``configs/gate.json`` records), which
   writes ``models/ood.pt``, ``configs/gate.json`` and the card's gate section;
6. ``scintipipe evaluate`` on every test set into ``benchmarks/results/uptake4_<set>``;
7. the model card ``bundles/uptake4/docs/README.md``: the training card written by
   ``scintipipe train`` (command, data hash, seed, versions) plus the evaluations in seed
   002's Table 2 layout next to the paper's InceptionV3 figures and the gate section; then
   rerun ``python benchmarks/real_images.py`` to add the real-image table and
   ``python benchmarks/second_simulator.py`` (and ``--format png``) for the second-simulator section,
   and ``python benchmarks/pattern_probes.py`` for the controlled-variant section.

``--skip-train`` re-evaluates and rewrites the card only (the gate is not refitted).

The real images in ``../shared/reference-scans`` are never used here: not for training,
not for choosing epochs or thresholds.

Threads: torch uses ``--threads`` (default 1): on the shared 2-core machine two threads
trained up to 15x slower than one because of contention.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the steps both ship scripts take
from _common import ROOT, pct

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


def side_by_side(internal: dict, external: dict) -> str:
    """Seed 002's Table 2 layout: rows metric x dataset, columns classes; ours | paper's."""
    from scintipipe.evaluation import METRIC_NAMES

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
    parser.add_argument("--changelog", default="", help="what changed, for the new version's changelog entry (default: a generic line)")
    args = parser.parse_args(argv)

    data = ROOT / "data"
    train_cmds, tests = common.simulate_sets(data, TRAIN_SETS, TEST_SETS, args.threads, "uptake4")
    labels_csv = data / "uptake4-train-labels.csv"
    n_train = common.combined_labels([data / name for name, *_ in TRAIN_SETS], data, labels_csv)
    description = (
        f"{n_train} simulated scans from the randomised centre (a new camera, count level, matrix, collimator and framing per scan; balanced classes), {sum(n for _, n, _, _, extra in TRAIN_SETS if '--display-exports' in extra)} of them as display exports: "
        + "; ".join(" ".join(c) for c in train_cmds)
    )
    out = args.out
    train_cmd = common.train_command("uptake4", "src/scintipipe/recipes/uptake4.json", labels_csv, out, description, args.threads, args.epochs)
    if not args.skip_train:
        old = common.retrain(out, train_cmd, args.threads, data / "uptake4-training", ("checkpoint.pt", "logs", "members"), changelog=args.changelog)
        (out / ".gitignore").write_text("checkpoint.pt\nlogs/\nmembers/\ntrain_errors.csv\n")  # in case training is rerun here
        bundle = "uptake4" if out.resolve() == (ROOT / "bundles/uptake4").resolve() else str(out.relative_to(ROOT))
        common.refit_gate(bundle, old, data, TRAIN_SETS, TEST_SETS, "uptake4", args.threads)
    reports = common.evaluate_sets(out, tests, "benchmarks/results/uptake4_{key}", args.threads)
    write_card(out, reports, train_cmd, tests)
    common.record_eval_metrics(out, reports, tests)
    print(targets_line(reports["external"]))


def write_card(out: Path, reports: dict, train_cmd: list[str], tests: dict) -> None:
    """Model card: results at a glance, the paper's table layout, intervals, how it was made."""
    from scintipipe.evaluation import format_table

    internal, external = reports["internal"], reports["external"]
    body = [
        "> **NOT FOR CLINICAL USE. Trained and validated on simulated scans only** (scintipipe's physics-based uptake4 phantom, not patient data). "
        "The simulated figures below say how well the model learned the simulated patterns; the real-image table further down is the only "
        "check on real scans, and it has 6 scored images.",
        "",
        "## Results at a glance (simulated scans)",
        "",
        *common.glance_lines(reports, tests, LABELS),
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
    ]
    common.write_model_card(
        out,
        body,
        "Rebuild the whole bundle (simulation, training, the input gate, evaluations, this card) with one command: `python benchmarks/ship_uptake4.py`, "
        "then `python benchmarks/real_images.py` for the real-image table. "
        f"Training command: `{' '.join(shlex.quote(c) for c in train_cmd)}`. "
        "The training checkpoint and TensorBoard logs are kept out of the bundle (moved to `data/uptake4-training/`). "
        "Why ScintiNet and not the paper's InceptionV3: `benchmarks/results/uptake4_networks.md` (measured on the earlier simulator).",
    )


if __name__ == "__main__":
    sys.exit(main())
