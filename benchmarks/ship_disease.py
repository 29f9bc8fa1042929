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
``python benchmarks/real_images.py`` adds the real-image table to the card afterwards.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ship_uptake4 import (
    DEFAULT_GATE_METHOD,
    ROOT,
    combined_labels,
    gate_fit_command,
    gate_section,
    glance_lines,
    old_gate,
    seed_gate,
    sh,
    simulate,
    split_card,
    write_card_text,
)

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
    args = parser.parse_args(argv)
    out = (args.out or bundle_dir()).resolve()
    from scintipipe_disease import RECIPES_DIR

    recipe = Path(RECIPES_DIR).resolve() / "disease_demo_cpu.json"

    data = ROOT / "data"
    train_cmds, train_dirs = [], []
    for name, n, seed, center, extra in TRAIN_SETS:
        train_dirs.append(data / name)
        train_cmds.append(simulate(data / name, n, seed, center, args.threads, extra, task="disease"))
    tests = {
        key: (data / folder, simulate(data / folder, n, seed, center, args.threads, extra, task="disease"), text)
        for key, (folder, n, seed, center, extra, text) in TEST_SETS.items()
    }
    labels_csv = data / "disease-train-labels.csv"
    n_train = combined_labels(train_dirs, data, labels_csv)
    description = (
        f"{n_train} simulated scans from the randomised centre (balanced classes), {TRAIN_SETS[1][1]} of them as display exports: "
        + "; ".join(" ".join(c) for c in train_cmds)
    )
    train_cmd = [
        "scintipipe",
        "train",
        "--bundle",
        "disease",
        "--recipe",
        str(recipe.relative_to(ROOT)),
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
        for child in ("configs", "models", "docs"):
            shutil.rmtree(out / child, ignore_errors=True)
        seed_gate(out, old)
        sh(train_cmd, args.threads)
        keep = data / "disease-training"
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for name in ("checkpoint.pt", "logs", "train_errors.csv"):
            if (out / name).exists():
                shutil.move(str(out / name), str(keep / name))
        bundle = "disease" if out == bundle_dir().resolve() else str(out.relative_to(ROOT))
        method = (old.get("ood") or {}).get("method", DEFAULT_GATE_METHOD)
        sh(gate_fit_command(bundle, data, TRAIN_SETS, TEST_SETS, method, "disease", args.threads), args.threads)
    reports = {}
    for key, (folder, _, _) in tests.items():
        dest = ROOT / f"plugins/scintipipe-disease/docs/eval_{key}"
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
        (dest / "predictions.csv").unlink(missing_ok=True)
    write_card(out, reports, train_cmd, tests)
    metadata_path = out / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata.setdefault("eval_metrics", {}).update(
        {key: {"accuracy": r["overall"]["accuracy"]["value"], "n": r["n"], "data": tests[key][2]} for key, r in reports.items()}
    )
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")


def write_card(out: Path, reports: dict, train_cmd: list[str], tests: dict) -> None:
    """Model card: warning, results with intervals, how it was made, then the training card."""
    from scintipipe.evaluation import format_table

    card_path = out / "docs/README.md"
    gate = gate_section(card_path)
    title, rest = split_card(card_path)
    glance = glance_lines(reports, tests, LABELS)
    parts = [
        title,
        "",
        "> **Demonstration model trained on simulated scans. Not for clinical use: it has not been validated on real patients.** "
        "The real-image table below is the only check on real scans, and it has 9 scored images.",
        "",
        "CPU demonstration bundle for seed 001's four classes (Graves' disease, subacute thyroiditis, thyroid tumour, normal): "
        "the project's compact ScintiNet CNN (0.16 M parameters, 96 x 96 neck crop on a 2.2 mm grid), not the paper's ResNet-34 "
        "(kept as recipes; see the plugin's `docs/results.md`, measured on the earlier simulator).",
        "",
        "## Results (simulated scans)",
        "",
        *glance,
        "",
        format_table({key.capitalize(): r for key, r in reports.items()}),
        "",
        "Class-specific attention maps (the paper's Grad-CAM heatmaps): `scintipipe run --bundle disease scans/ --out results/ --explain-class all`.",
        "",
        *gate,
        "## How it was made",
        "",
        "`python benchmarks/ship_disease.py` (simulation, training, the input gate, evaluations, this card), then `python benchmarks/real_images.py`. "
        f"Training command: `{' '.join(shlex.quote(c) for c in train_cmd)}`.",
    ]
    write_card_text(card_path, parts, rest)


if __name__ == "__main__":
    sys.exit(main())
