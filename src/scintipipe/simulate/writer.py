"""Write a simulated data set: DICOM scans, labels, truth, masks, syringes, contact sheet.

Layout of the output folder::

    case-00000.dcm ...          NM Image Storage, one anterior view per case
    case-00007.png / .jpg       with display_exports > 0: that share of cases as display exports
    labels.csv                  file,label
    truth.csv                   file,label,true uptake, activity, times, counts, mask file
    cases.jsonl                 every case's full simulation metadata, one JSON per line
    masks/case-00000.nii.gz     label map per case; masks/labels.json is the label table
    syringes/case-00000_full.dcm, _empty.dcm   with --syringes
    contact_sheet.png           the first 8 cases of each label, a row per label
    simulation.json             task, seed, centre, class mix, counts per label

Everything is a function of (task, seed, centre, n, class mix): case ``i`` draws from
``SeedSequence(seed, spawn_key=(i,))``, UIDs and dates come from the seed, no wall clock
is read, so the same call writes byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.simulate.case import SimulatedCase
from scintipipe.simulate.centers import CenterProfile
from scintipipe.simulate.dicom_io import AcquisitionIdentity, nm_dataset, write_dicom
from scintipipe.simulate.display_export import DisplayExport, display_export
from scintipipe.simulate.masks_io import write_label_map, write_label_table
from scintipipe.simulate.preview import contact_sheet
from scintipipe.simulate.syringe import simulate_syringes

LABEL_STREAM = 2**31 - 1
SYRINGE_STREAM = 1
IDENTITY_STREAM = 2
#: decides whether a case is a display export and draws the export's choices; a stream
#: of its own, so that the other cases stay byte-identical whatever the share
DISPLAY_EXPORT_STREAM = 7
SHEET_PER_LABEL = 8


def case_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The independent random generator of case ``index`` (``stream`` 0 for the scan)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, stream)))


def normalise_mix(labels: Iterable[str], mix: Mapping[str, float]) -> dict[str, float]:
    """Check a class mix against the labels and scale it to sum to one.

    Raises:
        ValueError: unknown labels, negative weights, or all weights zero.
    """
    labels = list(labels)
    unknown = set(mix) - set(labels)
    if unknown:
        raise ValueError(f"class mix names unknown labels {sorted(unknown)}; labels: {', '.join(labels)}")
    weights = {label: float(mix.get(label, 0.0)) for label in labels}
    if any(w < 0 or not math.isfinite(w) for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"class mix needs non-negative weights with a positive sum, got {mix}")
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}


def assign_labels(labels: Iterable[str], mix: Mapping[str, float], n: int, seed: int) -> list[str]:
    """Exactly ``round(n * share)`` cases per label (largest remainder), in shuffled order."""
    mix = normalise_mix(labels, mix)
    exact = {label: n * share for label, share in mix.items()}
    counts = {label: int(math.floor(value)) for label, value in exact.items()}
    leftover = n - sum(counts.values())
    for label in sorted(exact, key=lambda lab: (-(exact[lab] - counts[lab]), list(mix).index(lab)))[:leftover]:
        counts[label] += 1
    order = [label for label in mix for _ in range(counts[label])]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(LABEL_STREAM,)))
    return [order[i] for i in rng.permutation(n)]


def case_identity(task: str, seed: int, center: CenterProfile, index: int, minutes_post_injection: float) -> AcquisitionIdentity:
    """Synthetic patient, dates and UID sources of case ``index``, all from the seed."""
    rng = case_rng(seed, index, IDENTITY_STREAM)
    base = dt.datetime(2024, 1, 1) + dt.timedelta(days=int(np.random.default_rng(seed).integers(0, 365)))
    injection = base + dt.timedelta(days=index // 12, hours=8 + (index % 12) * 0.75, minutes=float(rng.uniform(0, 30)))
    injection = injection.replace(microsecond=0)
    acquisition = injection + dt.timedelta(seconds=round(minutes_post_injection * 60))
    return AcquisitionIdentity(
        uid_entropy=("scintipipe-simulate", task, str(seed), center.name, str(index)),
        patient_name=f"SIM^{task.upper()}^{seed}^{index:05d}",
        patient_id=f"SIM-{task}-{center.name}-{seed}-{index:05d}"[:64],
        patient_sex="F" if rng.random() < 0.9 else "M",
        patient_age_years=int(np.clip(rng.normal(42, 14), 18, 85)),
        injection=injection,
        acquisition=acquisition,
        study_description=f"Thyroid scintigraphy {center.camera.radionuclide}",
        series_description="ANT",
    )


@dataclass
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    out: Path
    files: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    counts_per_label: dict[str, int] = field(default_factory=dict)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_case(
    case: SimulatedCase,
    name: str,
    out: Path,
    center: CenterProfile,
    identity: AcquisitionIdentity,
    syringe_rng: np.random.Generator | None,
    export: DisplayExport | None = None,
) -> dict[str, Any]:
    """Write one case's DICOM (or display export), mask and (optionally) syringes; return its truth row.

    With ``export`` the case is written as that PNG/JPEG picture instead of DICOM, and its
    mask in the picture's geometry (the picture's pixel size in the NIfTI affine).
    """
    center = case.acquisition_profile or center  # a randomised centre's drawn camera
    injected = float(case.metadata.get("injected_mbq", center.injected_mbq))
    if export is None:
        file = f"{name}.dcm"
        write_dicom(nm_dataset(case.counts, center, identity, case.frame_duration_s, injected), out / file)
        write_label_map(case.masks, case.pixel_mm, out / "masks" / f"{name}.nii.gz")
    else:
        file = f"{name}{export.suffix}"
        (out / file).write_bytes(export.data)
        write_label_map(export.masks, export.record["pixel_mm"], out / "masks" / f"{name}.nii.gz")
    row: dict[str, Any] = {
        "file": file,
        "label": case.label,
        "true_uptake_percent": case.metadata.get("true_uptake_percent", ""),
        "injected_mbq": injected,
        "injection_datetime": identity.injection.isoformat(),
        "acquisition_datetime": identity.acquisition.isoformat(),
        "minutes_post_injection": case.metadata.get("minutes_post_injection", ""),
        "frame_duration_s": round(case.frame_duration_s, 3),
        "total_counts": case.total_counts,
        "mask": f"masks/{name}.nii.gz",
    }
    if export is not None:
        row["display_export"] = export.record["format"]
    if syringe_rng is not None:
        syringes = simulate_syringes(syringe_rng, center, injected)
        case.syringes = syringes
        for kind, image in syringes.items():
            moment = identity.injection + dt.timedelta(seconds=round(image.minutes_from_injection * 60))
            syringe_identity = AcquisitionIdentity(
                **{
                    **asdict(identity),
                    "acquisition": moment,
                    "series_description": f"SYRINGE {kind.upper()}",
                    "series_number": 2 if kind == "full" else 3,
                }
            )
            syringe_ds = nm_dataset(
                image.counts, center, syringe_identity, image.duration_s, injected, termination="TIME", series_key=f"syringe-{kind}"
            )
            write_dicom(syringe_ds, out / "syringes" / f"{name}_{kind}.dcm")
            row[f"syringe_{kind}"] = f"syringes/{name}_{kind}.dcm"
            row[f"syringe_{kind}_mbq"] = round(image.activity_mbq, 4)
            row[f"syringe_{kind}_datetime"] = moment.isoformat()
            row[f"syringe_{kind}_duration_s"] = image.duration_s
    return row


OUTPUT_FILES = ("labels.csv", "truth.csv", "cases.jsonl", "contact_sheet.png", "simulation.json")


def clear_previous_output(out: Path) -> None:
    """Remove what an earlier :func:`write_dataset` wrote in ``out`` (nothing else)."""
    for pattern in (
        "case-*.dcm",
        "case-*.png",
        "case-*.jpg",
        "masks/case-*.nii.gz",
        "masks/labels.json",
        "syringes/case-*_full.dcm",
        "syringes/case-*_empty.dcm",
        *OUTPUT_FILES,
    ):
        for path in out.glob(pattern):
            path.unlink()


def write_dataset(
    task: str,
    factory: Callable[[np.random.Generator, CenterProfile, str], SimulatedCase],
    labels: Iterable[str],
    center: CenterProfile,
    out: Path,
    n: int,
    seed: int,
    class_mix: Mapping[str, float],
    syringes: bool = False,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    overwrite: bool = False,
    display_exports: float = 0.0,
) -> DatasetSummary:
    """Simulate ``n`` cases and write them to ``out``.

    Args:
        task: task name (goes into UIDs and patient names).
        factory: ``factory(rng, center, label) -> SimulatedCase``.
        labels: the task's labels.
        center: acquisition profile.
        out: output folder (created).
        n: number of cases.
        seed: dataset seed.
        class_mix: share per label.
        syringes: also write full and empty syringe images.
        progress: wraps the case index iterator (e.g. ``tqdm``).
        overwrite: replace an earlier data set in ``out`` (its files only).
        display_exports: share of cases (0-1, drawn per case from a stream of its own)
            written as 8-bit PNG/JPEG display exports
            (:mod:`scintipipe.simulate.display_export`) instead of DICOM.

    Returns:
        A summary with the files written and the label counts.

    Raises:
        FileExistsError: ``out`` already holds a simulated data set and not ``overwrite``
            (stale cases of a larger earlier run would otherwise sit beside the new ones).
    """
    labels = list(labels)
    mix = normalise_mix(labels, class_mix)
    if not 0.0 <= display_exports <= 1.0:
        raise ValueError(f"display_exports is a share of the cases, 0 to 1; got {display_exports}")
    out = Path(out)
    if (out / "simulation.json").exists() or any(path for pattern in ("case-*.dcm", "case-*.png", "case-*.jpg") for path in out.glob(pattern)):
        if not overwrite:
            raise FileExistsError(f"{out} already holds a simulated data set; choose another folder or overwrite it")
        clear_previous_output(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if syringes:
        (out / "syringes").mkdir(exist_ok=True)
    assigned = assign_labels(labels, mix, n, seed)
    summary = DatasetSummary(out=out, labels=assigned)
    rows, metadata_lines = [], []
    sheet: dict[str, list[tuple[np.ndarray, str]]] = {label: [] for label in labels}
    indices: Iterable[int] = range(n)
    if progress is not None:
        indices = progress(indices)
    for index in indices:
        name = f"case-{index:05d}"
        label = assigned[index]
        case = factory(case_rng(seed, index), center, label)
        identity = case_identity(task, seed, center, index, float(case.metadata.get("minutes_post_injection", 20.0)))
        syringe_rng = case_rng(seed, index, SYRINGE_STREAM) if syringes else None
        export = _maybe_export(case, seed, index, display_exports)
        rows.append(write_case(case, name, out, center, identity, syringe_rng, export))
        extra = {"display_export": export.record} if export is not None else {}
        metadata_lines.append(json.dumps({"file": rows[-1]["file"], "label": label, **case.metadata, **extra}, sort_keys=True, default=_json_default))
        summary.files.append(rows[-1]["file"])
        if len(sheet[label]) < SHEET_PER_LABEL:
            sheet[label].append((case.counts, f"{index} {label}"))
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "label"])
        writer.writerows((row["file"], row["label"]) for row in rows)
    columns = sorted({key for row in rows for key in row}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 999)
    with open(out / "truth.csv", "w", newline="") as handle:
        truth_writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        truth_writer.writeheader()
        truth_writer.writerows(rows)
    (out / "cases.jsonl").write_text("".join(line + "\n" for line in metadata_lines))
    write_label_table(out / "masks")
    tiles = [tile for label in labels for tile in sheet[label]]  # one row per label
    if tiles:
        contact_sheet([image for image, _ in tiles], [caption for _, caption in tiles], out / "contact_sheet.png", columns=SHEET_PER_LABEL)
    summary.counts_per_label = {label: assigned.count(label) for label in labels}
    settings = {
        "task": task,
        "n": n,
        "seed": seed,
        "center": asdict(center),
        "class_mix": mix,
        "counts_per_label": summary.counts_per_label,
        "syringes": syringes,
        **({"display_exports": display_exports} if display_exports > 0 else {}),
        "files": {
            "labels": "labels.csv",
            "truth": "truth.csv",
            "cases": "cases.jsonl",
            "masks": "masks/",
            "label_table": "masks/labels.json",
            "contact_sheet": "contact_sheet.png",
        },
    }
    (out / "simulation.json").write_text(json.dumps(settings, indent=2, default=_json_default) + "\n")
    return summary


def _maybe_export(case: SimulatedCase, seed: int, index: int, share: float) -> DisplayExport | None:
    """The case's display export when its own stream picks it (never when ``share`` is 0)."""
    if share <= 0:
        return None
    rng = case_rng(seed, index, DISPLAY_EXPORT_STREAM)
    if rng.random() >= share:
        return None
    return display_export(case.counts, case.masks, rng, case.pixel_mm)
