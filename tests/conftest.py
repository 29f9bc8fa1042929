"""Shared fixtures of the core's tests.

``tiny_bundle`` (a shape-only bundle with random weights: its outputs are NOT meaningful),
``scintipipe_cli`` and the clean plugin environment come from :mod:`scintipipe.testing`,
the pytest plugin scintipipe installs for its own and its plugins' tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE_SCANS = REPO.parent / "shared" / "reference-scans"


@pytest.fixture
def reference_scans() -> Path:
    """The real scans in ../shared/reference-scans; skips when absent."""
    if not REFERENCE_SCANS.is_dir():
        pytest.skip("../shared/reference-scans is not present")
    return REFERENCE_SCANS
