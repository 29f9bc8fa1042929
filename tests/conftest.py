"""Shared fixtures of the core's tests.

``tiny_bundle`` (a shape-only bundle with random weights: its outputs are NOT meaningful),
``scintipipe_cli`` and the clean plugin environment come from :mod:`scintipipe.testing`,
the pytest plugin scintipipe installs for its own and its plugins' tests.
"""

from __future__ import annotations

import re
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


@pytest.fixture(scope="session")
def docs_plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-file plugin printed in docs/plugins.md, saved as a plugins folder."""
    text = (Path(__file__).resolve().parents[1] / "docs/plugins.md").read_text()
    code = re.search(r"## A complete one-file plugin.*?```python\n(.*?)```", text, re.S).group(1)
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "raw_camera.py").write_text(code)
    return folder
