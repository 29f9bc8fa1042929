"""Only the medicine differs between classes: every nuisance has one shared distribution."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
from scintipipe.simulate.normal import normal_rule, simulate_normal_case
from scintipipe.simulate.nuisance import TEXTURE_SIGMA, sample_nuisance
from scintipipe.simulate.uptake4 import LABELS, meets_rule

#: a fast small camera (64 x 64, 3.75 mm pixels on a 192-pixel fine grid)
SMALL = replace(CENTERS["b"], name="small", matrix=64, pixel_mm=3.75)
PER_CLASS = 60


@pytest.fixture(scope="module")
def nuisance_by_label() -> dict[str, list[dict]]:
    """60 cases per class, each class from its own seeds (so draws are independent)."""
    out = {}
    for k, label in enumerate(LABELS):
        cases = [UPTAKE4_SIMULATOR(np.random.default_rng(np.random.SeedSequence(500 + k, spawn_key=(i,))), SMALL, label) for i in range(PER_CLASS)]
        for case in cases:
            assert meets_rule(label, case.metadata["findings"])
        out[label] = [case.metadata["nuisance"] for case in cases]
    return out


def test_nuisance_is_a_flat_dict_of_numbers_and_flags(nuisance_by_label) -> None:
    keys = None
    for records in nuisance_by_label.values():
        for record in records:
            assert all(isinstance(value, (bool, float)) for value in record.values()), record
            keys = keys or set(record)
            assert set(record) == keys  # the same variables for every case and class
    for name in (
        "texture_sigma",
        "salivary_scale",
        "parotid",
        "blood_pool_scale",
        "head_excess",
        "gland_right_scale",
        "gland_isthmus",
        "gland_pyramidal",
        "habitus_scale",
        "oesophagus_visible",
        "injected_mbq",
        "anchor_below_centre_mm",
    ):
        assert name in keys


def test_no_nuisance_variable_separates_the_classes(nuisance_by_label) -> None:
    names = sorted(nuisance_by_label[LABELS[0]][0])
    tests = 0
    worst = (1.0, "")
    for name in names:
        samples = {label: np.array([float(r[name]) for r in records]) for label, records in nuisance_by_label.items()}
        if isinstance(nuisance_by_label[LABELS[0]][0][name], bool):
            table = np.array([[values.sum(), len(values) - values.sum()] for values in samples.values()])
            if table[:, 0].sum() and table[:, 1].sum():
                p = stats.chi2_contingency(table)[1]
                tests += 1
                worst = min(worst, (p, name))
            continue
        for i, a in enumerate(LABELS):
            for b in LABELS[i + 1 :]:
                p = stats.ks_2samp(samples[a], samples[b]).pvalue
                tests += 1
                worst = min(worst, (p, f"{name} {a} vs {b}"))
        medians = [np.median(v) for v in samples.values()]
        spread = np.percentile(np.concatenate(list(samples.values())), 75) - np.percentile(np.concatenate(list(samples.values())), 25)
        assert max(medians) - min(medians) <= 0.8 * spread + 1e-9, (name, medians, spread)  # ~6 standard errors at n = 60
    # Bonferroni: one false alarm in ~100 runs of the whole table under the null
    assert worst[0] > 0.01 / tests, worst


def test_the_same_seed_gives_the_same_patient_for_every_label() -> None:
    shared = None
    for label in LABELS:
        nuisance = UPTAKE4_SIMULATOR(np.random.default_rng(42), SMALL, label).metadata["nuisance"]
        patient = {
            k: v
            for k, v in nuisance.items()
            if not k.endswith("_jitter")
            and k not in ("injected_mbq", "minutes_post_injection", "collimator_gap_mm", "anchor_below_centre_mm", "anchor_right_of_centre_mm")
        }
        shared = shared or patient
        assert patient == shared


def test_texture_is_wide_and_drawn_from_one_range() -> None:
    sigmas = np.array([sample_nuisance(np.random.default_rng(i)).texture_sigma for i in range(300)])
    assert TEXTURE_SIGMA == (0.03, 0.3)
    assert sigmas.min() >= 0.03 and sigmas.max() <= 0.3
    assert sigmas.min() < 0.04 and sigmas.max() > 0.25


def test_normal_cases_meet_the_normal_rule() -> None:
    for seed in range(12):
        case = simulate_normal_case(np.random.default_rng(seed), SMALL)
        assert normal_rule(case.metadata["findings"]), case.metadata["findings"]
        assert "texture_sigma" in case.metadata["nuisance"]
