"""What every report format says about a case: regions, quantities, identifiers, notices.

``report.json``, ``report.html``, the DICOM SR and the batch index all draw on these
functions, so they never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NOT_FOR_CLINICAL_USE = "Not for clinical use: this model is a demonstration (see its model card)."

#: how each quantity is shown: label, unit, decimals
QUANTITY_DISPLAY: dict[str, tuple[str, str, int]] = {
    "uptake_percent": ("Thyroid uptake (99mTc, of injected activity)", "%", 2),
    "thyroid_net_counts": ("Thyroid net counts (background subtracted)", "counts", 0),
    "thyroid_counts": ("Thyroid counts", "counts", 0),
    "thyroid_area_mm2": ("Thyroid area", "mm²", 0),
    "thyroid_right_counts": ("Right lobe counts", "counts", 0),
    "thyroid_right_area_mm2": ("Right lobe area", "mm²", 0),
    "thyroid_left_counts": ("Left lobe counts", "counts", 0),
    "thyroid_left_area_mm2": ("Left lobe area", "mm²", 0),
    "isthmus_counts": ("Isthmus counts", "counts", 0),
    "isthmus_area_mm2": ("Isthmus area", "mm²", 0),
    "left_right_ratio": ("Left / right lobe (net counts)", "ratio", 2),
    "thyroid_to_background_ratio": ("Thyroid / background (counts per pixel)", "ratio", 2),
    "thyroid_to_salivary_ratio": ("Thyroid / salivary glands (counts per pixel)", "ratio", 2),
    "background_counts_per_pixel": ("Background", "counts/pixel", 2),
    "salivary_counts": ("Salivary gland counts", "counts", 0),
    "salivary_area_mm2": ("Salivary gland area", "mm²", 0),
    "hot_nodules": ("Hot spots (nodule candidates)", "", 0),
    "cold_nodules": ("Cold defects (nodule candidates)", "", 0),
    "syringe_full_counts_per_s": ("Full syringe count rate", "counts/s", 1),
    "syringe_empty_counts_per_s": ("Empty syringe count rate", "counts/s", 1),
    "syringe_full_to_scan_minutes": ("Full syringe to scan", "min", 1),
}


def roi_summary(rois: dict[str, np.ndarray] | None, spacing: tuple[float, float] | None) -> dict[str, dict[str, Any]]:
    """Per region: pixels, area in mm², centroid and bounding box (rows, columns).

    Empty regions are listed with ``pixels`` 0 so a reader sees what was looked for.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, mask in (rois or {}).items():
        mask = np.asarray(mask, bool)
        pixels = int(mask.sum())
        entry: dict[str, Any] = {"pixels": pixels}
        if spacing is not None:
            entry["area_mm2"] = round(pixels * spacing[0] * spacing[1], 2)
        if pixels:
            rows, cols = np.nonzero(mask)
            entry["centroid_row_col"] = [round(float(rows.mean()), 2), round(float(cols.mean()), 2)]
            entry["bbox_row_col"] = [int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())]
        out[name] = entry
    return out


def input_uids(case: dict[str, Any]) -> dict[str, Any]:
    """The source's DICOM identifiers (``None`` for non-DICOM sources)."""
    meta = getattr(case["image"], "meta", {}) or {}
    return {
        "study_instance_uid": meta.get("study_instance_uid"),
        "series_instance_uid": meta.get("series_instance_uid"),
        "sop_instance_uid": meta.get("sop_instance_uid"),
    }


def quantity_rows(quantities: dict[str, float] | None) -> list[dict[str, str]]:
    """Quantities as display rows ``{"key", "label", "value", "unit"}``, known ones first."""
    quantities = quantities or {}
    keys = [k for k in QUANTITY_DISPLAY if k in quantities] + sorted(k for k in quantities if k not in QUANTITY_DISPLAY)
    rows = []
    for key in keys:
        label, unit, decimals = QUANTITY_DISPLAY.get(key, (key.replace("_", " "), "", 3))
        value = quantities[key]
        text = f"{value:,.{decimals}f}" if isinstance(value, (int, float)) and np.isfinite(value) else str(value)
        rows.append({"key": key, "label": label, "value": text, "unit": unit})
    return rows


def model_card_text(bundle: Any, limit: int = 1500) -> str:
    """The beginning of the bundle's model card (``docs/README.md``), or ``""``."""
    path = Path(bundle.root) / "docs" / "README.md"
    if not path.is_file():
        return ""
    text = path.read_text(errors="replace").strip()
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n…"


def probabilities(prediction: dict[str, Any], labels: list[str]) -> list[tuple[str, float]]:
    """``(label, probability)`` in the bundle's label order."""
    return [(label, float(prediction.get(f"prob_{label}", 0.0))) for label in labels]


def explain_method_of(context: Any = None) -> str:
    """The explain method of the run's heatmaps (:func:`~scintipipe.builtin.explain_gradcam.chosen_method`).

    Args:
        context: the run's :class:`~scintipipe.context.RunContext`, or ``None``.
    """
    from scintipipe.builtin.explain_gradcam import chosen_method

    return chosen_method(getattr(context, "options", None), getattr(context, "bundle", None))


# ---- the input gate -------------------------------------------------------------------


def gate_of(case: dict[str, Any]) -> dict[str, Any]:
    """The case's gate record (``case["gate"]``), with every key present.

    Keys: ``in_distribution`` (``True``/``False``, ``None`` when the bundle ships no
    learned score), ``ood_score``, ``ood_threshold``, ``overridden`` (the refusals
    ``--accept-ood`` set aside, each ``{"layer", "reason"}``) and ``against_advice``.
    """
    gate = dict(case.get("gate") or {})
    return {
        "in_distribution": gate.get("in_distribution"),
        "ood_score": gate.get("ood_score"),
        "ood_threshold": gate.get("ood_threshold"),
        "overridden": [dict(refusal) for refusal in gate.get("overridden") or []],
        "against_advice": bool(gate.get("against_advice")),
    }


def gate_reasons(gate: dict[str, Any] | None) -> str:
    """The overridden refusals as ``"<layer>: <reason>; ..."`` (``""`` when none)."""
    return "; ".join(f"{refusal.get('layer')}: {refusal.get('reason')}" for refusal in (gate or {}).get("overridden") or [])


def against_advice_text(gate: dict[str, Any] | None) -> str | None:
    """The warning every report shows for a view classified against the gate's advice, else ``None``.

    Example:
        >>> against_advice_text({"against_advice": True, "overridden": [{"layer": "ood", "reason": "score 91.0 above 40.0"}]})
        "Classified against the input gate's advice (--accept-ood): ood: score 91.0 above 40.0; the label may be meaningless."
    """
    if not (gate or {}).get("against_advice"):
        return None
    reasons = gate_reasons(gate) or "a gate layer refused this view"
    return f"Classified against the input gate's advice (--accept-ood): {reasons}; the label may be meaningless."


def gate_rows(gate: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The gate's verdict as ``(label, value)`` rows for a reader.

    Example:
        >>> gate_rows({"in_distribution": True, "ood_score": 12.345, "ood_threshold": 40.0})
        [('In distribution', 'yes'), ('Out-of-distribution score', '12.35 (threshold 40.00; above it a view is out of distribution)')]
    """
    gate = gate or {}
    known = gate.get("in_distribution")
    rows = [("In distribution", "not assessed (the bundle ships no learned score)" if known is None else ("yes" if known else "no"))]
    score, threshold = gate.get("ood_score"), gate.get("ood_threshold")
    if score is not None:
        limit = f"threshold {float(threshold):.2f}; above it a view is out of distribution" if threshold is not None else "no threshold"
        rows.append(("Out-of-distribution score", f"{float(score):.2f} ({limit})"))
    if gate.get("against_advice"):
        rows.append(("Gate overridden (--accept-ood)", gate_reasons(gate)))
    return rows
