"""Output files: DICOM attributes, masks, labels, determinism and the command line."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from scintipipe.cli import cli
from scintipipe.plugins import make_plugin_manager, simulators
from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset
from scintipipe.simulate.masks_io import MASK_LABELS, read_label_map
from scintipipe.simulate.writer import assign_labels


def write(out: Path, seed: int, n: int = 4, center: str = "a", syringes: bool = False, overwrite: bool = False):
    return write_dataset(
        "uptake4",
        UPTAKE4_SIMULATOR,
        UPTAKE4_SIMULATOR.labels,
        CENTERS[center],
        out,
        n,
        seed,
        {label: 1.0 for label in UPTAKE4_SIMULATOR.labels},
        syringes=syringes,
        overwrite=overwrite,
    )


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "seed7"
    write(out, 7, syringes=True)
    return out


def test_same_seed_writes_byte_identical_files_and_another_seed_does_not(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write(again, 7, syringes=True)
    assert digests(again) == digests(dataset)
    other = tmp_path / "other"
    write(other, 8, syringes=True)
    first, second = digests(dataset), digests(other)
    assert all(first[name] != second[name] for name in first if name.endswith(".dcm"))


def test_dicom_has_the_attributes_a_camera_writes(dataset: Path) -> None:
    ds = pydicom.dcmread(dataset / "case-00000.dcm")
    assert ds.SOPClassUID == pydicom.uid.NuclearMedicineImageStorage
    assert ds.Modality == "NM"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([280 / 256] * 2, rel=1e-5)
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (256, 256, 16, 16, 0)
    pixels = ds.pixel_array
    assert pixels.dtype == np.uint16
    assert int(ds.CountsAccumulated) == int(pixels.sum(dtype=np.int64))
    assert abs(int(ds.CountsAccumulated) - 100_000) < 2_000
    assert ds.AcquisitionTerminationCondition == "CNTS"
    assert int(ds.ActualFrameDuration) > 1000
    window = ds.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert float(window.EnergyWindowLowerLimit) == pytest.approx(126.45, abs=0.01)
    assert float(window.EnergyWindowUpperLimit) == pytest.approx(154.55, abs=0.01)
    pharma = ds.RadiopharmaceuticalInformationSequence[0]
    assert pharma.RadionuclideCodeSequence[0].CodeValue == "72454006"
    assert "Technetium" in pharma.RadionuclideCodeSequence[0].CodeMeaning
    assert "RadionuclideHalfLife" not in pharma  # a PET attribute, not in the NM Isotope module (dciodvfy)
    assert "PatientPosition" not in ds  # not beside PatientOrientationCodeSequence (NM Image IOD)
    assert float(pharma.RadionuclideTotalDose) > 100
    detector = ds.DetectorInformationSequence[0]
    assert detector.ViewCodeSequence[0].CodeMeaning.upper().startswith("ANTERIOR")
    assert detector.CollimatorType == "PARA"
    assert ds.ImageType == ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    assert ds.PatientName.family_name == "SIM" and ds.PatientID.startswith("SIM-uptake4-a-7-")
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert pydicom.uid.UID(uid).is_valid
    assert len(ds.StudyDate) == 8 and ds.AcquisitionTime


def test_labels_truth_and_masks_agree_with_the_images(dataset: Path) -> None:
    with open(dataset / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == [f"case-{i:05d}.dcm" for i in range(4)]
    assert {row["label"] for row in rows} <= set(UPTAKE4_SIMULATOR.labels)
    table = json.loads((dataset / "masks" / "labels.json").read_text())
    assert table["0"] == "background" and {table[str(v)] for v, _ in MASK_LABELS} == {name for _, name in MASK_LABELS}
    with open(dataset / "truth.csv") as handle:
        truth = list(csv.DictReader(handle))
    for row in truth:
        labels = read_label_map(dataset / row["mask"])
        pixels = pydicom.dcmread(dataset / row["file"]).pixel_array
        assert labels.shape == pixels.shape
        thyroid = np.isin(labels, [8, 9, 10, 11, 12, 13])
        assert thyroid.sum() > 100
        assert float(row["true_uptake_percent"]) > 0
        assert (dataset / row["syringe_full"]).exists() and (dataset / row["syringe_empty"]).exists()
    full = pydicom.dcmread(dataset / truth[0]["syringe_full"])
    assert full.AcquisitionTerminationCondition == "TIME" and full.StudyInstanceUID == pydicom.dcmread(dataset / truth[0]["file"]).StudyInstanceUID
    assert (dataset / "contact_sheet.png").stat().st_size > 1000


def test_class_mix_gives_exact_counts() -> None:
    labels = UPTAKE4_SIMULATOR.labels
    assigned = assign_labels(labels, UPTAKE4_SIMULATOR.default_class_mix("a"), 500, seed=1)
    assert [assigned.count(label) for label in labels] == [211, 183, 19, 87]  # largest remainders of 500 x (1040, 902, 97, 429) / 2468
    assert assign_labels(labels, {"focal_increased": 1}, 5, seed=1) == ["focal_increased"] * 5


def test_uptake4_simulator_is_registered_through_the_hook() -> None:
    registered = simulators(make_plugin_manager(load_entry_points=False)).simulators
    factory = registered["uptake4"]
    case = factory(np.random.default_rng(0), CENTERS["b"], "heterogeneous")
    assert case.counts.shape == (128, 128) and case.label == "heterogeneous"


def test_simulate_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "center-b"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--task", "uptake4", "--n", "5", "--seed", "3", "--center", "b", "--out", str(out), "--class-mix", "balanced", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    with open(out / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and all((out / row["file"]).exists() for row in rows)
    ds = pydicom.dcmread(out / rows[0]["file"])
    assert (ds.Rows, float(ds.PixelSpacing[0])) == (128, 2.21)
    assert json.loads((out / "simulation.json").read_text())["center"]["name"] == "b"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope"], "no simulator"),
        (["--task", "uptake4", "--center", "mars"], "unknown centre"),
        (["--task", "uptake4", "--class-mix", "normal=1"], "unknown labels"),
        (["--task", "uptake4", "--class-mix", "1,2"], "4 labels"),
    ],
)
def test_simulate_command_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--n", "2", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output


PLUGIN = '''
"""A one-file plugin bringing its own phantom for a task the core does not know."""

from scintipipe import hookimpl
from scintipipe.simulate import TaskSimulator
from scintipipe.simulate.head_neck import sample_head_neck
from scintipipe.simulate.neck import NeckActivities, simulate_neck_view, typical_salivary_uptake
from scintipipe.simulate.thyroid import sample_thyroid_shape


def simulate_toy(rng, center, label):
    uptake = 0.08 if label == "hot" else 0.001
    activities = NeckActivities(thyroid=uptake, **typical_salivary_uptake(rng))
    return simulate_neck_view(rng, center, label, sample_thyroid_shape(rng), sample_head_neck(rng), activities)


@hookimpl
def register_simulators(register):
    register.simulator("toy", TaskSimulator("toy", ("hot", "cold"), simulate_toy, {"hot": 1, "cold": 3}))
'''


def test_a_plugin_brings_its_own_phantom_through_register_simulators(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_task.py").write_text(PLUGIN)
    out = tmp_path / "toy"
    result = CliRunner().invoke(
        cli, ["--plugins-dir", str(plugins), "simulate", "--task", "toy", "--n", "4", "--center", "b", "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    with open(out / "labels.csv") as handle:
        labels = [row["label"] for row in csv.DictReader(handle)]
    assert sorted(labels) == ["cold", "cold", "cold", "hot"]  # the plugin's default mix


def test_an_earlier_data_set_is_kept_unless_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "data"
    write(out, 1, n=5, syringes=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write(out, 2, n=3)
    result = CliRunner().invoke(cli, ["simulate", "--task", "uptake4", "--n", "3", "--out", str(out), "--no-progress"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    write(out, 2, n=3, overwrite=True)
    assert sorted(p.name for p in out.glob("case-*.dcm")) == ["case-00000.dcm", "case-00001.dcm", "case-00002.dcm"]
    assert not any((out / "syringes").glob("*.dcm")) and len(list((out / "masks").glob("*.nii.gz"))) == 3
    assert (out / "notes.txt").read_text() == "mine"
