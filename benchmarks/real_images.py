"""Run every shipped bundle on every real image in ../shared/reference-scans and score it.

Run from the repository root::

    python benchmarks/real_images.py                       # results + docs + model cards
    python benchmarks/real_images.py --reference DIR --out /tmp/real --no-docs

The real images are **for validation only**: nothing here trains, calibrates or picks a
threshold on them. Each bundle classifies them through the ordinary pipeline (a
``scintipipe run --no-report --no-explain`` subprocess into a temporary folder, whose
``predictions.csv`` is read back), so the figures are what a user of ``scintipipe run``
would get.

Which images and which answer is expected (from the reference folder's README):

* ``figure-crops/<CODE>_*.png``: 8-bit display crops with a diagnosis. ``CODE`` maps to
  the expected label per task (:data:`EXPECTED`): DG (Graves' diffuse goitre) is
  ``diffusely_increased`` / ``graves``; TI (thyroiditis) ``diffusely_decreased`` /
  ``subacute_thyroiditis``; NG (nodular goitre) ``heterogeneous`` or ``focal_increased``
  (either counts) / ``thyroid_tumour``; NL (normal) is not one of uptake4's patterns (not
  scored) / ``normal``.
* ``siemens-thyroid/thyroid_99mTc_ANT_deid.dcm``: a 99mTc thyroid study without a
  diagnosis label but with a normal-range uptake (1.7-1.9 %): ``normal`` for disease, not
  scored for uptake4.
* Display renderings of a DICOM that is already scored (same stem, ``.png``) are run and
  shown, not scored (the same acquisition twice).
* Syringe images are not thyroid views: listed as excluded with the reason.
* Bundles of a task that does not apply (``remnant`` is a 131I post-ablation task; the
  images are 99mTc pertechnetate) are run and shown, never scored.

Outputs: ``benchmarks/results/real_images.{md,json}``; the tables also go into
``docs/real_images.md`` and into each scored bundle's model card, between the markers
``<!-- real-images:start -->`` and ``<!-- real-images:end -->`` (added when absent,
replaced on a rerun).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference-scans"
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "real_images.md"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import git_commit, run_no_report  # noqa: E402  (after the sys.path set-up)
from scintipipe.docs_markers import replace_marked, update_file  # noqa: E402, F401  (shared with scintipipe gate fit; replace_marked re-exported)

MARKER = "real-images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm")

#: diagnosis code -> task -> accepted labels (``None``: not scored for that task)
EXPECTED: dict[str, dict[str, tuple[str, ...] | None]] = {
    "DG": {"uptake4": ("diffusely_increased",), "disease": ("graves",)},
    "TI": {"uptake4": ("diffusely_decreased",), "disease": ("subacute_thyroiditis",)},
    "NG": {"uptake4": ("heterogeneous", "focal_increased"), "disease": ("thyroid_tumour",)},
    "NL": {"uptake4": None, "disease": ("normal",)},
    "SIEMENS": {"uptake4": None, "disease": ("normal",)},
}

#: diagnosis text for codes the README table does not name
DEFAULT_DIAGNOSIS = {
    "DG": "diffuse goitre (Graves')",
    "TI": "thyroiditis",
    "NG": "nodular goitre",
    "NL": "normal",
    "SIEMENS": "no diagnosis label; uptake 1.7-1.9 % (normal range)",
}

#: why a task is not scored on these images at all
NOT_APPLICABLE = {"remnant": "not applicable: 131I post-ablation task, 99mTc images"}


@dataclass
class RealImage:
    """One file of the reference folder and what is expected of it.

    Attributes:
        path: the file.
        name: path relative to the reference folder.
        code: diagnosis code (``DG``, ``TI``, ``NG``, ``NL``, ``SIEMENS``) or ``None``.
        diagnosis: the README's diagnosis text.
        excluded: reason the file is not run at all (``None`` when it is run).
        unscored: reason the file is run but never scored (``None`` when scored).
    """

    path: Path
    name: str
    code: str | None
    diagnosis: str
    excluded: str | None = None
    unscored: str | None = None

    def expected(self, task: str) -> tuple[str, ...] | None:
        """Accepted labels for ``task``; ``None`` when this image is not scored for it."""
        if self.excluded or self.unscored or self.code is None or task in NOT_APPLICABLE:
            return None
        return EXPECTED.get(self.code, {}).get(task)


@dataclass
class Row:
    """One image classified by one bundle."""

    image: str
    diagnosis: str
    expected: list[str] | None
    prediction: str | None
    p_prediction: float | None
    p_expected: float | None
    correct: bool | None
    note: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)


def readme_diagnoses(readme: Path) -> dict[str, str]:
    """File name -> diagnosis text from the README's markdown tables.

    A row such as ``| DG_O.png, DG_EX.png | diffuse goitre (Graves') | ... |`` names the
    files in its first cell and the diagnosis in the second.
    Only tables whose second header cell is ``diagnosis`` count (the Siemens table's
    second column describes the acquisition, not a diagnosis).
    """
    out: dict[str, str] = {}
    if not readme.is_file():
        return out
    header: list[str] = []
    for line in readme.read_text(errors="replace").splitlines():
        if not line.lstrip().startswith("|"):
            header = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header:
            header = [cell.lower() for cell in cells]
            continue
        if len(cells) < 2 or len(header) < 2 or header[1] != "diagnosis":
            continue
        names = [part.strip().strip("`") for part in cells[0].split(",")]
        if names and all(re.fullmatch(r"[\w.-]+\.(png|jpe?g|tiff?|dcm)", name, re.I) for name in names):
            for name in names:
                out[name] = cells[1]
    return out


def diagnosis_code(path: Path) -> str | None:
    """The diagnosis code of a file name: its prefix before ``_`` (``DG_O.png`` -> DG), or
    ``SIEMENS`` for the Siemens thyroid study."""
    prefix = path.stem.split("_")[0].upper()
    if prefix in EXPECTED and prefix != "SIEMENS":
        return prefix
    if path.suffix.lower() == ".dcm" and "thyroid" in path.stem.lower():
        return "SIEMENS"
    return None


def discover(reference: Path) -> list[RealImage]:
    """Every image file under ``reference`` with its diagnosis and role.

    Args:
        reference: the reference folder (``../shared/reference-scans``).

    Returns:
        The images in a stable order (sorted relative paths).
    """
    diagnoses = readme_diagnoses(reference / "README.md")
    files = sorted(p for p in reference.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    dicom_stems = {(p.parent, p.stem) for p in files if p.suffix.lower() == ".dcm"}
    out = []
    for path in files:
        name = str(path.relative_to(reference))
        code = diagnosis_code(path)
        diagnosis = diagnoses.get(path.name) or DEFAULT_DIAGNOSIS.get(code or "", "unknown")
        image = RealImage(path, name, code, diagnosis)
        if "syringe" in path.name.lower():
            image.excluded = "syringe calibration image (a syringe in air), not a thyroid view"
        elif path.suffix.lower() != ".dcm" and (path.parent, path.stem) in dicom_stems:
            image.unscored = f"display rendering of {path.stem}.dcm: same acquisition, scored once as DICOM"
            image.code = code = code or "SIEMENS"
            image.diagnosis = diagnoses.get(path.name) or DEFAULT_DIAGNOSIS.get(code, "unknown")
        elif code is None:
            image.unscored = "no diagnosis code in the file name"
        out.append(image)
    return out


def run_bundle(bundle: str, files: list[Path], threads: int = 1) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """Classify ``files`` with ``scintipipe run`` in a temporary folder.

    Args:
        bundle: registered bundle name or folder.
        files: the images.
        threads: ``--threads`` for the run.

    Returns:
        ``(rows by source path, errors)``: the ``predictions.csv`` rows keyed by the file
        path (the view suffix ``#...`` removed; the first view when a file has several),
        and ``(source, error)`` from ``errors.csv``.
    """
    with tempfile.TemporaryDirectory(prefix="real_images_") as tmp:
        out = Path(tmp) / "run"
        run_no_report(bundle, files, out, threads)
        rows: dict[str, dict[str, str]] = {}
        with (out / "predictions.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                key = str(Path(row["source"].split("#")[0]).resolve())
                rows.setdefault(key, row)
        errors = []
        if (out / "errors.csv").is_file():
            with (out / "errors.csv").open(newline="") as handle:
                errors = [(row["source"], row["error"]) for row in csv.DictReader(handle)]
    return rows, errors


def score_rows(
    images: list[RealImage], task: str, labels: list[str], predictions: dict[str, dict[str, str]], errors: list[tuple[str, str]]
) -> list[Row]:
    """Table rows of one bundle: prediction, probabilities and correctness per image."""
    failed = {str(Path(source.split("#")[0]).resolve()): reason for source, reason in errors}
    rows = []
    for image in images:
        if image.excluded:
            continue
        key = str(image.path.resolve())
        expected = image.expected(task)
        note = image.unscored or NOT_APPLICABLE.get(task) or ("" if expected else f"not one of {task}'s classes")
        pred = predictions.get(key)
        if pred is None:
            rows.append(
                Row(
                    image.name,
                    image.diagnosis,
                    list(expected) if expected else None,
                    None,
                    None,
                    None,
                    None,
                    f"failed: {failed.get(key, 'no prediction')}",
                )
            )
            continue
        probs = {label: float(pred[f"prob_{label}"]) for label in labels if f"prob_{label}" in pred}
        label = pred["label"]
        p_expected = sum(probs.get(lab, 0.0) for lab in expected) if expected else None
        correct = (label in expected) if expected else None
        rows.append(Row(image.name, image.diagnosis, list(expected) if expected else None, label, probs.get(label), p_expected, correct, note, probs))
    return rows


def score(rows: list[Row]) -> dict[str, Any]:
    """``k/n`` correct with a Wilson 95 % interval over the scored rows."""
    from scintipipe.evaluation.intervals import wilson_interval

    scored = [row for row in rows if row.correct is not None]
    k, n = sum(bool(row.correct) for row in scored), len(scored)
    interval = wilson_interval(k, n) if n else None
    return {"correct": k, "n": n, "accuracy": k / n if n else None, "wilson95": list(interval) if interval else None}


def score_line(bundle: str, result: dict[str, Any]) -> str:
    """``uptake4: 3/6 correct (Wilson 95 % 19-81 %)``."""
    if not result["n"]:
        return f"**{bundle}**: not scored on these images"
    lo, hi = result["wilson95"]
    return f"**{bundle}**: {result['correct']}/{result['n']} correct ({100 * result['accuracy']:.0f} %, Wilson 95 % interval {100 * lo:.0f}-{100 * hi:.0f} %)"


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"


def bundle_table(bundle: str, rows: list[Row], result: dict[str, Any]) -> str:
    """The markdown table of one bundle with its score line."""
    lines = [
        f"#### {bundle}",
        "",
        "| image | diagnosis (README) | expected | prediction | p(prediction) | p(expected) | correct | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        expected = " or ".join(row.expected) if row.expected else "not scored"
        correct = "-" if row.correct is None else ("yes" if row.correct else "**no**")
        lines.append(
            f"| {row.image} | {row.diagnosis} | {expected} | {row.prediction or '-'} | {_fmt(row.p_prediction)} | {_fmt(row.p_expected)} | {correct} | {row.note} |"
        )
    counts = Counter(row.prediction for row in rows if row.prediction)
    lines += [
        "",
        score_line(bundle, result)
        + ". Predicted labels over the "
        + f"{sum(counts.values())} images run: "
        + ", ".join(f"{label} {k}" for label, k in counts.most_common())
        + ".",
        "",
    ]
    return "\n".join(lines)


def render(results: dict[str, Any], bundles: list[str] | None = None, heading: bool = True) -> str:
    """Markdown for the results (all bundles, or those named), for results and docs."""
    names = bundles or list(results["bundles"])
    parts = []
    if heading:
        parts += [
            f"Real images in `{results['reference_display']}` classified with `scintipipe run --no-report --no-explain` ({results['date']}, commit {results['commit']}). "
            "p(expected) is the probability of the expected label (for NG on uptake4, heterogeneous + focal_increased). Intervals are Wilson 95 %; with 6-9 images they are wide.",
            "",
        ]
    if results.get("note"):
        parts += [results["note"], ""]
    if len(names) > 1:
        parts.append("Score per bundle: " + "; ".join(score_line(name, results["bundles"][name]["score"]) for name in names) + ".")
        parts.append("")
    for name in names:
        entry = results["bundles"][name]
        parts.append(bundle_table(name, [Row(**row) for row in entry["rows"]], entry["score"]))
    if results["excluded"]:
        parts.append("Excluded: " + "; ".join(f"`{item['image']}` ({item['reason']})" for item in results["excluded"]) + ".")
        parts.append("")
    return "\n".join(parts)


def registered_bundles() -> dict[str, Any]:
    """``{name: Bundle}`` of every bundle the plugin manager registers (``scintipipe bundles``)."""
    from scintipipe.bundle import Bundle
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    register = tasks_and_bundles(make_plugin_manager())
    return {name: Bundle(entry.path, name=name) for name, entry in sorted(register.bundles.items())}


def _repo_relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def evaluate(reference: Path, bundle_names: list[str] | None = None, threads: int = 1, log=print) -> dict[str, Any]:
    """Run the bundles on the reference images and score them.

    Args:
        reference: the reference folder.
        bundle_names: registered names or bundle folders; default every registered bundle.
        threads: torch threads per run.
        log: progress messages.

    Returns:
        JSON-ready results: ``images``, ``excluded``, and per bundle ``task``, ``labels``,
        ``rows``, ``score``.
    """
    from scintipipe.bundle import Bundle

    images = discover(reference)
    run_images = [image for image in images if not image.excluded]
    known = registered_bundles()
    bundles = {}
    for name in bundle_names or list(known):
        bundles[name] = known[name] if name in known else Bundle(name)
    try:
        shown = str(reference.resolve().relative_to(REPO.parent))
        shown = f"../{shown}"
    except ValueError:
        shown = str(reference)
    results: dict[str, Any] = {
        "reference": str(reference.resolve()),
        "reference_display": shown,
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "images": [{"image": i.name, "code": i.code, "diagnosis": i.diagnosis, "excluded": i.excluded, "unscored": i.unscored} for i in images],
        "excluded": [{"image": i.name, "reason": i.excluded} for i in images if i.excluded],
        "bundles": {},
    }
    for name, bundle in bundles.items():
        log(f"running {name} on {len(run_images)} images ...")
        predictions, errors = run_bundle(name, [i.path for i in run_images], threads)
        rows = score_rows(run_images, bundle.task, bundle.labels, predictions, errors)
        results["bundles"][name] = {
            "task": bundle.task,
            "labels": bundle.labels,
            "version": bundle.version,
            "path": str(bundle.root),
            "model_card": _repo_relative(bundle.root / "docs" / "README.md"),
            "not_applicable": NOT_APPLICABLE.get(bundle.task),
            "rows": [asdict(row) for row in rows],
            "score": score(rows),
        }
        log("  " + score_line(name, results["bundles"][name]["score"]).replace("**", ""))
    return results


DOC_TITLE = "Real images: what the shipped models and the simulator look like on them"


def write_outputs(results: dict[str, Any], out: Path, docs: bool) -> list[Path]:
    """Write ``real_images.{md,json}`` to ``out`` and, with ``docs``, the marked sections."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    md = out / "real_images.md"
    md.write_text(f"# Shipped bundles on the real reference images\n\n{render(results)}\nRerun: `python benchmarks/real_images.py`.\n")
    js = out / "real_images.json"
    js.write_text(json.dumps(results, indent=1) + "\n")
    written += [md, js]
    if docs:
        update_file(DOC, MARKER, render(results) + "\nRerun: `python benchmarks/real_images.py`.", title=DOC_TITLE)
        written.append(DOC)
        for name, entry in results["bundles"].items():
            if not entry["score"]["n"]:
                continue
            card = REPO / entry.get("model_card", str(Path(entry["path"]) / "docs" / "README.md"))
            if card.is_file():
                section = (
                    "## On real images (validation only)\n\n"
                    + render(results, [name])
                    + "\nRerun: `python benchmarks/real_images.py` (all bundles: `docs/real_images.md`)."
                )
                update_file(card, MARKER, section)
                written.append(card)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--reference", type=Path, default=DEFAULT_REFERENCE, help="folder of real images with a README (default ../shared/reference-scans)"
    )
    parser.add_argument("--bundle", action="append", default=None, help="bundle name or folder (repeatable; default every registered bundle)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for real_images.{md,json}")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not touch docs/real_images.md and the model cards")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--from-json", type=Path, default=None, help="rewrite the outputs from a real_images.json of an earlier run (runs nothing)")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        for path in write_outputs(results, args.out, args.docs):
            print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        return 0
    if not args.reference.is_dir():
        print(f"reference images not found at {args.reference}; nothing to evaluate (skipped)")
        return 0
    results = evaluate(args.reference, args.bundle, args.threads)
    for path in write_outputs(results, args.out, args.docs):
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
