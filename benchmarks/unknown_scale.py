"""Pictures without pixel spacing: one assumed field of view against the mean over several.

Run from the repository root::

    python benchmarks/unknown_scale.py                       # the judging sets of candidate 19
    python benchmarks/unknown_scale.py --fovs 200,280,390 --set mine=my/pngs   # any folder with labels.csv
    python benchmarks/unknown_scale.py --zoom-factors 0.8,1,1.25 --no-default-sets --set R=my/dicoms   # scans with a spacing
    python benchmarks/unknown_scale.py --set standin=/tmp/ssp37:uptake4 --no-default-sets
    python benchmarks/unknown_scale.py --bundle disease --no-default-sets \
        --set P=/tmp/ssp37:disease --set P=/tmp/ssp47:disease --set E=/tmp/jd-E --set B=/tmp/jd-B

What it does:

1. Test sets (folders with ``labels.csv``; ``NAME=FOLDER[:COLUMN]`` takes the label from
   ``COLUMN``, rows with an empty label left out). By default it makes three fresh sets of
   pictures without spacing under ``--work``: the stand-in simulator's own PNG exports
   (``second_simulator.py --format png``, seeds 37 and 47, uptake4's four patterns), the
   project's simulator's display exports (randomised centre, seed 2503, 400, balanced) and
   centre b (seed 2502, 300, the external mix) as 8-bit display copies of its DICOMs.
2. Two copies of the bundle in a temporary folder, identical but for one setting in
   ``configs/metadata.json``: ``unknown_scale_fovs_mm`` absent (one assumed field of view,
   280 mm) and ``--fovs``; or, with ``--zoom-factors``, ``zoom_factors`` absent (the
   spacing as acquired) and those factors. The bundle's other settings are kept.
3. Each set through ``scintipipe run --no-report --no-explain`` with both copies (gate on;
   refused and failed pictures count as wrong). Accuracy with Wilson 95 % intervals, recall
   per class, and an exact McNemar test between the two, per set and pooled. The real
   images with a label for the task are run too, reported and never used to decide.

Outputs: ``OUT/unknown_scale.{md,json}`` (``OUT`` defaults to ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import quantitative_baseline as qb  # noqa: E402  (labels, display copies)
import real_images  # noqa: E402  (the bundle runner and the real images' labels)
from _common import SCINTIPIPE, git_commit, mcnemar_exact, score_predictions, simulate_args  # noqa: E402  (after the sys.path set-up)
from _common import bundle_copy as copy_with_field  # noqa: E402  (after the sys.path set-up)

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "scintipipe-unknown-scale"
DEFAULT_FOVS = (200.0, 280.0, 390.0)


def bundle_copy(source: Path, out: Path, fovs: tuple[float, ...], key: str = "unknown_scale_fovs_mm") -> Path:
    """A copy of the bundle folder ``source`` whose metadata sets ``key`` to ``fovs`` (empty: removed)."""
    return copy_with_field(source, out, key, list(fovs) if fovs else None)


def parse_set(text: str) -> tuple[str, Path, str]:
    """``NAME=FOLDER[:COLUMN]`` as ``(name, folder, column)``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER[:COLUMN], got {text!r}")
    folder, _, column = rest.partition(":")
    return name, Path(folder), column or "label"


def default_sets(work: Path, log: Any) -> list[tuple[str, str, list[tuple[Path, str]]]]:
    """The three fresh judging sets of candidate 19 (made once under ``work``)."""
    sets = []
    standin = []
    for seed in (37, 47):
        folder = work / f"standin-png-{seed}"
        if not (folder / "labels.csv").is_file():
            log(f"stand-in simulator, PNG exports, seed {seed} ...")
            command = [sys.executable, str(REPO / "benchmarks" / "second_simulator.py"), "--seed", str(seed), "--format", "png"]
            subprocess.run([*command, "--out", str(folder), "--simulate-only"], check=True, capture_output=True, cwd=REPO)
        standin += qb.read_labels(folder, "uptake4")
    sets.append(("P", "stand-in simulator's PNG exports, seeds 37 + 47", standin))
    exports = work / "own-exports-2503"
    if not (exports / "labels.csv").is_file():
        log("project simulator, display exports, seed 2503 ...")
        extra = ["--class-mix", "balanced", "--display-exports", "1.0", "--no-progress", "--overwrite"]
        subprocess.run([*SCINTIPIPE, *simulate_args("uptake4", 400, 2503, "randomised", exports, extra)], check=True, capture_output=True, cwd=REPO)
    sets.append(("E", "project simulator, randomised centre, display exports (seed 2503)", qb.read_labels(exports)))
    centre_b = work / "centre-b-2502"
    if not (centre_b / "labels.csv").is_file():
        log("centre b, seed 2502 ...")
        subprocess.run(
            [*SCINTIPIPE, *simulate_args("uptake4", 300, 2502, "b", centre_b, ["--no-progress", "--overwrite"])],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
    copies = qb.write_display_copies(qb.read_labels(centre_b), work / "centre-b-2502-display")
    sets.append(("B", "centre b (seed 2502) as 8-bit display copies", copies))
    return sets


def compare(items: list[tuple[Path, tuple[str, ...]]], runs: dict[str, dict[str, dict[str, str]]], labels: list[str]) -> dict[str, Any]:
    """Accuracy, recall per class and McNemar of every variant on one set."""
    out: dict[str, Any] = {"n": len(items), "variants": {}}
    correct = {}
    truth = [accepted for _, accepted in items]
    for variant, rows in runs.items():
        predicted = [(rows.get(str(path.resolve())) or {}).get("label") for path, _ in items]
        scored = score_predictions(predicted, truth, labels)
        correct[variant] = scored["correct"]
        out["variants"][variant] = {
            "correct": scored["k"],
            "accuracy": scored["accuracy"],
            "wilson95": scored["wilson95"],
            "recall": {label: {"k": entry["k"], "n": entry["n"]} for label, entry in scored["recall"].items()},
        }
    first, second = list(correct)
    out["mcnemar"] = mcnemar_exact(correct[second], correct[first])
    out["difference_points"] = 100 * (correct[second].mean() - correct[first].mean()) if items else None
    return out


def render(results: dict[str, Any]) -> str:
    """The results file."""
    single, averaged = results["variants"]
    listed = ", ".join(f"{f:g}" for f in results["fovs"])
    if results.get("setting", "unknown_scale_fovs_mm") == "unknown_scale_fovs_mm":
        title = "Pictures without pixel spacing: one assumed field of view against the mean over several"
        what = f"**{single}**: a single assumed field of view (280 mm); **{averaged}**: the network's probabilities averaged over assumed fields of view of {listed} mm (`unknown_scale_fovs_mm`). "
    else:
        title = "Scans with a pixel spacing: the spacing as acquired against the mean over several zooms"
        what = f"**{single}**: the spacing as acquired; **{averaged}**: the network's probabilities averaged over {listed} times the pixel spacing (`zoom_factors`). "
    lines = [
        f"# {title}",
        "",
        f"Bundle `{results['bundle']}`; "
        + what
        + "Through `scintipipe run --no-report --no-explain`, gate on; refused or failed pictures count as wrong. "
        f"Wilson 95 % intervals; McNemar exact, discordant pairs as (only {averaged} right, only {single} right). {results['date']}, commit {results['commit']}, "
        f"{results['seconds']:.0f} s.",
        "",
        f"| set | n | {single} | {averaged} | difference, points | McNemar |",
        "|---|---|---|---|---|---|",
    ]

    def acc(v: dict[str, Any], n: int) -> str:
        lo, hi = v["wilson95"]
        return f"{100 * v['accuracy']:.1f} % ({v['correct']}/{n}; {100 * lo:.1f}-{100 * hi:.1f})"

    for entry in results["sets"]:
        s = entry["scores"]
        m = s["mcnemar"]
        lines.append(
            f"| {entry['name']}: {entry['description']} | {s['n']} | {acc(s['variants'][single], s['n'])} | {acc(s['variants'][averaged], s['n'])} | "
            f"{s['difference_points']:+.2f} | {m['only_first_correct']} vs {m['only_second_correct']}, p {m['p_value']:.3g} |"
        )
    lines += [
        "",
        "Recall per class, single / averaged:",
        "",
        "| set | " + " | ".join(results["labels"]) + " |",
        "|---|" + "---|" * len(results["labels"]),
    ]
    for entry in results["sets"]:
        cells = []
        for label in results["labels"]:
            r1 = entry["scores"]["variants"][single]["recall"].get(label)
            r2 = entry["scores"]["variants"][averaged]["recall"].get(label)
            cells.append(f"{r1['k']} / {r2['k']} of {r1['n']}" if r1 and r2 else "-")
        lines.append(f"| {entry['name']} | " + " | ".join(cells) + " |")
    if results.get("real"):
        lines += [
            "",
            "Real images with a label for the task (validation only; they decide nothing):",
            "",
            f"| image | expected | {single} | {averaged} |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r['image']} | {' or '.join(r['expected'])} | {r[single]} | {r[averaged]} |" for r in results["real"]]
    lines += ["", f"Rerun: `{results['command']}`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="uptake4", help="registered bundle name or folder (default: %(default)s)")
    parser.add_argument(
        "--fovs", default=",".join(f"{f:g}" for f in DEFAULT_FOVS), help="assumed fields of view in mm, comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--zoom-factors",
        default=None,
        help="compare zoom_factors instead (scans with a spacing), e.g. 0.8,1,1.25; the bundle's fields of view are kept",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        type=parse_set,
        default=[],
        metavar="NAME=FOLDER[:COLUMN]",
        help="a labelled folder to test (repeatable; folders under one NAME are pooled into one set)",
    )
    parser.add_argument("--no-default-sets", dest="default_sets", action="store_false", help="only the --set folders")
    parser.add_argument("--reference", type=Path, default=real_images.DEFAULT_REFERENCE)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for the simulated sets (reused when present)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    key, values = ("zoom_factors", args.zoom_factors) if args.zoom_factors else ("unknown_scale_fovs_mm", args.fovs)
    fovs = tuple(float(f) for f in values.split(",") if f.strip())
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {message}", flush=True)

    from scintipipe.bundle import Bundle

    registered = real_images.registered_bundles()
    bundle = registered[args.bundle] if args.bundle in registered else Bundle(args.bundle)
    labels = bundle.labels
    sets = default_sets(args.work, log) if args.default_sets else []
    given: dict[str, tuple[str, list[tuple[Path, str]]]] = {}
    for name, folder, column in args.sets:  # folders given under one name are pooled into one set
        description, items = given.get(name, ("folder", []))
        given[name] = (f"{description}{',' if items else ''} {folder}", items + qb.read_labels(folder, column))
    sets += [(name, description, items) for name, (description, items) in given.items()]
    empty = [name for name, _, items in sets if not items]
    if empty:
        parser.error(f"no labelled picture in set {', '.join(empty)} (labels.csv empty, or the label column has no value)")
    if not sets:
        parser.error("no test set: give --set NAME=FOLDER or leave out --no-default-sets")
    real = [image for image in real_images.discover(args.reference) if image.expected(bundle.task)] if args.reference.is_dir() else []
    variants = {"single": (), "averaged": fovs}
    runs: dict[str, dict[str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="unknown_scale_") as tmp:
        files = [path for _, _, items in sets for path, _ in items] + [image.path for image in real]
        for variant, variant_fovs in variants.items():
            folder = bundle_copy(Path(bundle.root), Path(tmp) / variant, variant_fovs, key)
            log(f"{variant}: {len(files)} pictures ...")
            runs[variant], _ = real_images.run_bundle(str(folder), files, args.threads)
    results: dict[str, Any] = {
        "bundle": args.bundle,
        "labels": labels,
        "setting": key,
        "fovs": list(fovs),
        "variants": list(variants),
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "command": " ".join(["python benchmarks/unknown_scale.py", *(sys.argv[1:] if argv is None else argv)]),
        "sets": [],
    }
    pooled: list[tuple[Path, tuple[str, ...]]] = []
    for name, description, items in sets:
        labelled = [(path, (label,)) for path, label in items]
        pooled += labelled
        results["sets"].append({"name": name, "description": description, "scores": compare(labelled, runs, labels)})
    if len(sets) > 1:
        results["sets"].append({"name": "pooled", "description": " + ".join(name for name, _, _ in sets), "scores": compare(pooled, runs, labels)})
    results["real"] = [
        {
            "image": image.name,
            "expected": list(image.expected(bundle.task)),
            **{v: (runs[v].get(str(image.path.resolve())) or {}).get("label", "-") for v in variants},
        }
        for image in real
    ]
    results["seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unknown_scale.json").write_text(json.dumps(results, indent=1) + "\n")
    text = render(results)
    (args.out / "unknown_scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
