"""Time to build and write one case's DICOM Comprehensive SR: scintipipe's assembly against
highdicom's plain ``ComprehensiveSR(evidence, content, ...)`` constructor, same content.

The case is a simulated centre-b scan (the source DICOM) with all eight regions drawn as
ellipses, every scan quantity, and a gate record classified against advice, so the SR has
every kind of content item. The two paths alternate in one process, so the machine's load
hits both; CPU time (``time.process_time``) per SR, best and median of ``--repeat``.
``tests/test_sr_speed_equivalence.py`` uses this module's case and reference path.

Usage:
    python benchmarks/sr_speed.py --repeat 20
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom


class Image(np.ndarray):
    """An array with the ``meta`` dict the reports read (as a MONAI ``MetaTensor`` has)."""

    meta: dict[str, Any]


def ellipse(shape: tuple[int, ...], centre: tuple[int, int], axes: tuple[int, int], angle: float = 0.0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 1, -1)
    return mask.astype(bool)


def simulated_source(folder: Path) -> Path:
    """One simulated centre-b DICOM scan in ``folder`` (written once)."""
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset

    path = folder / "case-00000.dcm"
    if not path.is_file():
        write_dataset("uptake4", UPTAKE4_SIMULATOR, UPTAKE4_SIMULATOR.labels, CENTERS["b"], folder, 1, 5, {"focal_increased": 1.0})
    return path


def sr_case(source_path: Path, spacing: tuple[float, float] | None = (2.21, 2.21), gate: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """A case after all stages on ``source_path``, and a stand-in bundle.

    ``gate`` defaults to a view classified against the gate's advice (every gate item in the SR).
    """
    from scintipipe.simulate import UPTAKE4_SIMULATOR

    counts = pydicom.dcmread(source_path).pixel_array.astype(np.float32)
    counts = counts[None] if counts.ndim == 2 else counts[:1]
    image = counts.view(Image)
    image.meta = {"spacing": spacing, "filename_or_obj": str(source_path), "frame_index": 0}
    shape = counts.shape[1:]
    rois = {
        "thyroid_right": ellipse(shape, (50, 70), (10, 20), 10),
        "thyroid_left": ellipse(shape, (78, 70), (10, 20), -10),
        "isthmus": ellipse(shape, (64, 78), (6, 3)),
        "nodules_hot": ellipse(shape, (80, 65), (3, 3)),
        "nodules_cold": ellipse(shape, (48, 75), (3, 4)),
        "salivary_right": ellipse(shape, (40, 20), (8, 6)),
        "salivary_left": ellipse(shape, (88, 20), (8, 6)),
        "background": ellipse(shape, (64, 110), (20, 5)),
    }
    quantities = {
        "uptake_percent": 1.234,
        "left_right_ratio": 0.91,
        "thyroid_to_background_ratio": 12.5,
        "thyroid_to_salivary_ratio": 3.25,
        "thyroid_net_counts": 123456.0,
        "thyroid_area_mm2": 901.5,
    }
    labels = list(UPTAKE4_SIMULATOR.labels)
    probabilities = np.linspace(1.0, 2.0, len(labels)) / np.linspace(1.0, 2.0, len(labels)).sum()
    prediction: dict[str, Any] = {"label": labels[-1], "confidence": float(probabilities[-1])}
    prediction.update({f"prob_{k}": float(p) for k, p in zip(labels, probabilities, strict=True)})
    if gate is None:
        gate = {
            "in_distribution": False,
            "ood_score": 91.4,
            "ood_threshold": 40.2,
            "overridden": [{"layer": "ood", "reason": "mahalanobis score 91.4 above the threshold 40.2"}],
            "against_advice": True,
        }
    case = {
        "image": image,
        "source": str(source_path),
        "segmentation": {"rois": rois, "quantities": quantities},
        "prediction": prediction,
        "gate": gate,
    }
    bundle = types.SimpleNamespace(name="uptake4", version="1.2.0", labels=labels, clinical_use=False)
    return case, bundle


def reference_sr(case: dict[str, Any], bundle: Any, source: pydicom.Dataset) -> Any:
    """The SR as highdicom's constructor makes it from the same content (the path before the speed-up)."""
    from highdicom.sr import ComprehensiveSR

    from scintipipe.report.dicom_sr import document_arguments, finish_document, measurement_report

    sr = ComprehensiveSR(evidence=[source], content=measurement_report(case, bundle, source), **document_arguments(case, bundle))
    finish_document(sr, source)
    return sr


def content_items(dataset: pydicom.Dataset) -> int:
    return sum(1 + content_items(item) for item in dataset.get("ContentSequence", []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    from scintipipe.report.dicom_source import read_source_dataset
    from scintipipe.report.dicom_sr import comprehensive_sr

    with tempfile.TemporaryDirectory() as folder:
        case, bundle = sr_case(simulated_source(Path(folder)))
        source = read_source_dataset(case)
        assert source is not None
        paths = {"highdicom constructor": reference_sr, "scintipipe": comprehensive_sr}
        build: dict[str, list[float]] = {name: [] for name in paths}
        write: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.repeat + 1):  # the first round warms up and is dropped
            for name, make in paths.items():
                start = time.process_time()
                sr = make(case, bundle, source)
                built = time.process_time()
                buffer = io.BytesIO()
                sr.save_as(buffer, enforce_file_format=True)
                build[name].append(built - start)
                write[name].append(time.process_time() - built)
        print(f"one SR: {content_items(sr)} content items, {len(buffer.getvalue()) / 1000:.1f} kB; CPU ms per SR, best / median of {args.repeat}")
        print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average {os.getloadavg()[0]:.1f}")
        for name in paths:
            b, w = build[name][1:], write[name][1:]
            print(
                f"{name:>22}: build {1000 * min(b):6.1f} / {1000 * statistics.median(b):6.1f}   write {1000 * min(w):6.1f} / {1000 * statistics.median(w):6.1f}"
            )
        ratio = statistics.median(build["highdicom constructor"][1:]) / statistics.median(build["scintipipe"][1:])
        print(f"build: {ratio:.1f}x faster (median)")


if __name__ == "__main__":
    main()
