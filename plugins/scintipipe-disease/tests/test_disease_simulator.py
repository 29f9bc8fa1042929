"""Each simulated class shows its defining property."""

from __future__ import annotations

import numpy as np

from scintipipe_disease.simulator import DISEASE_SIMULATOR, LABELS


def thyroid_to_salivary(case) -> float:
    counts = case.counts.astype(float)
    return float(counts[case.masks["thyroid"]].mean() / counts[case.masks["salivary_glands"]].mean())


def test_simulator_knows_the_four_labels() -> None:
    assert DISEASE_SIMULATOR.labels == LABELS == ("graves", "subacute_thyroiditis", "thyroid_tumour", "normal")
    assert sum(DISEASE_SIMULATOR.class_mix.values()) == 1.0


def test_graves_is_an_enlarged_intensely_avid_gland(cases_by_label) -> None:
    graves, normal = cases_by_label["graves"], cases_by_label["normal"]
    for case in graves:
        assert case.label == "graves" and case.masks["nodules"].sum() == 0
        assert case.metadata["true_uptake_percent"] >= 3.0
        assert thyroid_to_salivary(case) > 3.0
    assert np.median([c.masks["thyroid"].sum() for c in graves]) > 1.2 * np.median([c.masks["thyroid"].sum() for c in normal])


def test_subacute_thyroiditis_is_fainter_than_the_salivary_glands(cases_by_label) -> None:
    for case in cases_by_label["subacute_thyroiditis"]:
        assert case.metadata["true_uptake_percent"] < 0.5
        assert thyroid_to_salivary(case) < 1.0


def test_tumour_is_one_nodule_in_a_normal_gland(cases_by_label) -> None:
    kinds = set()
    for case in cases_by_label["thyroid_tumour"]:
        assert case.masks["nodules"].sum() > 0
        assert 0.4 <= case.metadata["true_uptake_percent"] <= 2.0
        kinds.add(case.metadata["nodule_kind"])
        assert case.masks["nodules_hot" if case.metadata["nodule_kind"] == "hot" else "nodules_cold"].sum() > 0
    assert kinds == {"hot", "cold"}


def test_normal_has_normal_uptake_and_no_nodule(cases_by_label) -> None:
    for case in cases_by_label["normal"]:
        assert case.masks["nodules"].sum() == 0
        assert 0.4 <= case.metadata["true_uptake_percent"] <= 2.0
        assert thyroid_to_salivary(case) > 1.0


def test_same_seed_same_case() -> None:
    from scintipipe.api import CENTERS

    a = DISEASE_SIMULATOR(np.random.default_rng(3), CENTERS["a"], "thyroid_tumour")
    b = DISEASE_SIMULATOR(np.random.default_rng(3), CENTERS["a"], "thyroid_tumour")
    assert np.array_equal(a.counts, b.counts)


def test_drawn_cases_meet_their_labelling_rule(cases_by_label) -> None:
    from scintipipe_disease.simulator import meets_rule

    for label, cases in cases_by_label.items():
        for case in cases:
            findings = case.metadata["findings"]
            assert meets_rule(label, findings), (label, findings)
            assert [other for other in LABELS if meets_rule(other, findings)] == [label]  # rules do not overlap


def test_only_the_findings_differ_between_classes() -> None:
    from scintipipe.api import CENTERS

    for seed in range(3):
        nuisances = []
        for label in LABELS:
            nuisance = DISEASE_SIMULATOR(np.random.default_rng(seed), CENTERS["b"], label).metadata["nuisance"]
            nuisances.append(
                {
                    k: v
                    for k, v in nuisance.items()
                    if k.startswith(("gland_", "body_", "parotid", "submandibular", "texture", "salivary", "blood", "head_", "habitus", "neck_"))
                    and not k.endswith("_jitter")
                }
            )
        assert all(n == nuisances[0] for n in nuisances)  # the same patient whatever the class
        assert len(nuisances[0]) > 50


def test_nuisance_ranges_overlap_across_classes(cases_by_label) -> None:
    for name in ("texture_sigma", "salivary_scale", "blood_pool_scale", "head_excess"):
        medians = [np.median([c.metadata["nuisance"][name] for c in cases]) for cases in cases_by_label.values()]
        lows = [min(c.metadata["nuisance"][name] for c in cases) for cases in cases_by_label.values()]
        highs = [max(c.metadata["nuisance"][name] for c in cases) for cases in cases_by_label.values()]
        assert max(lows) < min(highs), name  # every class spans a common part of the range
        assert all(min(lows) <= m <= max(highs) for m in medians)
