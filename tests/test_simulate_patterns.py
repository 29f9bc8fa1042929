"""Each uptake4 pattern shows its defining property (the definitions of Zhao et al. 2021, as the
labelling rules of :mod:`scintipipe.simulate.uptake4`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
from scintipipe.simulate.uptake4 import CLASS_MIX_CENTER_A, CLASS_MIX_CENTER_B, LABELS, meets_rule

SEEDS = range(6)
SALIVARY = ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left")


def simulate(label: str, seed: int):
    return UPTAKE4_SIMULATOR(np.random.default_rng(1000 + seed), CENTERS["a"], label)


def thyroid_to_salivary(case) -> float:
    """Mean expected counts per pixel in the gland over the hottest salivary gland's."""
    salivary = max(case.expected[case.masks[name]].mean() for name in SALIVARY)
    return float(case.expected[case.masks["thyroid"]].mean() / salivary)


def lobe_cv(case) -> float:
    """Coefficient of variation of the expected counts inside the eroded lobes."""
    lobes = ndimage.binary_erosion(case.masks["thyroid_right"] | case.masks["thyroid_left"], iterations=3)
    values = case.expected[lobes]
    return float(values.std() / values.mean())


def test_labels_and_default_mixes_follow_seed_002() -> None:
    assert UPTAKE4_SIMULATOR.labels == LABELS == ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous")
    assert UPTAKE4_SIMULATOR.default_class_mix("a") == pytest.approx(CLASS_MIX_CENTER_A)
    assert UPTAKE4_SIMULATOR.default_class_mix("b") == pytest.approx(CLASS_MIX_CENTER_B)
    assert CLASS_MIX_CENTER_A["diffusely_increased"] == pytest.approx(0.4214, abs=1e-4)
    with pytest.raises(ValueError):
        UPTAKE4_SIMULATOR(np.random.default_rng(0), CENTERS["a"], "normal")


@pytest.mark.parametrize("seed", SEEDS)
def test_diffusely_increased_thyroid_far_above_salivary(seed: int) -> None:
    case = simulate("diffusely_increased", seed)
    assert thyroid_to_salivary(case) > 2.0
    assert case.metadata["true_uptake_percent"] >= 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_diffusely_decreased_thyroid_below_salivary(seed: int) -> None:
    case = simulate("diffusely_decreased", seed)
    assert thyroid_to_salivary(case) < 1.0
    assert case.metadata["true_uptake_percent"] < 0.4


@pytest.mark.parametrize("seed", SEEDS)
def test_focal_hottest_thyroid_region_is_the_nodule(seed: int) -> None:
    case = simulate("focal_increased", seed)
    smooth = ndimage.uniform_filter(case.expected, 5)
    gland = case.masks["thyroid"] | case.masks["nodules"]
    hottest = np.unravel_index(np.argmax(np.where(gland, smooth, -1)), smooth.shape)
    assert ndimage.binary_dilation(case.masks["nodules_hot"], iterations=2)[hottest]
    rest = case.masks["thyroid"] & ~ndimage.binary_dilation(case.masks["nodules"], iterations=6)
    if rest.any():
        assert case.expected[case.masks["nodules_hot"]].mean() > 1.8 * case.expected[rest].mean()


def test_diffusely_increased_is_on_average_far_above_salivary() -> None:
    ratios = [thyroid_to_salivary(simulate("diffusely_increased", seed)) for seed in range(12)]
    assert np.median(ratios) > 4.0


def test_heterogeneous_gland_is_more_uneven_than_the_same_patients_diffuse_goitre() -> None:
    # the same seed gives the same patient (texture included): only the nodules differ
    ratios = []
    for seed in SEEDS:
        heterogeneous, diffuse = simulate("heterogeneous", seed), simulate("diffusely_increased", seed)
        assert heterogeneous.metadata["nuisance"]["texture_sigma"] == diffuse.metadata["nuisance"]["texture_sigma"]
        ratios.append(lobe_cv(heterogeneous) / lobe_cv(diffuse))
    assert min(ratios) > 1.0
    assert np.median(ratios) > 1.4


@pytest.mark.parametrize("label", LABELS)
def test_drawn_cases_meet_their_labelling_rule(label: str) -> None:
    for seed in range(20):
        findings = simulate(label, seed).metadata["findings"]
        assert meets_rule(label, findings), findings
        assert sum(meets_rule(other, findings) for other in LABELS) == 1  # the rules do not overlap


def test_texture_does_not_define_heterogeneity() -> None:
    sigmas = {label: [simulate(label, 100 + 7 * i + j).metadata["nuisance"]["texture_sigma"] for j in range(12)] for i, label in enumerate(LABELS)}
    assert all(0.03 <= s <= 0.3 for values in sigmas.values() for s in values)
    assert max(np.median(v) for v in sigmas.values()) < 3 * min(np.median(v) for v in sigmas.values())
    assert max(sigmas["diffusely_increased"]) > min(sigmas["heterogeneous"])  # ranges overlap


def test_heterogeneous_gland_has_hot_and_cold_nodules_and_is_enlarged() -> None:
    for seed in SEEDS:
        case = simulate("heterogeneous", seed)
        assert case.metadata["hot_nodules"] >= 1 and case.metadata["cold_nodules"] >= 1
        assert case.masks["nodules_hot"].any() and case.masks["nodules_cold"].any()
    normal_lengths = [np.mean(list(simulate("diffusely_decreased", s).metadata["lobe_length_mm"].values())) for s in SEEDS]
    goitre_lengths = [np.mean(list(simulate("heterogeneous", s).metadata["lobe_length_mm"].values())) for s in SEEDS]
    assert np.mean(goitre_lengths) > 1.2 * np.mean(normal_lengths)


def test_lobe_sizes_stay_in_published_ranges_for_normal_sized_glands() -> None:
    for seed in SEEDS:
        case = simulate("diffusely_decreased", seed)
        for side in ("right", "left"):
            assert 30 <= case.metadata["lobe_length_mm"][side] <= 75
            assert 9 <= case.metadata["lobe_width_mm"][side] <= 26


def test_focal_nodule_and_gland_sizes_overlap_heterogeneous() -> None:
    """Neither the nodule's size nor the gland's tells focal from heterogeneous: seed 002's
    focal class is one hot nodule whatever its size, so its draws cover heterogeneous's
    small nodules and enlarged glands (the rule, not the size, separates the classes)."""
    focal = [simulate("focal_increased", 200 + seed).metadata["findings"] for seed in range(40)]
    multinodular = [simulate("heterogeneous", 200 + seed).metadata["findings"] for seed in range(40)]
    focal_radii = [f["largest_nodule_radius_mm"] for f in focal]
    focal_sizes = [f["enlargement"] for f in focal]
    assert min(focal_radii) < 8.0 < max(focal_radii)  # nodules as small as heterogeneous's
    assert max(focal_sizes) > 1.3  # a hot nodule in an enlarged gland is still focal
    assert min(focal_sizes) < 1.1 <= min(f["enlargement"] for f in multinodular)  # goitre: enlarged by definition
    assert all(meets_rule("focal_increased", f) for f in focal)
