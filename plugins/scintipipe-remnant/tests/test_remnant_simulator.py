"""The 131I neck simulator: both classes, two views, the physics it claims."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from scintipipe.api import I131_HE, run_cli
from scintipipe_remnant.center import REMNANT_CENTER
from scintipipe_remnant.simulator import LABELS, PAPER_CLASS_MIX, REMNANT_SIMULATOR


def test_labels_and_the_papers_class_mix() -> None:
    assert LABELS == ("absent", "present")
    assert PAPER_CLASS_MIX["present"] / PAPER_CLASS_MIX["absent"] == pytest.approx(346 / 100)
    assert REMNANT_SIMULATOR.default_class_mix("remnant") == PAPER_CLASS_MIX


def test_acquisition_is_the_papers_131i_protocol() -> None:
    camera = REMNANT_CENTER.camera
    assert camera is I131_HE and camera.photopeak_kev == 364.5 and camera.window_percent == 20.0
    assert camera.collimator_name.startswith("HE") and camera.septal_penetration > 0  # star artefacts
    assert REMNANT_CENTER.matrix == 256 and REMNANT_CENTER.injected_mbq == 185.0


def test_both_classes_with_two_views_and_count_preset(studies) -> None:
    for label, case in studies.items():
        assert case.label == label and case.posterior is not None
        for view in (case, case.posterior):
            assert view.counts.shape == (256, 256) and view.counts.dtype == np.uint16
            assert abs(view.total_counts - REMNANT_CENTER.count_preset) < 0.01 * REMNANT_CENTER.count_preset
    assert not studies["absent"].masks["remnant"].any() and studies["absent"].metadata["true_uptake_percent"] == 0
    assert studies["present"].masks["remnant"].any() and studies["present"].metadata["true_uptake_percent"] > 0


def test_residual_tissue_is_hot_and_brighter_anteriorly(studies) -> None:
    present, absent = studies["present"], studies["absent"]

    def rim(case):
        return np.median(case.counts[case.masks["thyroid_bed"] & ~case.masks["remnant"]]) + 1

    assert present.counts[present.masks["remnant"]].mean() > 3 * rim(present)
    front = present.counts[present.masks["remnant"]].sum()
    back = present.posterior.counts[present.posterior.masks["remnant"]].sum()
    assert front > back  # the bed is 1-2.5 cm from the front, ~9 cm from the back
    assert absent.counts[absent.masks["thyroid_bed"]].mean() < present.counts[present.masks["remnant"]].mean()


def test_physiological_uptake_in_both_classes(studies) -> None:
    for case in studies.values():
        body = (
            case.counts[case.masks["body"] & ~case.masks["thyroid_bed"]].mean() if "body" in case.masks else np.median(case.counts[case.counts > 0])
        )
        for organ in ("parotid_right", "parotid_left", "oral_cavity", "stomach"):
            assert case.counts[case.masks[organ]].mean() > 1.5 * body, organ


def test_posterior_view_is_mirrored(studies) -> None:
    case = studies["absent"]

    def column(mask):
        return np.nonzero(mask)[1].mean()

    assert column(case.masks["stomach"]) > 128 > column(case.posterior.masks["stomach"])  # patient's left


def test_two_frame_dicom_names_its_views(study_folder) -> None:
    ds = pydicom.dcmread(study_folder / "case-00000.dcm")
    assert ds.NumberOfFrames == 2 and ds.pixel_array.shape == (2, 256, 256)
    assert [item.ViewCodeSequence[0].CodeMeaning for item in ds.DetectorInformationSequence] == ["Anterior projection", "Posterior projection"]
    assert (study_folder / "labels.csv").read_text().splitlines()[0] == "file,label"


def test_core_simulate_command_uses_the_plugin(tmp_path) -> None:
    run_cli("simulate", "--task", "remnant", "--center", "remnant", "--n", "2", "--out", str(tmp_path / "a"))
    assert len(list((tmp_path / "a").glob("case-*.dcm"))) == 2
    wrong = run_cli(
        "simulate", "--task", "remnant", "--center", "a", "--n", "1", "--out", str(tmp_path / "b"), expect_exit=None, catch_exceptions=True
    )
    assert wrong.exit_code != 0 and "--center remnant" in wrong.output
