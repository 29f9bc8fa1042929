"""``scintipipe run --bundle remnant`` on two-view studies: per-view and per-study results."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from scintipipe.api import run_cli
from scintipipe_remnant.study import combine_views, study_rows


def read(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_run_writes_view_and_study_predictions(study_folder, tmp_path) -> None:
    out = tmp_path / "results"
    run_cli("run", "--bundle", "remnant", str(study_folder), "--out", str(out), "--no-explain")
    views = read(out / "predictions.csv")
    assert len(views) == 6, views  # labels.csv, truth.csv and simulation.json are skipped
    assert sorted(row["source"].rsplit("#", 1)[1] for row in views) == ["anterior"] * 3 + ["posterior"] * 3
    studies = read(out / "study_predictions.csv")
    assert len(studies) == 3 and {row["views"] for row in studies} == {"anterior;posterior"}
    for study in studies:
        members = [v for v in views if v["source"].startswith(study["study"] + "#")]
        highest = max(float(v["prob_present"]) for v in members)  # default rule: max
        assert study["rule"] == "max" and float(study["prob_present"]) == pytest.approx(highest, abs=1e-5)
        assert study["label"] == ("present" if highest > 0.5 else "absent")


def test_study_predictions_are_written_without_reports(study_folder, tmp_path) -> None:
    out = tmp_path / "results"
    run_cli("run", "--bundle", "remnant", str(study_folder), "--out", str(out), "--no-explain", "--no-report")
    assert len(read(out / "study_predictions.csv")) == 3
    assert not (out / "index.html").exists()  # no case pages to link


def test_mean_and_max_rules() -> None:
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert combine_views(probs, ["absent", "present"], "mean") == pytest.approx([0.45, 0.55])
    assert combine_views(probs, ["absent", "present"], "max") == pytest.approx([0.2, 0.8])
    with pytest.raises(ValueError):
        combine_views(probs, ["absent", "present"], "vote")


def test_single_view_files_are_studies_of_their_own() -> None:
    cases = [{"source": "a.dcm", "prediction": {"prob_absent": 0.9, "prob_present": 0.1}}]
    assert study_rows(cases, ["absent", "present"], "mean")[0] == {
        "study": "a.dcm",
        "views": "single",
        "rule": "mean",
        "label": "absent",
        "confidence": 0.9,
        "prob_absent": 0.9,
        "prob_present": 0.1,
    }
