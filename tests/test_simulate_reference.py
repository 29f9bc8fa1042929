"""The simulator against the real Siemens scan in ../shared/reference-scans (skips without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scintipipe.simulate import CENTERS
from scintipipe.simulate.measure import SIEMENS_REFERENCE_REGIONS, flat_box, measure_scan, regions_from_masks
from scintipipe.simulate.normal import simulate_normal_case

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference-scans"
SIEMENS = REFERENCE / "siemens-thyroid" / "thyroid_99mTc_ANT_deid.dcm"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not SIEMENS.exists(), reason="../shared/reference-scans is not here"),
]


@pytest.fixture(scope="module")
def real_and_simulated():
    import pydicom

    ds = pydicom.dcmread(SIEMENS)
    real = measure_scan(ds.pixel_array, SIEMENS_REFERENCE_REGIONS, float(ds.PixelSpacing[0]))
    simulated = []
    # 48 draws: the range of 24 is a noisy estimate of the simulated population's support
    # (the real gland sits near its edges: smaller and hotter than most simulated ones)
    for i in range(48):
        case = simulate_normal_case(np.random.default_rng(np.random.SeedSequence(11, spawn_key=(i,))), CENTERS["siemens"])
        simulated.append(measure_scan(case.counts, regions_from_masks(case.masks, case.pixel_mm, flat_box(256)), case.pixel_mm))
    return real, simulated


@pytest.mark.parametrize(
    "measure",
    ["background_mean", "thyroid_count_fraction", "thyroid_to_background", "flat_variance_to_mean", "right_length_mm", "max_counts"],
)
def test_real_scan_lies_within_the_simulated_range(real_and_simulated, measure: str) -> None:
    real, simulated = real_and_simulated
    values = [m[measure] for m in simulated]
    tolerance = 1e-6 * abs(real[measure])  # lengths are pixel counts times a float32 spacing
    assert min(values) - tolerance <= real[measure] <= max(values) + tolerance, (measure, real[measure], min(values), max(values))


def test_siemens_profile_matches_the_real_acquisition() -> None:
    import pydicom

    ds = pydicom.dcmread(SIEMENS)
    profile = CENTERS["siemens"]
    assert (profile.matrix, profile.pixel_mm) == (ds.Rows, pytest.approx(float(ds.PixelSpacing[0]), abs=1e-4))
    assert abs(profile.count_preset - int(ds.pixel_array.sum())) < 0.01 * profile.count_preset
    low, high = profile.camera.energy_window_kev
    window = ds.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert low == pytest.approx(float(window.EnergyWindowLowerLimit), abs=1.0)
    assert high == pytest.approx(float(window.EnergyWindowUpperLimit), abs=1.0)
