"""Built-in ``report`` stage: ``report.json`` with everything machine-readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scintipipe import __version__, hookimpl

if TYPE_CHECKING:
    import numpy as np


def explanation_summary(heatmap: np.ndarray | None, method: str = "gradcam", classes: list[str] | None = None) -> dict[str, Any] | None:
    """Where the saliency map peaks, in fractions of the input grid (row, column)."""
    if heatmap is None:
        return None
    import numpy as np

    heatmap = np.asarray(heatmap)
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    summary = {
        "method": method,
        "peak_row_fraction": round(float(row) / heatmap.shape[0], 4),
        "peak_col_fraction": round(float(col) / heatmap.shape[1], 4),
        "fraction_above_half": round(float((heatmap > 0.5).mean()), 4),
    }
    if classes is not None:
        summary["classes"] = classes
    return summary


def case_report(case: dict[str, Any], bundle: Any, context: Any = None) -> dict[str, Any]:
    """Build the JSON-serialisable report of one case (``context``: the run's, for the explain method)."""
    from scintipipe.report.content import NOT_FOR_CLINICAL_USE, against_advice_text, explain_method_of, gate_of, input_uids, roi_summary
    from scintipipe.scan import describe

    segmentation = case.get("segmentation") or {}
    scan = describe(case)
    spacing = tuple(scan["spacing"]) if scan["spacing"] else None
    report = {
        "scintipipe_version": __version__,
        "source": case["source"],
        "scan": scan,
        "input_uids": input_uids(case),
        "prediction": case["prediction"],
        "quantities": segmentation.get("quantities"),
        "rois": roi_summary(segmentation.get("rois"), spacing) if segmentation else None,
        "segmentation_method": segmentation.get("method"),
        "segmenter": segmentation.get("segmenter"),
        "notes": [*(case["image"].meta.get("notes") or []), *segmentation.get("notes", [])],  # loader's, then segmenter's
        "explanation": explanation_summary(case.get("heatmap"), explain_method_of(context), sorted(case.get("heatmaps") or {}) or None),
        "model": bundle.summary(),
        "gate": gate_of(case),
        "provenance": case.get("provenance"),
    }
    warning = against_advice_text(report["gate"])
    if warning:
        report["warning"] = warning
    if not bundle.clinical_use:
        report["notice"] = NOT_FOR_CLINICAL_USE
    return report


@hookimpl
def report_case(case: dict[str, Any], bundle: Any, out_dir: Path, context: Any) -> list[Path]:
    """Write ``out_dir/report.json``."""
    path = out_dir / "report.json"
    path.write_text(json.dumps(case_report(case, bundle, context), indent=2, default=str) + "\n")
    return [path]
