"""The whole input gate (metadata, content and learned layers) on real and generated inputs.

Run from the repository root::

    python benchmarks/gate_refusals.py                 # results + the table in docs/gate.md
    python benchmarks/gate_refusals.py --bundle uptake4 --out /tmp/gr --no-docs
    python benchmarks/gate_refusals.py --from-json benchmarks/results/gate_refusals.json

``benchmarks/gate_ood.py`` measures the learned score alone; this runs what a user runs:
``scintipipe run --bundle B --no-report --no-explain FOLDER`` (a subprocess per bundle, as
``benchmarks/real_images.py`` does) on one folder of inputs that are not thyroid views, and
reads back ``predictions.csv`` (classified: label and confidence), ``errors.csv`` (refused:
the stage ``gate:<layer>`` and the reason; other failures) and the ``skipped ...`` notes.

The folder (nothing is downloaded; files missing offline are left out and listed):

* pydicom's own test files: a CT and an MR slice, the NM whole-body JPEG 2000 image,
  ultrasound images (RGB, palette, a 30-frame YBR cine) and colour Secondary Captures;
* matplotlib's sample photograph, product photo and logo;
* a text page rendered with PIL;
* a scintipipe Secondary Capture (``overlay_sc.dcm``), made here by running uptake4 with
  reports on one simulated DICOM scan;
* the real 99mTc syringe file in ``../shared/reference-scans/siemens-thyroid``;
* an NM file built here that mimics the lung/kidney shunt study of the issue (Tc-99m,
  SeriesDescription ``POUMON-REIN``, ANT and POST frames with lungs and kidneys), and the
  same pixels with no descriptions (which the metadata layer cannot judge).

Target: no view of this folder gets a label from any bundle (the syringe is skipped).

Separately, each bundle runs on the 9 real thyroid images (``figure-crops/*.png`` and
``siemens-thyroid/thyroid_99mTc_ANT_deid.dcm``), for validation only: nothing here fits or
thresholds anything. Target: all 9 accepted by uptake4 and disease; remnant is a 131I
post-ablation task, so refusing these 99mTc images is expected there.

Outputs: ``benchmarks/results/gate_refusals.{md,json}``, and the tables in ``docs/gate.md``
between ``<!-- gate-refusals:start -->`` and ``<!-- gate-refusals:end -->``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import git_commit, run_no_report  # noqa: E402  (after the sys.path set-up)

REFERENCE = REPO.parent / "shared" / "reference-scans"
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "gate.md"
MARKER = "gate-refusals"
DEFAULT_BUNDLES = ("uptake4", "disease", "remnant")

#: pydicom test files: (file, what it is); only those present offline are used
PYDICOM_FILES = [
    ("CT_small.dcm", "CT slice"),
    ("MR_small.dcm", "MR slice"),
    ("JPEG2000.dcm", "NM whole-body image (JPEG 2000)"),
    ("examples_rgb_color.dcm", "ultrasound, RGB"),
    ("examples_palette.dcm", "ultrasound, palette colour"),
    ("examples_ybr_color.dcm", "ultrasound cine, 30 frames, YBR"),
    ("SC_rgb_jpeg.dcm", "colour Secondary Capture (OT, DERIVED): a near-uniform light field with a few specks"),
    ("SC_rgb_small_odd.dcm", "colour Secondary Capture (OT), 3 x 3 pixels"),
    ("SC_jpeg_no_color_transform.dcm", "colour Secondary Capture, no modality: the same light field"),
]
MATPLOTLIB_FILES = [
    ("grace_hopper.jpg", "photograph"),
    ("Minduka_Present_Blue_Pack.png", "product photograph"),
    ("logo2.png", "logo"),
]
REAL_SYRINGE = "siemens-thyroid/syringe_full_99mTc_2frames_deid.dcm"
REAL_THYROID = [
    *(f"figure-crops/{code}_{kind}.png" for code in ("DG", "NG", "NL", "TI") for kind in ("O", "EX")),
    "siemens-thyroid/thyroid_99mTc_ANT_deid.dcm",
]
#: what each real thyroid image is (the reference folder's README)
THYROID_WHAT = {
    "DG": "Graves' diffuse goitre, display crop",
    "NG": "nodular goitre, display crop",
    "NL": "normal, display crop",
    "TI": "thyroiditis, display crop",
}

#: bundles for which the real thyroid images are not inputs (refusing them is expected)
NOT_ITS_INPUTS = {"remnant": "131I post-ablation task; these are 99mTc views of intact thyroids"}

SKIPPED_LINE = re.compile(r"^skipped (?P<source>.+?): (?P<reason>.*)$")


@dataclass
class Input:
    """One input file of a run.

    Attributes:
        name: the file name in the run folder (unique).
        what: what it is, in words.
        origin: ``pydicom``, ``matplotlib``, ``generated``, ``scintipipe`` or ``real``.
        path: the file.
    """

    name: str
    what: str
    origin: str
    path: Path


@dataclass
class Outcome:
    """What one bundle did with one view.

    Attributes:
        source: the view (``file`` or ``file#view``) as the run names it.
        file: the input's file name.
        status: ``classified``, ``refused`` (by a gate layer), ``skipped`` or ``failed``
            (any other stage).
        label: the label (classified views).
        confidence: its probability (classified views).
        stage: the ``errors.csv`` stage (``gate:metadata``, ``load``, ...).
        reason: why it was refused, skipped or failed.
        ood_score: the learned out-of-distribution score of a classified view (``predictions.csv``).
    """

    source: str
    file: str
    status: str
    label: str | None = None
    confidence: float | None = None
    stage: str | None = None
    reason: str | None = None
    ood_score: float | None = None


# ---- the inputs ----------------------------------------------------------------------


def text_page(path: Path) -> Path:
    """A white page of black text (a report or letter photographed flat), as an 8-bit PNG."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=18)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    image = Image.new("L", (800, 1000), 255)
    draw = ImageDraw.Draw(image)
    words = "the patient was seen in clinic today for follow up of a thyroid nodule and reports no new symptoms since the last visit".split()
    rng = np.random.default_rng(3)
    draw.text((60, 50), "Department of Nuclear Medicine", fill=0, font=font)
    for i, y in enumerate(range(120, 940, 28)):
        line = " ".join(rng.choice(words, size=int(rng.integers(6, 11))))
        draw.text((60, y), line.capitalize() + ("." if i % 4 == 3 else ""), fill=0, font=font)
    image.save(path)
    return path


def lung_kidney_frames(rows: int = 256, columns: int = 256, seed: int = 0) -> np.ndarray:
    """``(2, rows, columns)`` uint16 counts: ANT and POST views of a 99mTc-MAA lung/kidney shunt study.

    Two large lungs in the upper field, two small kidneys below (the shunted fraction),
    a little body background; Poisson noise.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns] / np.array([rows, columns])[:, None, None]

    def blob(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1).astype(float)

    lungs = blob(0.33, 0.36, 0.12, 0.24) + blob(0.67, 0.36, 0.13, 0.24)
    kidneys = blob(0.36, 0.74, 0.05, 0.08) + blob(0.64, 0.74, 0.05, 0.08)
    body = blob(0.5, 0.55, 0.34, 0.5)
    from scipy.ndimage import gaussian_filter

    frames = []
    for lung_level, kidney_level in ((60.0, 8.0), (52.0, 11.0)):  # anterior, posterior
        expected = gaussian_filter(lung_level * lungs + kidney_level * kidneys + 0.6 * body, 3) + 0.2
        frames.append(rng.poisson(expected))
    return np.stack(frames).astype(np.uint16)


def shunt_study(path: Path, series_description: str | None = "POUMON-REIN", seed: int = 0) -> Path:
    """Write a 2-frame NM Image Storage file like the issue's lung/kidney shunt study (Tc-99m)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, NuclearMedicineImageStorage, generate_uid

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        return item

    frames = lung_kidney_frames(seed=seed)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = NuclearMedicineImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = NuclearMedicineImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.Manufacturer, ds.ImageType = "NM", "SIEMENS NM", ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    ds.PatientName, ds.PatientID = "ANON^SHUNT", "ANON0002"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = "20240102"
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = "101500"
    if series_description:
        ds.SeriesDescription = series_description
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.NumberOfFrames = len(frames)
    ds.FrameIncrementPointer = [pydicom.tag.Tag(0x0054, 0x0010), pydicom.tag.Tag(0x0054, 0x0020)]
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.PixelSpacing = [2.4, 2.4]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ActualFrameDuration = 120_000
    window = Dataset()
    window_range = Dataset()
    window_range.EnergyWindowLowerLimit, window_range.EnergyWindowUpperLimit = "126", "154"
    window.EnergyWindowRangeSequence = Sequence([window_range])
    window.EnergyWindowName = "99m Technetium"
    ds.EnergyWindowInformationSequence = Sequence([window])
    ds.EnergyWindowVector, ds.NumberOfEnergyWindows = [1, 1], 1
    drug = Dataset()
    drug.Radiopharmaceutical = "Tc99m MAA"
    drug.RadionuclideCodeSequence = Sequence([code("C-163A8", "SRT", "Technetium Tc-99m")])
    ds.RadiopharmaceuticalInformationSequence = Sequence([drug])
    detectors = []
    for meaning, angle in (("ANT", "180"), ("POST", "0")):
        detector = Dataset()
        detector.CollimatorType = "PARA"
        detector.StartAngle = angle
        detector.ViewCodeSequence = Sequence([code(meaning, "99NMG", meaning)])
        detectors.append(detector)
    ds.DetectorInformationSequence = Sequence(detectors)
    ds.DetectorVector, ds.NumberOfDetectors = [1, 2], 2
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def scintipipe_secondary_capture(work: Path, threads: int = 1, log: Callable[[str], None] = print) -> Path | None:
    """An ``overlay_sc.dcm`` scintipipe writes: uptake4 run with reports on one simulated DICOM scan."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    sim, out = work / "sc-sim", work / "sc-run"
    base = [sys.executable, "-m", "scintipipe"]
    subprocess.run(
        [*base, "simulate", "--task", "uptake4", "--n", "1", "--seed", "11", "--center", "a", "--out", str(sim), "--no-progress"],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    scan = next(iter(sorted(sim.glob("case-*.dcm"))))
    proc = subprocess.run(
        [*base, "run", "--bundle", "uptake4", "--no-progress", "--device", "cpu", "--threads", str(threads), "--out", str(out), str(scan)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    found = sorted(out.rglob("overlay_sc.dcm"))
    if not found:
        log(f"no overlay_sc.dcm from the uptake4 run (exit {proc.returncode}): {proc.stderr[-500:]}")
        return None
    return found[0]


def foreign_inputs(
    work: Path, reference: Path = REFERENCE, threads: int = 1, log: Callable[[str], None] = print
) -> tuple[list[Input], list[dict[str, str]]]:
    """Build the folder of non-thyroid inputs under ``work``.

    Returns:
        ``(inputs, missing)``: the inputs, and ``{"file", "why"}`` for each left out.
    """
    import matplotlib.cbook
    from pydicom.data import get_testdata_file

    folder = work / "foreign"
    folder.mkdir(parents=True, exist_ok=True)
    inputs: list[Input] = []
    missing: list[dict[str, str]] = []

    def add(path: Path | None, name: str, what: str, origin: str) -> None:
        if path is None or not Path(path).is_file():
            missing.append({"file": name, "why": "not available offline"})
            return
        dest = folder / name
        if Path(path).resolve() != dest.resolve():
            shutil.copyfile(path, dest)
        inputs.append(Input(name, what, origin, dest))

    for name, what in PYDICOM_FILES:
        try:
            path = get_testdata_file(name, download=False)
        except Exception:  # noqa: BLE001  (an offline look-up that fails is a missing file)
            path = None
        add(Path(path) if path else None, f"pydicom_{name}", what, "pydicom")
    for name, what in MATPLOTLIB_FILES:
        try:
            path = Path(matplotlib.cbook.get_sample_data(name, asfileobj=False))
        except Exception:  # noqa: BLE001  (an offline look-up that fails is a missing file)
            path = None
        add(path, f"matplotlib_{name}", what, "matplotlib")
    add(text_page(folder / "text_page.png"), "text_page.png", "text page rendered with PIL", "generated")
    add(
        scintipipe_secondary_capture(work, threads, log),
        "scintipipe_overlay_sc.dcm",
        "scintipipe's own Secondary Capture (uptake4 overlay of a simulated scan)",
        "scintipipe",
    )
    add(
        reference / REAL_SYRINGE if (reference / REAL_SYRINGE).is_file() else None,
        "real_syringe_full_99mTc_2frames.dcm",
        "real 99mTc full-syringe image, 2 frames (Siemens)",
        "real",
    )
    add(
        shunt_study(folder / "nm_poumon_rein.dcm"),
        "nm_poumon_rein.dcm",
        "NM lung/kidney shunt study, Tc-99m, 'POUMON-REIN', ANT+POST (built here)",
        "generated",
    )
    add(
        shunt_study(folder / "nm_lung_kidney_no_description.dcm", series_description=None, seed=1),
        "nm_lung_kidney_no_description.dcm",
        "the same study with no descriptions (built here)",
        "generated",
    )
    return inputs, missing


def thyroid_inputs(reference: Path = REFERENCE) -> list[Input]:
    """The 9 real thyroid images (validation only), in place."""
    return [Input(rel, thyroid_what(rel), "real", reference / rel) for rel in REAL_THYROID if (reference / rel).is_file()]


def thyroid_what(rel: str) -> str:
    """What a real thyroid image is, in words."""
    code = Path(rel).name.split("_")[0]
    return THYROID_WHAT.get(code, "99mTc anterior thyroid view, Siemens DICOM (no diagnosis label)")


# ---- running -------------------------------------------------------------------------


def parse_run(out: Path, stderr: str) -> tuple[list[dict[str, str]], list[dict[str, str]], list[tuple[str, str]]]:
    """``(predictions rows, errors rows, skipped (source, reason))`` of a ``scintipipe run`` results folder and its stderr."""

    def rows(name: str) -> list[dict[str, str]]:
        path = out / name
        if not path.is_file():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    skipped = [(m["source"], m["reason"]) for m in map(SKIPPED_LINE.match, stderr.splitlines()) if m]
    return rows("predictions.csv"), rows("errors.csv"), skipped


def outcomes(inputs: list[Input], predictions: list[dict[str, str]], errors: list[dict[str, str]], skipped: list[tuple[str, str]]) -> list[Outcome]:
    """Per-view outcomes of one run, in input order; an input the run never mentions is ``failed``."""
    by_path = {str(i.path.resolve()): i.name for i in inputs}

    def file_of(source: str) -> str | None:
        return by_path.get(str(Path(source.split("#")[0]).resolve()))

    found: list[Outcome] = []
    for row in predictions:
        label = row.get("label")
        confidence = row.get("confidence") or row.get(f"prob_{label}")
        score = row.get("ood_score")
        found.append(
            Outcome(
                row["source"],
                file_of(row["source"]) or row["source"],
                "classified",
                label=label,
                confidence=float(confidence) if confidence else None,
                ood_score=float(score) if score else None,
            )
        )
    for row in errors:
        stage = row.get("stage") or ""
        status = "refused" if stage.startswith("gate:") else "failed"
        found.append(Outcome(row["source"], file_of(row["source"]) or row["source"], status, stage=stage, reason=row.get("error")))
    for source, reason in skipped:
        found.append(Outcome(source, file_of(source) or source, "skipped", reason=reason))
    order = {i.name: k for k, i in enumerate(inputs)}
    mentioned = {o.file for o in found}
    found += [
        Outcome(i.name, i.name, "failed", stage="run", reason="not in predictions.csv, errors.csv or the skipped notes")
        for i in inputs
        if i.name not in mentioned
    ]
    return sorted(found, key=lambda o: (order.get(o.file, len(order)), o.source))


def run_bundle(bundle: str, inputs: list[Input], folder: Path | None = None, threads: int = 1) -> list[Outcome]:
    """``scintipipe run --bundle BUNDLE --no-report --no-explain`` on ``folder`` (or the inputs' files)."""
    with tempfile.TemporaryDirectory(prefix="gate_refusals_") as tmp:
        out = Path(tmp) / "run"
        proc = run_no_report(bundle, [folder] if folder is not None else [i.path for i in inputs], out, threads)
        return outcomes(inputs, *parse_run(out, proc.stderr))


# ---- summaries -----------------------------------------------------------------------


def _layer(stage: str | None) -> str:
    return (stage or "").removeprefix("gate:")


def cell(views: list[Outcome]) -> str:
    """A table cell for one file and one bundle: ``refused: metadata``, ``skipped (syringe...)``, ``**classified** label 0.83``."""
    if not views:
        return "-"
    parts = []
    groups: dict[tuple, list[Outcome]] = {}
    for o in views:
        key = (o.status, _layer(o.stage)) if o.status != "classified" else ("classified", o.source)
        groups.setdefault(key, []).append(o)
    for (status, _), group in groups.items():
        first = group[0]
        count = f" ({len(group)} views)" if len(views) > 1 else ""
        if status == "classified":
            conf = f" {first.confidence:.2f}" if first.confidence is not None else ""
            view = f" [{first.source.split('#', 1)[1]}]" if "#" in first.source else ""
            parts.append(f"**classified** {first.label}{conf}{view}")
        elif status == "refused":
            parts.append(f"refused: {_layer(first.stage)}{count}")
        elif status == "skipped":
            parts.append(f"skipped{count}")
        else:
            parts.append(f"failed: {first.stage}{count}")
    return "; ".join(parts)


REFUSED_PREFIX = re.compile(r"^refused by the [\w-]+ gate: ")


def reasons(views: list[Outcome], classified: bool = False) -> list[str]:
    """The distinct reasons of a file's refused, skipped or failed views (``refused, gate:metadata: modality CT ...``).

    With ``classified``, classified views are listed too, with their learned score.
    """
    texts = []
    for o in views:
        if o.status == "classified":
            if classified:
                score = f"; learned score {o.ood_score:.4g}" if o.ood_score is not None else ""
                texts.append(
                    f"**classified** {o.label} {o.confidence:.2f}{score}" if o.confidence is not None else f"**classified** {o.label}{score}"
                )
            continue
        where = f", {o.stage}" if o.stage else ""
        texts.append(f"{o.status}{where}: {REFUSED_PREFIX.sub('', o.reason or '')}")
    return list(dict.fromkeys(texts))


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Per bundle: views of the foreign folder classified (target 0), and real thyroid images classified of 9."""
    out: dict[str, Any] = {}
    for bundle, entry in results["bundles"].items():
        foreign = [Outcome(**o) for o in entry["foreign"]]
        thyroid = [Outcome(**o) for o in entry["thyroid"]]
        labelled = [o for o in foreign if o.status == "classified"]
        accepted = sorted({o.file for o in thyroid if o.status == "classified"})
        out[bundle] = {
            "foreign_views": len(foreign),
            "foreign_files": len({o.file for o in foreign}),
            "foreign_classified": len(labelled),
            "foreign_classified_files": sorted({o.file for o in labelled}),
            "foreign_by_status": dict(Counter(o.status for o in foreign)),
            "thyroid_n": len({o.file for o in thyroid}),
            "thyroid_accepted": len(accepted),
            "thyroid_refused_files": sorted({o.file for o in thyroid} - set(accepted)),
            "thyroid_expected": "refused" if bundle in NOT_ITS_INPUTS else "accepted",
        }
    return out


def verdict_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for bundle, v in verdict(results).items():
        foreign = f"**{v['foreign_classified']} of {v['foreign_views']} views** of the {v['foreign_files']} non-thyroid files got a label" + (
            f" ({', '.join(v['foreign_classified_files'])})" if v["foreign_classified"] else ""
        )
        if v["thyroid_expected"] == "accepted":
            thyroid = f"real thyroid images accepted **{v['thyroid_accepted']}/{v['thyroid_n']}**" + (
                f" (refused: {', '.join(v['thyroid_refused_files'])})" if v["thyroid_refused_files"] else ""
            )
        else:
            thyroid = f"real thyroid images refused {v['thyroid_n'] - v['thyroid_accepted']}/{v['thyroid_n']}, classified {v['thyroid_accepted']} ({NOT_ITS_INPUTS[bundle]}: refusing them is expected)"
        met = v["foreign_classified"] == 0 and (v["thyroid_expected"] != "accepted" or v["thyroid_accepted"] == v["thyroid_n"])
        lines.append(f"- **{bundle}**: {foreign}; {thyroid}. Target {'met' if met else '**not met**'}.")
    return lines


def table(results: dict[str, Any], key: str, what: dict[str, str]) -> str:
    bundles = list(results["bundles"])
    files = list(dict.fromkeys(o["file"] for b in bundles for o in results["bundles"][b][key]))
    lines = ["| file | what it is | " + " | ".join(bundles) + " |", "|---|---|" + "---|" * len(bundles)]
    for name in files:
        cells = [cell([Outcome(**o) for o in results["bundles"][b][key] if o["file"] == name]) for b in bundles]
        lines.append(f"| `{name}` | {what.get(name, '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reason_list(results: dict[str, Any], key: str) -> str:
    lines = []
    for bundle, entry in results["bundles"].items():
        threshold = entry.get("ood_threshold")
        lines.append(f"#### {bundle}" + (f" (learned-score threshold {threshold:.4g})" if threshold is not None else "") + "\n")
        files = list(dict.fromkeys(o["file"] for o in entry[key]))
        listed = [
            f"- `{name}`: {text}"
            for name in files
            for text in reasons([Outcome(**o) for o in entry[key] if o["file"] == name], classified=key == "foreign")
        ]
        lines += [*(listed or ["- every view classified"]), ""]
    return "\n".join(lines)


def render(results: dict[str, Any], details: bool = True) -> str:
    what = {i["name"]: i["what"] for i in results["inputs"]}
    parts = [
        f"`scintipipe run --bundle B --no-report --no-explain` on one folder of {len(results['inputs'])} files that are not thyroid views, and separately on the "
        f"{len(results['thyroid_inputs'])} real thyroid images (validation only) ({results['date']}, commit {results['commit']}). "
        "A cell says what the bundle did with the file's views: **classified** (label, confidence), refused by a gate layer "
        "(`errors.csv` stage `gate:<layer>`), skipped (syringe, point source, flood) or failed at another stage.",
        "",
        *verdict_lines(results),
        "",
        "Non-thyroid inputs (target: no label):",
        "",
        table(results, "foreign", what),
        "",
        "Real thyroid images in `../shared/reference-scans` (validation only; target: accepted by uptake4 and disease):",
        "",
        table(results, "thyroid", {rel: thyroid_what(rel) for rel in REAL_THYROID}),
    ]
    if results.get("missing"):
        parts += ["", "Left out (not available offline): " + ", ".join(f"`{m['file']}`" for m in results["missing"]) + "."]
    if details:
        parts += [
            "",
            "### Reasons",
            "",
            "Non-thyroid inputs:",
            "",
            reason_list(results, "foreign"),
            "Real thyroid images:",
            "",
            reason_list(results, "thyroid"),
        ]
    return "\n".join(parts).rstrip() + "\n"


# ---- the benchmark -------------------------------------------------------------------


def ood_threshold(bundle: str) -> float | None:
    """The bundle's learned-score threshold (``None`` without one)."""
    from scintipipe.bundle import resolve_bundle
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    return resolve_bundle(bundle, tasks_and_bundles(make_plugin_manager()).bundles).gate.threshold


def evaluate(bundles: list[str], reference: Path = REFERENCE, threads: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the inputs, run every bundle on them, return JSON-ready results."""
    with tempfile.TemporaryDirectory(prefix="gate_refusals_inputs_") as tmp:
        work = Path(tmp)
        log("building the non-thyroid inputs ...")
        inputs, missing = foreign_inputs(work, reference, threads, log)
        thyroid = thyroid_inputs(reference)
        results: dict[str, Any] = {
            "date": dt.date.today().isoformat(),
            "commit": git_commit(),
            "inputs": [{"name": i.name, "what": i.what, "origin": i.origin} for i in inputs],
            "thyroid_inputs": [i.name for i in thyroid],
            "missing": missing,
            "bundles": {},
        }
        for bundle in bundles:
            log(f"running {bundle} on {len(inputs)} non-thyroid files and {len(thyroid)} real thyroid images ...")
            foreign = run_bundle(bundle, inputs, folder=work / "foreign", threads=threads)
            real = run_bundle(bundle, thyroid, threads=threads) if thyroid else []
            results["bundles"][bundle] = {
                "ood_threshold": ood_threshold(bundle),
                "foreign": [asdict(o) for o in foreign],
                "thyroid": [asdict(o) for o in real],
            }
    results["verdict"] = verdict(results)
    for line in verdict_lines(results):
        log(line.replace("**", ""))
    return results


def write_outputs(results: dict[str, Any], out: Path, docs: bool) -> list[Path]:
    from scintipipe.docs_markers import update_file

    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "gate_refusals.md", out / "gate_refusals.json"
    md.write_text("# The whole input gate on real and generated inputs\n\n" + render(results) + "\nRerun: `python benchmarks/gate_refusals.py`.\n")
    js.write_text(json.dumps(results, indent=1) + "\n")
    written = [md, js]
    if docs:
        update_file(
            DOC,
            MARKER,
            render(results, details=False)
            + "\nThe reason for every refusal: [benchmarks/results/gate_refusals.md](../benchmarks/results/gate_refusals.md). Rerun: `python benchmarks/gate_refusals.py`.",
        )
        written.append(DOC)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", action="append", default=None, help=f"bundle name or folder (repeatable; default {', '.join(DEFAULT_BUNDLES)})")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the real reference scans (default ../shared/reference-scans)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for gate_refusals.{md,json}")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not touch docs/gate.md")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--from-json", type=Path, default=None, help="rewrite the outputs from an earlier gate_refusals.json (runs nothing)")
    args = parser.parse_args(argv)
    results = (
        json.loads(args.from_json.read_text()) if args.from_json else evaluate(args.bundle or list(DEFAULT_BUNDLES), args.reference, args.threads)
    )
    for path in write_outputs(results, args.out, args.docs):
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
