"""Built-in HTML reports: ``report.html`` per case (with its PNG pictures and, with
``scintipipe run --pdf``, ``report.pdf``) and ``index.html`` per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl

#: files other reporters write, linked from the page's footer when present
LINKED_FILES = (("report.json", "report.json"), ("DICOM SR", "report_sr.dcm"), ("DICOM Secondary Capture", "overlay_sc.dcm"), ("PDF", "report.pdf"))


@hookimpl
def report_case(case: dict[str, Any], bundle: Any, out_dir: Path) -> list[Path]:
    """Write ``report.html`` and its pictures (and ``report.pdf`` when asked for)."""
    from scintipipe.report.chromium import print_to_pdf
    from scintipipe.report.dicom_source import read_source_dataset
    from scintipipe.report.html import render_case

    wants_pdf = bool(getattr(case.get("run_options"), "pdf", False))
    dicom = bool(getattr(case.get("run_options"), "dicom", True)) and read_source_dataset(case) is not None
    expected = {"report.json", *(("report_sr.dcm", "overlay_sc.dcm") if dicom else ()), *(("report.pdf",) if wants_pdf else ())}
    links = [(text, href) for text, href in LINKED_FILES if href in expected]
    page = render_case(case, bundle, out_dir, links)
    written = [page, *sorted(out_dir.glob("*.png"))]
    if wants_pdf:
        written.append(print_to_pdf(page, out_dir / "report.pdf"))
    return written


@hookimpl
def report_run(cases: list[dict[str, Any]], bundle: Any, out_dir: Path) -> list[Path]:
    """Write ``index.html`` with a row per case (none with ``--no-report``: no pages to link)."""
    if not any(case.get("case_dir") for case in cases):
        return []
    from scintipipe.report.html import render_index

    return [render_index(cases, bundle, out_dir)]
