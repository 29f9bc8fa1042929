"""Compare the view-combination rules on a finished run: per view, mean and max per study.

    scintipipe remnant-simulate --n 60 --seed 2 --out holdout/
    scintipipe run --bundle remnant holdout/ --out holdout-run/ --no-explain --no-report
    python plugins/scintipipe-remnant/benchmarks/view_combination.py holdout-run/predictions.csv holdout/labels.csv

Prints a Markdown table: accuracy, sensitivity and specificity (``present`` positive)
per view, per anterior view alone, and per study for each rule.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from scintipipe_remnant.study import RULES, study_rows

LABELS = ["absent", "present"]


def rates(truth: list[str], calls: list[str]) -> str:
    """``n | accuracy | sensitivity | specificity`` in percent."""
    t, c = np.array(truth) == "present", np.array(calls) == "present"
    return f"{len(t)} | {100 * np.mean(t == c):.1f} | {100 * c[t].mean():.1f} | {100 * (~c[~t]).mean():.1f}"


def main(predictions_csv: Path, labels_csv: Path) -> None:
    with labels_csv.open() as handle:
        truth = {row["file"]: row["label"] for row in csv.DictReader(handle)}
    with predictions_csv.open() as handle:
        views = [row for row in csv.DictReader(handle) if "#" in row["source"]]
    cases = [{"source": v["source"], "prediction": {f"prob_{label}": float(v[f"prob_{label}"]) for label in LABELS}} for v in views]

    def name(source: str) -> str:
        return Path(source.split("#")[0]).name

    print("| unit | n | accuracy | sensitivity | specificity |\n|---|---|---|---|---|")
    print(f"| every view | {rates([truth[name(v['source'])] for v in views], [v['label'] for v in views])} |")
    front = [v for v in views if v["source"].endswith("#anterior")]
    print(f"| anterior view only | {rates([truth[name(v['source'])] for v in front], [v['label'] for v in front])} |")
    for rule in RULES:
        rows = study_rows(cases, LABELS, rule)
        print(f"| study, {rule} of the views | {rates([truth[name(r['study'])] for r in rows], [r['label'] for r in rows])} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
