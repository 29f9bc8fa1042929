"""Built-in DICOM results: a Comprehensive SR (``report_sr.dcm``) and a Secondary
Capture of the overlay (``overlay_sc.dcm``) that keep the source's patient and study.

Only for DICOM sources (a non-DICOM source has no patient or study to keep: the plugin
writes ``dicom_skipped.txt`` saying so, as it does when highdicom, the ``reports`` extra, is
not installed); off with ``scintipipe run --no-dicom``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scintipipe import hookimpl


@hookimpl
def add_options(register: Any) -> None:
    """``--dicom/--no-dicom``."""
    register.option("dicom", type=bool, default=True, help="Write a DICOM SR and Secondary Capture per DICOM source.", served=False)


@hookimpl
def report_case(case: dict[str, Any], bundle: Any, out_dir: Path, context: Any) -> list[Path] | None:
    """Write the SR and the Secondary Capture beside the other reports."""
    if not context.options.get("dicom", True):
        return None
    from scintipipe.extras import install_hint, missing_packages
    from scintipipe.report.dicom_source import read_source_dataset, source_path

    source = read_source_dataset(case)
    if source is None:
        note = out_dir / "dicom_skipped.txt"
        note.write_text(
            f"No DICOM SR or Secondary Capture: the source {source_path(case)} is not DICOM, so there is no patient or study to file them under.\n"
        )
        return [note]
    if missing_packages("reports"):  # a core install: the DICOM results are the `reports` extra
        note = out_dir / "dicom_skipped.txt"
        note.write_text(
            f"No DICOM SR or Secondary Capture: they need highdicom, which is not installed ({install_hint('reports')}; or run with --no-dicom).\n"
        )
        return [note]
    from scintipipe.report.dicom_sr import comprehensive_sr
    from scintipipe.report.secondary_capture import secondary_capture

    sr_path, sc_path = out_dir / "report_sr.dcm", out_dir / "overlay_sc.dcm"
    comprehensive_sr(case, bundle, source).save_as(sr_path, enforce_file_format=True)
    secondary_capture(case, bundle, source).save_as(sc_path, enforce_file_format=True)
    return [sr_path, sc_path]
