"""Headless Chromium for printing reports to PDF (and for checking them in tests).

Chromium is a system package (Debian: ``apt-get install -y chromium``), not a Python
one; :func:`find_chromium` returns ``None`` when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable, or ``None``."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_headless(page: Path, *arguments: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local page with a throw-away profile.

    Args:
        page: the HTML file.
        *arguments: extra flags (``--print-to-pdf=...``, ``--screenshot=...``, ``--dump-dom``).
        timeout_s: give up after this long.

    Raises:
        FileNotFoundError: Chromium is not installed.
        subprocess.CalledProcessError: Chromium failed.
    """
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="scintipipe-chromium-") as profile:
        command = [binary, *HEADLESS_FLAGS, f"--user-data-dir={profile}", *arguments, Path(page).resolve().as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)


def print_to_pdf(page: Path, pdf: Path) -> Path:
    """Print an HTML page to PDF with Chromium (A4, no header or footer)."""
    run_headless(page, f"--print-to-pdf={Path(pdf).resolve()}", "--no-pdf-header-footer", "--virtual-time-budget=5000")
    if not Path(pdf).is_file() or Path(pdf).stat().st_size == 0:
        raise OSError(f"Chromium wrote no PDF for {page}")
    return Path(pdf)
