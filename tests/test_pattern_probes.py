"""benchmarks/pattern_probes.py: controlled variants of the uptake4 simulator, and the bundle's answers."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark_helpers import load_benchmark
from scintipipe.simulate import uptake4

probes = load_benchmark("pattern_probes")
BY_NAME = {p.name: p for p in probes.PROBES}


def _cases(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]


def test_simulating_a_probe_leaves_the_simulator_unchanged_and_labels_by_the_expected_class(tmp_path: Path) -> None:
    probe = BY_NAME["single_warm_nodule_goitre"]
    sampler, rule = uptake4.PATTERNS["heterogeneous"], uptake4.RULES["heterogeneous"]
    folder = probes.simulate_probe(probe, tmp_path / "p", 2, seed=1)
    assert uptake4.PATTERNS["heterogeneous"] is sampler and uptake4.RULES["heterogeneous"] is rule
    assert {case["label"] for case in _cases(folder)} == {"focal_increased"}


def test_a_reference_probe_is_the_simulator_itself(tmp_path: Path) -> None:
    from scintipipe.simulate.centers import get_center
    from scintipipe.simulate.writer import write_dataset

    probe_cases = _cases(probes.simulate_probe(BY_NAME["heterogeneous"], tmp_path / "probe", 2, seed=4))
    write_dataset("uptake4", uptake4.simulate_uptake4_case, uptake4.LABELS, get_center("randomised"), tmp_path / "sim", 2, 4, {"heterogeneous": 1.0})
    assert [c["findings"] for c in probe_cases] == [c["findings"] for c in _cases(tmp_path / "sim")]


def test_single_warm_nodule_goitre_has_one_warm_nodule_in_an_enlarged_gland(tmp_path: Path) -> None:
    cases = _cases(probes.simulate_probe(BY_NAME["single_warm_nodule_goitre"], tmp_path / "p", 4, seed=3))
    assert len(cases) == 4
    for case in cases:
        findings = case["findings"]
        assert findings["nodules"] == 1 and findings["cold_nodules"] == 0
        assert 2.0 <= findings["max_nodule_to_parenchyma"] <= 4.5
        assert 1.1 <= findings["enlargement"] <= 1.8
        assert 5.0 <= findings["largest_nodule_radius_mm"] <= 12.0


def test_within_gland_probes_draw_their_nodule_inside_the_gland_and_the_others_bulging(tmp_path: Path) -> None:
    inside = _cases(probes.simulate_probe(BY_NAME["focal_small_within_gland"], tmp_path / "in", 3, seed=2))
    bulging = _cases(probes.simulate_probe(BY_NAME["focal_small_nodule"], tmp_path / "out", 3, seed=2))
    assert [case["nodules"][0]["within_gland"] for case in inside] == [True] * 3
    assert [case["nodules"][0]["within_gland"] for case in bulging] == [False] * 3
    assert all(5.0 <= case["nodules"][0]["radius_mm"] <= 9.0 for case in inside)


def test_the_borderline_probe_is_focal_by_the_rule_with_a_small_moderate_nodule_in_a_goitre(tmp_path: Path) -> None:
    cases = _cases(probes.simulate_probe(BY_NAME["focal_moderate_small_in_goitre"], tmp_path / "p", 4, seed=6))
    for case in cases:
        findings, (nodule,) = case["findings"], case["nodules"]
        assert uptake4.RULES["focal_increased"](findings) and not uptake4.RULES["heterogeneous"](findings)
        assert 3.0 <= nodule["relative_concentration"] <= 6.0 and 6.0 <= nodule["radius_mm"] <= 10.0 and nodule["within_gland"]
        assert 1.3 <= findings["enlargement"] <= 1.6


def test_probes_share_patients_and_cameras_and_differ_only_in_the_thyroid(tmp_path: Path) -> None:
    warm = _cases(probes.simulate_probe(BY_NAME["single_warm_nodule_normal_size"], tmp_path / "a", 3, seed=5))
    focal = _cases(probes.simulate_probe(BY_NAME["focal_increased_enlarged"], tmp_path / "b", 3, seed=5))

    def patient(case: dict) -> dict:  # the activity jitters are drawn after the findings
        return {key: value for key, value in case["nuisance"].items() if not key.endswith("_jitter")}

    assert [patient(c) for c in warm] == [patient(c) for c in focal]
    assert [c["acquisition"] for c in warm] == [c["acquisition"] for c in focal]
    assert [c["camera"] for c in warm] == [c["camera"] for c in focal]
    assert [c["findings"]["enlargement"] <= 1.2 for c in warm] == [True] * 3
    assert [c["findings"]["enlargement"] >= 1.3 for c in focal] == [True] * 3


def test_tally_counts_unclassified_scans_as_not_expected(tmp_path: Path) -> None:
    csv_path = tmp_path / "predictions.csv"
    csv_path.write_text("source,label\na.dcm,focal_increased\nb.dcm,heterogeneous\nc.dcm,focal_increased\n")
    row = probes.tally(csv_path, "focal_increased", n=4)
    assert row["as_expected"] == 2 and row["not_classified"] == 1
    assert row["share"] == 50.0
    assert row["ci"][0] < 50.0 < row["ci"][1]
    assert row["labels"] == {"focal_increased": 2, "heterogeneous": 1}


def test_main_runs_the_bundle_on_a_probe_and_writes_its_table(tmp_path: Path) -> None:
    results = probes.main(["--probe", "focal_increased", "--n", "3", "--seed", "2", "--out", str(tmp_path), "--no-results"])
    row = results["probes"]["focal_increased"]
    assert row["n"] == 3 and sum(row["labels"].values()) + row["not_classified"] == 3
    assert set(row["labels"]) <= set(uptake4.LABELS)
    table = (tmp_path / "pattern_probes.md").read_text()
    assert "| focal_increased |" in table and "single_warm_nodule_goitre" not in table


def test_card_section_lists_every_probe_run_and_how_to_rerun_it() -> None:
    row = {
        "n": 60,
        "expected": "focal_increased",
        "as_expected": 1,
        "share": 1.7,
        "ci": [0.3, 8.9],
        "labels": {"heterogeneous": 59, "focal_increased": 1},
        "not_classified": 0,
    }
    results = {"command": "python benchmarks/pattern_probes.py --n 60", "commit": "abc", "bundle": "uptake4", "center": "randomised", "seed": 11}
    results["probes"] = {"single_warm_nodule_goitre": row, "focal_small_nodule": row}
    section = probes.card_section(results)
    assert section.startswith("## Controlled variants")
    assert "| single_warm_nodule_goitre |" in section and "| focal_small_nodule |" in section
    assert "| heterogeneous |" not in section  # only the probes that ran
    assert "60 simulated scans per probe" in section and section.rstrip().endswith("`python benchmarks/pattern_probes.py --n 60`.")
