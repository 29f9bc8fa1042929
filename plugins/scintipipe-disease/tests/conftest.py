"""Fixtures for the disease plugin's tests: a few simulated scans per class (a clean plugin
environment, ``tiny_bundle`` and ``scintipipe_cli`` come from scintipipe's pytest plugin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scintipipe.api import CENTERS, run_cli
from scintipipe_disease.simulator import LABELS, simulate_disease_case


@pytest.fixture(scope="session")
def cases_by_label():
    """Ten simulated cases per label (fixed seeds, centre a)."""
    return {
        label: [simulate_disease_case(np.random.default_rng(1000 + 17 * i + j), CENTERS["a"], label) for j in range(10)]
        for i, label in enumerate(LABELS)
    }


@pytest.fixture(scope="session")
def fresh_scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh balanced set (seed unseen in training, centre b = the 'external' camera):
    10 scans per class, written as DICOM with labels.csv by ``scintipipe simulate``."""
    out = tmp_path_factory.mktemp("disease-fresh") / "scans"
    run_cli("simulate", "--task", "disease", "--n", "40", "--seed", "4242", "--center", "b", "--class-mix", "balanced", "--out", out, "--no-progress")
    return out
