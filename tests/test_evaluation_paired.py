"""McNemar, Mann-Whitney U, Cohen's kappa and the reader comparison against known values."""

from __future__ import annotations

import math

import pytest

from scintipipe.evaluation import cohen_kappa, compare_readers, mann_whitney, mcnemar_from_predictions, mcnemar_test


def _paired(a_only: int, b_only: int, both: int = 5, neither: int = 3) -> tuple[list[bool], list[bool]]:
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


def test_mcnemar_exact_is_the_two_sided_binomial():
    result = mcnemar_test(*_paired(1, 9))
    # 2 * P(X <= 1), X ~ Binomial(10, 1/2) = 2 * (1 + 10) / 1024
    assert result["method"] == "exact"
    assert result["p_value"] == pytest.approx(22 / 1024, rel=1e-12)
    assert (result["a_only_correct"], result["b_only_correct"], result["n"]) == (1, 9, 18)


def test_mcnemar_uses_continuity_corrected_chi_square_from_25_discordant_pairs():
    result = mcnemar_test(*_paired(30, 10))
    assert result["method"] == "chi2"
    assert result["statistic"] == pytest.approx((20 - 1) ** 2 / 40)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(result["statistic"] / 2)), rel=1e-12)
    at_threshold = mcnemar_test(*_paired(15, 10))
    assert at_threshold["method"] == "chi2" and at_threshold["statistic"] == pytest.approx(16 / 25)
    assert at_threshold["p_value"] == pytest.approx(math.erfc(math.sqrt(16 / 25 / 2)), rel=1e-12)
    assert mcnemar_test(*_paired(14, 10))["method"] == "exact"


def test_mcnemar_without_discordant_pairs_is_one():
    assert mcnemar_test(*_paired(0, 0))["p_value"] == 1.0


def test_mcnemar_from_predictions_counts_correct_calls():
    result = mcnemar_from_predictions(["x", "y", "x", "y"], ["x", "y", "y", "y"], ["x", "x", "x", "x"])
    assert (result["a_only_correct"], result["b_only_correct"]) == (2, 1)
    assert result["accuracy_a"] == 0.75 and result["accuracy_b"] == 0.5


def test_mann_whitney_exact_small_sample():
    result = mann_whitney([0.91, 0.92, 0.93], [0.94, 0.95, 0.96])
    assert result["u"] == 0.0
    assert result["p_value"] == pytest.approx(0.1)  # 2 / C(6, 3)
    assert result["mean_a"] == pytest.approx(0.92) and result["sd_a"] == pytest.approx(0.01)


def test_cohen_kappa_of_a_known_table():
    # 2x2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5, kappa = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    result = cohen_kappa(a, b)
    assert result["kappa"] == pytest.approx(0.4) and result["observed_agreement"] == pytest.approx(0.7)


def test_reader_comparison(tmp_path):
    labels = ["graves", "normal"]
    files = [f"s{i}.dcm" for i in range(8)]
    truth = dict(zip(files, ["graves"] * 4 + ["normal"] * 4, strict=True))
    model = dict(zip(files, ["graves"] * 4 + ["normal"] * 3 + ["graves"], strict=True))  # 7/8 right
    junior = ["normal", "normal"] + ["graves"] * 2 + ["normal"] * 4  # 6/8 right
    senior = ["graves"] * 3 + ["normal"] * 5  # 7/8 right
    table = tmp_path / "readers.csv"
    rows = (
        ["file,reader,label"]
        + [f"{f},junior,{c}" for f, c in zip(files, junior, strict=True)]
        + [f"{f},senior,{c}" for f, c in zip(files, senior, strict=True)]
    )
    table.write_text("\n".join(rows) + "\n")

    result = compare_readers(truth, model, table, labels)
    assert result["model"]["accuracy"]["value"] == pytest.approx(7 / 8)
    junior_result = result["readers"]["junior"]
    assert junior_result["accuracy"]["value"] == pytest.approx(6 / 8)
    # graves: sensitivity 2/4, specificity 4/4; normal: 4/4 and 2/4 -> macro 0.75 both
    assert junior_result["sensitivity"]["value"] == pytest.approx(0.75)
    assert junior_result["specificity"]["value"] == pytest.approx(0.75)
    mcnemar = junior_result["mcnemar_vs_model"]
    assert (mcnemar["a_only_correct"], mcnemar["b_only_correct"]) == (2, 1)
    assert mcnemar["p_value"] == pytest.approx(1.0)  # 2 * P(X <= 1 | n 3) = 2 * 4 / 8
    (kappa,) = result["kappa"]
    assert (kappa["reader_a"], kappa["reader_b"]) == ("junior", "senior")
    assert kappa["observed_agreement"] == pytest.approx(5 / 8)

    per_class = compare_readers(truth, model, table, labels, average="per_class")
    graves = per_class["readers"]["junior"]["per_class"]["graves"]
    assert graves["sensitivity"]["value"] == pytest.approx(0.5)
    assert graves["specificity"]["value"] == pytest.approx(1.0)
