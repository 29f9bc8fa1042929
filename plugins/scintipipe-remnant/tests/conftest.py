"""Fixtures for the remnant plugin's tests: a few simulated two-view studies (a clean plugin
environment, ``tiny_bundle`` and ``scintipipe_cli`` come from scintipipe's pytest plugin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scintipipe_remnant.center import REMNANT_CENTER
from scintipipe_remnant.simulator import RemnantCase, simulate_remnant_case


@pytest.fixture(scope="session")
def studies() -> dict[str, RemnantCase]:
    """One simulated study per label (fixed seeds)."""
    return {label: simulate_remnant_case(np.random.default_rng(seed), REMNANT_CENTER, label) for label, seed in (("absent", 11), ("present", 12))}


@pytest.fixture(scope="session")
def study_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three two-view studies written as two-frame NM DICOM files with labels.csv."""
    from scintipipe_remnant.dataset import write_studies

    out = tmp_path_factory.mktemp("remnant-studies")
    write_studies(out, 3, seed=5, class_mix={"absent": 1, "present": 2})
    return out
