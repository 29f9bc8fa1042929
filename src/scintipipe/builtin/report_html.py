"""Built-in HTML reports: ``report.html`` per case (with its PNG pictures and, with
``scintipipe run --pdf``, ``report.pdf``) and ``index.html`` per batch.

The case page links the files the other reporters really wrote for the case (``report.json``,
the DICOM SR and Secondary Capture, a plugin's files): its ``report_case`` is a pluggy
``wrapper``, so it runs around every other reporter and gets their returned paths.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from scintipipe import hookimpl

#: how the page's footer names files other reporters write; other files go by their name
LINK_TEXTS = {"report.json": "report.json", "report_sr.dcm": "DICOM SR", "overlay_sc.dcm": "DICOM Secondary Capture", "report.pdf": "PDF"}


def case_links(written: list[Path], case_dir: Path) -> list[tuple[str, str]]:
    """``(text, href relative to the case folder)`` for each file written, the known ones first, in :data:`LINK_TEXTS` order."""
    order = list(LINK_TEXTS)
    hrefs = sorted(
        {Path(os.path.relpath(path, case_dir)).as_posix() for path in written},
        key=lambda href: (order.index(href) if href in order else len(order), href),
    )
    return [(LINK_TEXTS.get(href, href), href) for href in hrefs]


def check_chromium(options: dict[str, Any]) -> None:
    """Refuse ``--pdf`` without Chromium."""
    from scintipipe.report.chromium import find_chromium

    if options.get("pdf") and find_chromium() is None:
        raise ValueError("--pdf needs Chromium (Debian: apt-get install -y chromium)")


@hookimpl
def add_options(register: Any) -> None:
    """``--pdf``."""
    register.option("pdf", is_flag=True, help="Also print each case report to PDF (needs Chromium).", served=False)
    register.check(check_chromium)


# A wrapper, not a plain implementation: the ordering among reporters is explicit. Everything
# before `yield` runs before the other reporters of the case, everything after runs once they
# have all returned, so the page links exactly the files they wrote (no guessing of the DICOM
# reporter's file names).
@hookimpl(wrapper=True)
def report_case(case: dict[str, Any], bundle: Any, out_dir: Path, context: Any) -> Generator[None, list[list[Path]], list[list[Path]]]:
    """Write ``report.html`` and its pictures (and ``report.pdf`` when asked for), linking the other reporters' files."""
    from scintipipe.report.chromium import print_to_pdf
    from scintipipe.report.html import render_case

    results = yield
    others = [Path(path) for paths in results or [] for path in paths or []]
    wants_pdf = bool(context.options.get("pdf"))
    pdf_path = out_dir / "report.pdf"
    page = render_case(case, bundle, out_dir, case_links([*others, *([pdf_path] if wants_pdf else [])], out_dir), context)
    written = [page, *(png for png in sorted(out_dir.glob("*.png")) if png not in others)]  # the pictures render_case drew
    if wants_pdf:
        written.append(print_to_pdf(page, pdf_path))
    return [*results, written]


@hookimpl
def report_run(cases: list[dict[str, Any]], bundle: Any, out_dir: Path) -> list[Path]:
    """Write ``index.html`` with a row per case (none with ``--no-report``: no pages to link)."""
    if not any(case.get("case_dir") for case in cases):
        return []
    from scintipipe.report.html import render_index

    return [render_index(cases, bundle, out_dir)]
