"""Built-in DICOM results: a Comprehensive SR (``report_sr.dcm``) and a Secondary
Capture of the overlay (``overlay_sc.dcm``) that keep the source's patient and study.

Only for DICOM sources (a non-DICOM source has no patient or study to keep: the plugin
writes ``dicom_skipped.txt`` saying so); off with ``scintipipe run --no-dicom``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl


@hookimpl
def report_case(case: dict[str, Any], bundle: Any, out_dir: Path) -> list[Path] | None:
    """Write the SR and the Secondary Capture beside the other reports."""
    if not getattr(case.get("run_options"), "dicom", True):
        return None
    from scintipipe.report.dicom_source import read_source_dataset, source_path
    from scintipipe.report.dicom_sr import comprehensive_sr
    from scintipipe.report.secondary_capture import secondary_capture

    source = read_source_dataset(case)
    if source is None:
        note = out_dir / "dicom_skipped.txt"
        note.write_text(f"No DICOM SR or Secondary Capture: the source {source_path(case)} is not DICOM, so there is no patient or study to file them under.\n")
        return [note]
    sr_path, sc_path = out_dir / "report_sr.dcm", out_dir / "overlay_sc.dcm"
    comprehensive_sr(case, bundle, source).save_as(sr_path, enforce_file_format=True)
    secondary_capture(case, bundle, source).save_as(sc_path, enforce_file_format=True)
    return [sr_path, sc_path]
