"""Rebuild the disease plugin's shipped bundle from scratch: simulate, train, evaluate, write the card.

One command (about 30-45 min on a 2-core CPU)::

    python benchmarks/ship_disease.py

The same design as ``benchmarks/ship_uptake4.py``: training scans from the ``randomised``
centre (a new camera, count level, matrix, collimator and framing for every scan,
independent of the class), balanced, as DICOM counts and as display exports; test sets of
held-out randomised scans (DICOM and exports) and an external fixed camera (centre b).
The recipe is the plugin's ``disease_demo_cpu.json`` (ScintiNet, 96 x 96). After training,
``scintipipe gate fit`` refits the input gate's learned score and the temperature for the new
weights on the same folders as the shipped ``configs/gate.json`` records (the training sets;
held-out DICOM and exports; external centre b), keeping the old radionuclides; it writes
``models/ood.pt``, ``configs/gate.json`` and the card's gate section (not with
``--skip-train``). The real images in ``../shared/reference-scans`` are never used here;
``python benchmarks/real_images.py`` adds the real-image table to the card afterwards, and
``python benchmarks/second_simulator.py`` (and ``--format png``) the second-simulator section.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the steps both ship scripts take
from _common import ROOT

LABELS = ["graves", "subacute_thyroiditis", "thyroid_tumour", "normal"]
TRAIN_SETS = [
    ("dis-rand-train", 2000, 81, "randomised", ["--class-mix", "balanced"]),
    ("dis-rand-exports800", 800, 82, "randomised", ["--class-mix", "balanced", "--display-exports", "1"]),
]
TEST_SETS = {
    "internal": ("dis-rand-test400", 400, 303, "randomised", ["--class-mix", "balanced"], "held-out randomised-camera DICOM scans, balanced"),
    "exports": (
        "dis-rand-exports-test200",
        200,
        304,
        "randomised",
        ["--class-mix", "balanced", "--display-exports", "1"],
        "held-out randomised display exports (8-bit PNG/JPEG), balanced",
    ),
    "external": (
        "dis-b-ext200",
        200,
        202,
        "b",
        ["--class-mix", "balanced"],
        "centre b (128 x 128, 2.21 mm, ~300k counts, a fixed camera not in training), balanced",
    ),
}


def bundle_dir() -> Path:
    """The plugin's bundle folder in the source tree."""
    from scintipipe_disease import BUNDLE_DIR

    return Path(BUNDLE_DIR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (0 = the recipe's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="bundle folder (default: the plugin's shipped bundle)")
    parser.add_argument("--skip-train", action="store_true", help="only re-evaluate and rewrite the card")
    parser.add_argument("--changelog", default="", help="what changed, for the new version's changelog entry (default: a generic line)")
    args = parser.parse_args(argv)
    out = (args.out or bundle_dir()).resolve()
    from scintipipe_disease import RECIPES_DIR

    recipe = Path(RECIPES_DIR).resolve() / "disease_demo_cpu.json"

    data = ROOT / "data"
    train_cmds, tests = common.simulate_sets(data, TRAIN_SETS, TEST_SETS, args.threads, "disease")
    labels_csv = data / "disease-train-labels.csv"
    n_train = common.combined_labels([data / name for name, *_ in TRAIN_SETS], data, labels_csv)
    description = (
        f"{n_train} simulated scans from the randomised centre (balanced classes), {TRAIN_SETS[1][1]} of them as display exports: "
        + "; ".join(" ".join(c) for c in train_cmds)
    )
    train_cmd = common.train_command("disease", str(recipe.relative_to(ROOT)), labels_csv, out, description, args.threads, args.epochs)
    if not args.skip_train:
        old = common.retrain(
            out,
            train_cmd,
            args.threads,
            data / "disease-training",
            ("checkpoint.pt", "logs", "train_errors.csv"),
            clear=("configs", "models", "docs"),
            changelog=args.changelog,
        )
        bundle = "disease" if out == bundle_dir().resolve() else str(out.relative_to(ROOT))
        common.refit_gate(bundle, old, data, TRAIN_SETS, TEST_SETS, "disease", args.threads)
    reports = common.evaluate_sets(out, tests, "plugins/scintipipe-disease/docs/eval_{key}", args.threads)
    write_card(out, reports, train_cmd, tests)
    common.record_eval_metrics(out, reports, tests)


def write_card(out: Path, reports: dict, train_cmd: list[str], tests: dict) -> None:
    """Model card: warning, results with intervals, how it was made, then the training card."""
    from scintipipe.evaluation import format_table

    body = [
        "> **Demonstration model trained on simulated scans. Not for clinical use: it has not been validated on real patients.** "
        "The real-image table below is the only check on real scans, and it has 9 scored images.",
        "",
        "CPU demonstration bundle for seed 001's four classes (Graves' disease, subacute thyroiditis, thyroid tumour, normal): "
        "the project's compact ScintiNet CNN (0.16 M parameters, 96 x 96 neck crop on a 2.2 mm grid), not the paper's ResNet-34 "
        "(kept as recipes; see the plugin's `docs/results.md`, measured on the earlier simulator).",
        "",
        "## Results (simulated scans)",
        "",
        *common.glance_lines(reports, tests, LABELS),
        "",
        format_table({key.capitalize(): r for key, r in reports.items()}),
        "",
        "Class-specific attention maps (the paper's Grad-CAM heatmaps): `scintipipe run --bundle disease scans/ --out results/ --explain-class all`.",
        "",
    ]
    common.write_model_card(
        out,
        body,
        "`python benchmarks/ship_disease.py` (simulation, training, the input gate, evaluations, this card), then `python benchmarks/real_images.py`. "
        f"Training command: `{' '.join(shlex.quote(c) for c in train_cmd)}`.",
    )


if __name__ == "__main__":
    sys.exit(main())
