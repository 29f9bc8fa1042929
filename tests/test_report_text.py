"""Words the reports show: labels without underscores, dates with their date, regions not found left out."""

from __future__ import annotations

import numpy as np
import pytest

from scintipipe.report.html import date_and_time, label_words
from scintipipe.segment.quantify import quantify


def test_labels_are_shown_in_words():
    assert label_words("focal_increased") == "focal increased"
    assert label_words("graves") == "graves"


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("2024-11-06T09:04:27", "2024-11-06 09:04:27"),
        ("2024-11-06T09:04:27.585000", "2024-11-06 09:04:27"),
        ("15:34:36.585000", "15:34:36 (date not recorded)"),
        ("2024-11-06", "2024-11-06"),
    ],
)
def test_acquisition_time_is_shown_with_its_date_or_says_it_has_none(stamp, shown):
    assert date_and_time(stamp) == shown


def test_a_region_not_found_is_left_out_of_the_quantities():
    counts = np.full((64, 64), 2.0)
    counts[20:40, 10:20] = 50.0
    right = np.zeros((64, 64), bool)
    right[20:40, 10:20] = True
    background = np.zeros((64, 64), bool)
    background[50:60, 5:60] = True
    quantities = quantify(counts, {"thyroid_right": right, "background": background}, (2.0, 2.0))
    assert quantities["thyroid_right_counts"] == pytest.approx(50.0 * 200)
    assert quantities["thyroid_right_area_mm2"] == pytest.approx(800.0)
    for missing in ("thyroid_left", "isthmus", "salivary"):
        assert f"{missing}_counts" not in quantities and f"{missing}_area_mm2" not in quantities
    assert "left_right_ratio" not in quantities and "thyroid_to_salivary_ratio" not in quantities
    assert quantities["thyroid_net_counts"] == pytest.approx(48.0 * 200)
    no_background = quantify(counts, {"thyroid_right": right}, None)
    assert "background_counts_per_pixel" not in no_background
    assert no_background["thyroid_net_counts"] == pytest.approx(50.0 * 200)
