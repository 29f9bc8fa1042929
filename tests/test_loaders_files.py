"""Finding input files, choosing a loader by content, and the load_scans hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicom_factory import thyroid_pattern, write_nm_dicom
from loader_fixtures import gradient
from scintipipe.builtin import load_dicom, load_raster, load_volume
from scintipipe.errors import ScanError
from scintipipe.loaders import file_kind, iter_input_files, read_scans
from scintipipe.plugins import make_plugin_manager


def test_folders_are_walked_recursively_in_order_skipping_hidden(tmp_path):
    for name in ("b/2.dcm", "b/1.dcm", "a.png", ".hidden.dcm", ".git/x.dcm", "c/.cache/y.png", "c/z.nii"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_input_files([tmp_path])]
    assert found == ["a.png", "b/1.dcm", "b/2.dcm", "c/z.nii"]


def test_files_keep_the_order_given_and_appear_once(tmp_path):
    first, second = tmp_path / "z.png", tmp_path / "a.png"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    assert iter_input_files([first, second, first]) == [first, second]


def test_a_missing_path_is_a_scan_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ScanError, match="no such file") as caught:
        iter_input_files([missing])
    assert caught.value.source == str(missing)


def test_text_file_renamed_dcm_is_a_scan_error_naming_it(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_text("patient notes, not an image\n" * 20)
    with pytest.raises(ScanError, match="not a DICOM file") as caught:
        read_scans(path)
    assert caught.value.source == str(path)


@pytest.mark.parametrize("name", ["scan.dcm", "scan.png", "volume.nii.gz", "no-extension"])
def test_an_empty_file_is_reported_as_empty(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ScanError, match=r"empty file \(0 bytes\)") as caught:
        read_scans(path)
    assert caught.value.source == str(path)
    if file_kind(path) is not None:  # the hook of its kind says the same
        with pytest.raises(ScanError, match="empty file"):
            make_plugin_manager().hook.load_scans(path=path)


def test_unknown_file_kind_is_a_scan_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert file_kind(path) is None
    with pytest.raises(ScanError, match="not a recognised image format"):
        read_scans(path)


@pytest.mark.parametrize("kept_bytes", [160, 250, 400, 700, 1200, -100])
def test_truncated_dicom_is_a_scan_error_not_a_skip(tmp_path, kept_bytes):
    path = write_nm_dicom(tmp_path / "cut.dcm", thyroid_pattern())
    path.write_bytes(path.read_bytes()[:kept_bytes])
    with pytest.raises(ScanError, match="truncated or corrupt") as caught:
        read_scans(path)
    assert type(caught.value) is ScanError  # NotAnImage would be skipped silently
    assert caught.value.source == str(path)


def test_constant_dicom_is_a_scan_error(tmp_path):
    path = write_nm_dicom(tmp_path / "flat.dcm", np.zeros((64, 64), np.uint16))
    with pytest.raises(ScanError, match="constant"):
        read_scans(path)


def test_absurd_dicom_size_is_a_scan_error(tmp_path):
    path = write_nm_dicom(tmp_path / "strip.dcm", thyroid_pattern(8, 64))
    with pytest.raises(ScanError, match="absurd image size 8x64"):
        read_scans(path)


def sample_files(tmp_path: Path) -> dict[str, Path]:
    dicom = write_nm_dicom(tmp_path / "a.dcm", thyroid_pattern())
    png = tmp_path / "b.png"
    Image.fromarray(gradient()).save(png)
    import nibabel as nib

    nifti = tmp_path / "c.nii.gz"
    nib.save(nib.Nifti1Image(gradient().T[:, :, None], np.eye(4)), nifti)
    return {"dicom": dicom, "raster": png, "volume": nifti}


def test_each_hook_claims_only_its_own_kind(tmp_path):
    files = sample_files(tmp_path)
    hooks = {"dicom": load_dicom.load_scans, "raster": load_raster.load_scans, "volume": load_volume.load_scans}
    for kind, hook in hooks.items():
        for other, path in files.items():
            result = hook(path)
            if other == kind:
                assert result and result[0]["source"] == str(path)
            else:
                assert result is None, f"{kind} loader claimed a {other} file"
    unknown = tmp_path / "d.csv"
    unknown.write_text("a,b\n")
    assert all(hook(unknown) is None for hook in hooks.values())


def test_plugin_manager_loads_every_kind(tmp_path):
    pm = make_plugin_manager(load_entry_points=False)
    for kind, path in sample_files(tmp_path).items():
        scans = pm.hook.load_scans(path=path)
        assert scans[0]["source"] == str(path), kind
    assert pm.hook.load_scans(path=tmp_path / "a.dcm")[0]["image"].meta["modality"] == "NM"
