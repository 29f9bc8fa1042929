"""Shared fixtures. The tiny bundle has random weights: its outputs are NOT meaningful and
no test may treat them as a classification result, only as the right shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundle_factory import make_tiny_bundle

REPO = Path(__file__).resolve().parents[1]
REFERENCE_SCANS = REPO.parent / "shared" / "reference-scans"


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shape-only bundle folder (random weights)."""
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture
def reference_scans() -> Path:
    """The real scans in ../shared/reference-scans; skips when absent."""
    if not REFERENCE_SCANS.is_dir():
        pytest.skip("../shared/reference-scans is not present")
    return REFERENCE_SCANS


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCINTIPIPE_PLUGINS", "SCINTIPIPE_DISABLE_PLUGINS", "SCINTIPIPE_TRACE_HOOKS", "SCINTIPIPE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)
