"""Display exports of simulated scans: geometry, determinism, class independence, the writer."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scintipipe.cli import cli
from scintipipe.loaders import read_scans
from scintipipe.previews import PREVIEW_KEY
from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset
from scintipipe.simulate.display_export import Annotation, display_export, render_display_export, sample_export_options
from scintipipe.simulate.masks_io import read_label_map


@pytest.fixture(scope="module")
def case():
    return UPTAKE4_SIMULATOR(np.random.default_rng(3), CENTERS["a"], "diffusely_increased")


def export_of(case, seed: int, **fixed):
    options = dataclasses.replace(sample_export_options(np.random.default_rng(seed)), **fixed)
    return render_display_export(case.counts, case.masks, case.pixel_mm, options)


def test_same_generator_same_export_and_another_differs(case) -> None:
    first = display_export(case.counts, case.masks, np.random.default_rng(11), case.pixel_mm)
    again = display_export(case.counts, case.masks, np.random.default_rng(11), case.pixel_mm)
    other = display_export(case.counts, case.masks, np.random.default_rng(12), case.pixel_mm)
    assert first.data == again.data and first.record == again.record
    assert first.data != other.data


def test_record_is_json_and_the_choices_do_not_depend_on_the_case() -> None:
    """The same export stream gives the same choices for cases of every label (audit)."""
    records = []
    for label in UPTAKE4_SIMULATOR.labels:
        case = UPTAKE4_SIMULATOR(np.random.default_rng(5), CENTERS["b"], label)
        export = display_export(case.counts, case.masks, np.random.default_rng(99), case.pixel_mm)
        records.append(json.loads(json.dumps(export.record)))
    assert all(record["options"] == records[0]["options"] for record in records)


@pytest.mark.parametrize("seed", range(12))
def test_picture_and_masks_share_the_geometry(case, seed: int) -> None:
    export = display_export(case.counts, case.masks, np.random.default_rng(seed), case.pixel_mm)
    rows, cols = export.image.shape[:2]
    assert export.image.dtype == np.uint8 and export.image.ndim in (2, 3)
    assert 128 <= min(rows, cols) and max(rows, cols) <= 1024
    assert all(mask.shape == (rows, cols) and mask.dtype == bool for mask in export.masks.values())
    thyroid = export.masks["thyroid"]
    assert thyroid.any()
    assert export.grey[thyroid].mean() > export.grey[~thyroid].mean()  # the gland is where the picture is hot
    assert export.suffix == (".jpg" if export.record["format"] == "jpeg" else ".png")


def test_annotation_is_recorded_and_drawn(case) -> None:
    annotation = Annotation(colour=(255, 0, 0), texts=(("ANT", "tl"), ("Tc99m 5 min", "br")), rl_letters=True, roi="lobes", scale_bar=True)
    export = export_of(case, 1, colormap=None, invert=False, annotation=annotation, image_format="png")
    kinds = [item["kind"] for item in export.record["drawn"]]
    assert kinds.count("text") == 2 and kinds.count("letter") == 2 and "roi_outline" in kinds and "scale_bar" in kinds
    red = (export.image[..., 0] > 200) & (export.image[..., 1] < 60)
    assert export.image.ndim == 3 and red.sum() > 100
    plain = export_of(case, 1, colormap=None, invert=False, annotation=None, image_format="png")
    assert plain.record["drawn"] == [] and plain.image.ndim == 2


def test_inverted_and_coloured_pictures(case) -> None:
    inverted = export_of(case, 2, colormap=None, invert=True, annotation=None, image_format="png")
    np.testing.assert_array_equal(inverted.image, 255 - inverted.grey)
    coloured = export_of(case, 2, colormap="jet", invert=False, annotation=None, image_format="png")
    assert coloured.image.shape == (*coloured.grey.shape, 3)


def test_options_vary_as_documented() -> None:
    options = [sample_export_options(np.random.default_rng(seed)) for seed in range(400)]

    def share(test):
        return np.mean([test(o) for o in options])

    assert 0.1 < share(lambda o: o.colormap is not None) < 0.3
    assert 0.07 < share(lambda o: o.invert) < 0.2
    assert 0.3 < share(lambda o: o.annotation is not None) < 0.5
    assert 0.4 < share(lambda o: o.image_format == "jpeg") < 0.6
    assert all(0.4 <= o.upper_fraction <= 1 and 0.5 <= o.gamma <= 1.5 for o in options)
    assert all(50 <= o.jpeg_quality <= 95 for o in options if o.image_format == "jpeg")
    assert {o.resample for o in options} == {"bilinear", "nearest", "area"}


def write(out: Path, share: float = 0.0):
    mix = {label: 1.0 for label in UPTAKE4_SIMULATOR.labels}
    return write_dataset("uptake4", UPTAKE4_SIMULATOR, UPTAKE4_SIMULATOR.labels, CENTERS["b"], out, 8, 4, mix, display_exports=share)


def test_writer_exports_a_share_and_leaves_the_other_cases_byte_identical(tmp_path: Path) -> None:
    plain, mixed = tmp_path / "plain", tmp_path / "mixed"
    write(plain)
    summary = write(mixed, 0.5)
    exported = [name for name in summary.files if not name.endswith(".dcm")]
    assert 0 < len(exported) < 8
    for name in summary.files:
        if name.endswith(".dcm"):
            assert hashlib.sha256((mixed / name).read_bytes()).digest() == hashlib.sha256((plain / name).read_bytes()).digest()
    with open(mixed / "labels.csv") as handle:
        labels = {row["file"]: row["label"] for row in csv.DictReader(handle)}
    with open(plain / "labels.csv") as handle:
        plain_labels = [row["label"] for row in csv.DictReader(handle)]
    assert list(labels) == summary.files and list(labels.values()) == plain_labels
    cases = [json.loads(line) for line in (mixed / "cases.jsonl").read_text().splitlines()]
    for name, line in zip(summary.files, cases, strict=True):
        assert line["file"] == name and (("display_export" in line) == (name in exported))
    for name in exported:
        with Image.open(mixed / name) as picture:
            assert PREVIEW_KEY not in (getattr(picture, "text", None) or {})
            size = picture.size
        [scan] = read_scans(mixed / name)
        assert scan["image"].meta["is_counts"] is False
        mask = read_label_map(mixed / "masks" / (Path(name).stem + ".nii.gz"))
        assert mask.shape == (size[1], size[0])
    settings = json.loads((mixed / "simulation.json").read_text())
    assert settings["display_exports"] == 0.5 and "display_exports" not in json.loads((plain / "simulation.json").read_text())


def test_writer_is_deterministic_with_exports_and_overwrite_clears_them(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, 1.0)
    write(second, 1.0)

    def digests(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert digests(first) == digests(second)
    assert not list(first.glob("case-*.dcm"))
    with pytest.raises(FileExistsError):
        write(first)
    write_dataset("uptake4", UPTAKE4_SIMULATOR, UPTAKE4_SIMULATOR.labels, CENTERS["b"], first, 2, 4, {"heterogeneous": 1.0}, overwrite=True)
    assert sorted(p.name for p in first.glob("case-*")) == ["case-00000.dcm", "case-00001.dcm"]
    assert (first / "contact_sheet.png").is_file()


def test_share_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share"):
        write(tmp_path / "bad", 1.5)


def test_command_line_display_exports(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--task", "uptake4", "--n", "4", "--seed", "2", "--center", "b", "--display-exports", "1", "--out", str(out), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("case-*.png")) + list(out.glob("case-*.jpg"))) == 4
    bad = CliRunner().invoke(cli, ["simulate", "--task", "uptake4", "--n", "4", "--display-exports", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "display-exports" in bad.output
