"""``report.html`` per case and ``index.html`` per batch (Jinja2 templates in ``templates/``).

The pictures are PNG files beside the page (``scan.png``, ``regions.png``,
``heatmap_<label>.png``), so the page, its images and a PDF printed from it can be filed
or mailed as one folder.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from scintipipe import __version__
from scintipipe.explain import heatmap_on_scan
from scintipipe.report.content import (
    NOT_FOR_CLINICAL_USE,
    against_advice_text,
    explain_method_of,
    gate_of,
    gate_rows,
    input_uids,
    model_card_text,
    probabilities,
    quantity_rows,
)
from scintipipe.report.render import display_window, grey_scan, region_legend, scan_counts, with_heatmap, with_regions, write_png
from scintipipe.scan import describe

TEMPLATES = Path(__file__).parent / "templates"
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "occlusion": "Occlusion sensitivity"}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment over the shipped templates (HTML autoescaped), with the
    ``words`` (label in words) and ``when`` (acquisition date and time) filters."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["words"] = label_words
    env.filters["when"] = date_and_time
    return env


def label_words(label: str) -> str:
    """A class label as words: ``focal_increased`` -> ``focal increased``."""
    return str(label).replace("_", " ")


def date_and_time(value: str) -> str:
    """An ISO acquisition date-time for people: ``2024-11-06 09:04:27``.

    A time without a date (a de-identified source that dropped the dates) says so:
    ``15:34:36 (date not recorded)``.
    """
    text = str(value)
    date, separator, time = text.partition("T")
    if not separator:
        date, time = ("", text) if ":" in text else (text, "")
    time = time.split(".")[0]
    if date and time:
        return f"{date} {time}"
    return date or f"{time} (date not recorded)"


def safe_name(label: str) -> str:
    """A label as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def heatmaps_on_scan(case: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """Every heatmap of the case on the scan grid, the predicted class first."""
    counts, _ = scan_counts(case)
    scan_meta = getattr(case["image"], "meta", {}) or {}
    input_meta = getattr(case.get("input"), "meta", None)
    maps = dict(case.get("heatmaps") or {})
    predicted = case["prediction"]["label"]
    if case.get("heatmap") is not None:
        maps.setdefault(predicted, case["heatmap"])
    order = sorted(maps, key=lambda label: label != predicted)
    return [(label, heatmap_on_scan(maps[label], input_meta, scan_meta, counts.shape)) for label in order]


def write_pictures(case: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write the scan, regions and heatmap PNGs; return their file names for the page."""
    counts, spacing = scan_counts(case)
    window = display_window(counts)
    scan = grey_scan(counts, spacing, window)
    images: dict[str, Any] = {"scan": write_png(out_dir / "scan.png", scan).name, "regions": None, "heatmaps": []}
    rois = (case.get("segmentation") or {}).get("rois")
    if rois:
        images["regions"] = write_png(out_dir / "regions.png", with_regions(scan, rois)).name
    for label, heat in heatmaps_on_scan(case):
        path = write_png(out_dir / f"heatmap_{safe_name(label)}.png", with_heatmap(scan, heat))
        images["heatmaps"].append((label, path.name))
    return {"images": images, "window": window}


def render_case(case: dict[str, Any], bundle: Any, out_dir: Path, links: list[tuple[str, str]], context: Any = None) -> Path:
    """Write ``report.html`` (and its pictures) for one case.

    Args:
        case: the case after all stages.
        bundle: the bundle that classified it.
        out_dir: the case folder.
        links: ``(text, relative href)`` of the case's other files, for the footer.
        context: the run's context (its ``explain_method`` names the heatmaps' method).
    """
    pictures = write_pictures(case, out_dir)
    segmentation = case.get("segmentation") or {}
    scan = describe(case)
    method = explain_method_of(context)
    prediction = case["prediction"]
    legend = region_legend(segmentation.get("rois"))
    gate = gate_of(case)
    warning = against_advice_text(gate)
    html = (
        environment()
        .get_template("case.html")
        .render(
            title=("[against gate advice] " if warning else "") + f"{Path(case['source'].partition('#')[0]).name}: {prediction['label']}",
            css=(TEMPLATES / "report.css").read_text(),
            warning=warning,
            gate_rows=gate_rows(gate),
            notice=None if bundle.clinical_use else NOT_FOR_CLINICAL_USE,
            finding_label=label_words(prediction["label"]),
            source=case["source"],
            scan=scan,
            spacing=scan["spacing"],
            window=pictures["window"],
            images=pictures["images"],
            legend=legend,
            method=method,
            method_name=METHOD_NAMES.get(method, method),
            probabilities=probabilities(prediction, bundle.labels),
            prediction=prediction,
            quantities=quantity_rows(segmentation.get("quantities")),
            notes=segmentation.get("notes", []),
            segmentation_method=segmentation.get("method"),
            model=bundle.summary(),
            model_card=model_card_text(bundle),
            links=links,
            version=__version__,
            uids=input_uids(case),
        )
    )
    path = out_dir / "report.html"
    path.write_text(html)
    return path


def _figure(quantities: dict[str, float] | None, key: str, fmt: str) -> str:
    value = (quantities or {}).get(key)
    return fmt.format(value) if value is not None else "–"


def render_index(cases: list[dict[str, Any]], bundle: Any, out_dir: Path) -> Path:
    """Write ``index.html``: one row per case with its figures and a link to its report.

    Links and thumbnails come from each record's ``outputs``, the files the reporters
    wrote (relative to ``out_dir``).
    """
    rows = []
    for record in cases:
        prediction, quantities, case_dir = record["prediction"], record.get("quantities"), record.get("case_dir")
        gate = gate_of(record)
        outputs = set(record.get("outputs") or [])
        page, scan_png = f"{case_dir}/report.html", f"{case_dir}/scan.png"
        rows.append(
            {
                "name": case_dir or Path(record["source"]).name,
                "source": record["source"],
                "href": page if case_dir and page in outputs else None,
                "thumbnail": scan_png if case_dir and scan_png in outputs else None,
                "label": prediction["label"],
                "confidence": f"{100 * float(prediction['confidence']):.1f} %",
                "uptake": _figure(quantities, "uptake_percent", "{:.2f} %"),
                "left_right": _figure(quantities, "left_right_ratio", "{:.2f}"),
                "thyroid_background": _figure(quantities, "thyroid_to_background_ratio", "{:.1f}"),
                "thyroid_salivary": _figure(quantities, "thyroid_to_salivary_ratio", "{:.2f}"),
                "warning": against_advice_text(gate),
                "in_distribution": "–" if gate["in_distribution"] is None else ("yes" if gate["in_distribution"] else "no"),
            }
        )
    against = sum(1 for row in rows if row["warning"])
    html = (
        environment()
        .get_template("index.html")
        .render(
            css=(TEMPLATES / "report.css").read_text(),
            notice=None if bundle.clinical_use else NOT_FOR_CLINICAL_USE,
            warning=f"{against} of {len(rows)} views were classified against the input gate's advice (--accept-ood); their labels may be meaningless (rows marked below)."
            if against
            else None,
            cases=rows,
            model=bundle.summary(),
        )
    )
    path = out_dir / "index.html"
    path.write_text(html)
    return path
