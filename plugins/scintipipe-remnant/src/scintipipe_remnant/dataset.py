"""Write two-view studies: one NM file per study with an anterior and a posterior frame.

The core's ``scintipipe simulate --task remnant`` writes the anterior view only (its
writer makes single-frame files). ``scintipipe remnant-simulate`` writes what a camera
does for this protocol: a two-frame NM object, frame 1 from the anterior detector and
frame 2 from the posterior one (Detector Information Sequence with view codes), which
the runner reads as ``case-00000.dcm#anterior`` and ``case-00000.dcm#posterior``.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.api import VIEW_CODES, assign_labels, case_identity, case_rng, nm_dataset, write_dicom
from scintipipe_remnant.center import REMNANT_CENTER
from scintipipe_remnant.simulator import LABELS, PAPER_CLASS_MIX, RemnantCase, simulate_remnant_case


def two_view_dataset(case: RemnantCase, identity: Any) -> Any:
    """A two-frame NM dataset: anterior then posterior."""
    front, back = case.counts, case.posterior.counts
    ds = nm_dataset(
        front, REMNANT_CENTER, identity, max(case.frame_duration_s, case.posterior.frame_duration_s), float(case.metadata["injected_mbq"])
    )
    pixels = np.ascontiguousarray(np.stack([front, back]), dtype=np.uint16)
    ds.NumberOfFrames = 2
    ds.SeriesDescription = "ANT POST NECK"
    ds.DetectorVector = [1, 2]
    ds.EnergyWindowVector = [1, 1]
    ds.NumberOfDetectors = 2
    posterior = copy.deepcopy(ds.DetectorInformationSequence[0])
    view = posterior.ViewCodeSequence[0]
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = VIEW_CODES["POSTERIOR"]
    ds.DetectorInformationSequence.append(posterior)
    ds.CountsAccumulated = int(pixels.sum(dtype=np.int64))
    ds.SmallestImagePixelValue = int(pixels.min())
    ds.LargestImagePixelValue = int(pixels.max())
    ds.PixelData = pixels.tobytes()
    return ds


def write_studies(
    out: Path, n: int, seed: int = 0, class_mix: Mapping[str, float] | None = None, progress: Callable[[Iterable[int]], Iterable[int]] | None = None
) -> dict[str, int]:
    """Simulate ``n`` two-view studies into ``out`` (``case-NNNNN.dcm``, ``labels.csv``,
    ``truth.csv``, ``simulation.json``). No picture goes into ``out``: ``scintipipe run``
    would read a PNG there as a scan (``benchmarks/make_figures.py`` draws the pictures).

    Returns:
        Studies per label.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = assign_labels(LABELS, class_mix or PAPER_CLASS_MIX, n, seed)
    rows = []
    for index in progress(range(n)) if progress else range(n):
        case = simulate_remnant_case(case_rng(seed, index), REMNANT_CENTER, labels[index])
        identity = case_identity("remnant", seed, REMNANT_CENTER, index, float(case.metadata["minutes_post_injection"]))
        name = f"case-{index:05d}.dcm"
        write_dicom(two_view_dataset(case, identity), out / name)
        rows.append(
            {
                "file": name,
                "label": case.label,
                "true_uptake_percent": case.metadata["true_uptake_percent"],
                "remnant_sites": " ".join(case.metadata["remnant_sites"]),
                "oesophagus": case.metadata["oesophagus"],
                "injected_mbq": case.metadata["injected_mbq"],
                "minutes_post_injection": case.metadata["minutes_post_injection"],
            }
        )
    with open(out / "labels.csv", "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([("file", "label"), *((r["file"], r["label"]) for r in rows)])
    with open(out / "truth.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts = {label: labels.count(label) for label in LABELS}
    (out / "simulation.json").write_text(
        json.dumps({"task": "remnant", "n": n, "seed": seed, "views": ["anterior", "posterior"], "counts_per_label": counts}, indent=2) + "\n"
    )
    return counts
