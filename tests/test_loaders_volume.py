"""NIfTI and MetaImage/NRRD loader: orientation, spacing, singleton axes, volumes."""

from __future__ import annotations

import gzip

import itk
import nibabel as nib
import numpy as np
import pytest

from loader_fixtures import expect_scan_error, gradient, pixels
from scintipipe.errors import ScanError
from scintipipe.loaders import iter_input_files, read_scans
from scintipipe.loaders.volume import load_volume


def write_nifti(path, rows_first: np.ndarray, spacing=(2.0, 3.0), extra_axes=1):
    """Write ``rows_first`` the way the project does: x first, a trailing singleton axis."""
    data = rows_first.T.reshape(rows_first.shape[::-1] + (1,) * extra_axes)
    affine = np.diag([spacing[1], spacing[0], 1.0, 1.0])  # x = column spacing, y = row spacing
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@pytest.mark.parametrize(("name", "extra_axes"), [("plane.nii", 0), ("plane3d.nii", 1), ("plane.nii.gz", 1), ("plane4d.nii.gz", 2)])
def test_nifti_plane_comes_back_rows_first_with_spacing(tmp_path, name, extra_axes):
    image = gradient(dtype=np.int16)
    path = write_nifti(tmp_path / name, image, spacing=(2.0, 3.0), extra_axes=extra_axes)
    [scan] = load_volume(path)
    np.testing.assert_array_equal(pixels(scan), image)
    assert scan["image"].meta["spacing"] == (2.0, 3.0)
    assert scan["image"].meta["is_counts"] is False


def test_nifti_written_by_the_simulator_convention_reads_back(tmp_path):
    from scintipipe.simulate.masks_io import read_label_map

    image = gradient(dtype=np.uint8)
    path = write_nifti(tmp_path / "labels.nii.gz", image)
    np.testing.assert_array_equal(pixels(load_volume(path)[0]), read_label_map(path))


def test_true_3d_nifti_is_refused(tmp_path):
    path = tmp_path / "spect.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((32, 32, 12)).astype(np.float32), np.eye(4)), path)
    expect_scan_error(read_scans, path, "3-D volume of 12 slices")


def test_corrupt_nifti_is_a_scan_error(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(gzip.compress(b"not a nifti header" * 3))
    with pytest.raises(ScanError, match="not a readable NIfTI"):
        read_scans(path)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd"])
def test_itk_plane_comes_back_rows_first_with_spacing(tmp_path, suffix):
    image = gradient(dtype=np.uint16)
    itk_image = itk.image_from_array(image)
    itk_image.SetSpacing([3.0, 2.0])  # x (columns), y (rows)
    path = tmp_path / f"plane{suffix}"
    itk.imwrite(itk_image, str(path))
    [scan] = read_scans(path)
    np.testing.assert_array_equal(pixels(scan), image)
    assert scan["image"].meta["spacing"] == (2.0, 3.0)


def test_itk_volume_is_refused(tmp_path):
    path = tmp_path / "volume.mha"
    itk.imwrite(itk.image_from_array(np.random.default_rng(0).random((5, 32, 32)).astype(np.float32)), str(path))
    with pytest.raises(ScanError, match="3-D volume of 5 slices"):
        load_volume(path)


def test_corrupt_metaimage_is_a_scan_error(tmp_path):
    path = tmp_path / "broken.mha"
    path.write_text("ObjectType = Image\nNDims = banana\n")
    expect_scan_error(load_volume, path, "not a readable MetaImage/NRRD")


def test_folder_walk_loads_the_mhd_header_not_its_raw_data(tmp_path):
    itk.imwrite(itk.image_from_array(gradient(dtype=np.uint16)), str(tmp_path / "plane.mhd"))
    data_files = [p.name for p in tmp_path.iterdir() if p.suffix != ".mhd"]
    assert data_files, "ITK wrote the pixels inline; the test needs a detached data file"
    assert [p.name for p in iter_input_files([tmp_path])] == ["plane.mhd"]


def test_nifti_label_map_is_skipped_as_not_a_scan(tmp_path) -> None:
    import nibabel as nib
    import numpy as np
    import pytest

    from scintipipe.errors import NotAnImage
    from scintipipe.loaders.volume import load_volume

    labels = np.zeros((64, 64, 1), dtype=np.uint8)
    labels[20:40, 10:30] = 1
    image = nib.Nifti1Image(labels, np.eye(4))
    image.header.set_intent("label")
    nib.save(image, tmp_path / "mask.nii.gz")
    with pytest.raises(NotAnImage, match="label map"):
        load_volume(tmp_path / "mask.nii.gz")
    # told from the header alone: the pixel data (a simulator folder holds a mask per scan) is never decompressed
    nib.save(image, tmp_path / "mask.nii")
    (tmp_path / "mask.nii").write_bytes((tmp_path / "mask.nii").read_bytes()[:400])  # header kept, data cut off
    with pytest.raises(NotAnImage, match="label map"):
        load_volume(tmp_path / "mask.nii")


def _nrrd_header(data_file: str) -> str:
    return f"NRRD0004\ntype: unsigned short\ndimension: 2\nsizes: 32 32\nencoding: ascii\ndata file: {data_file}\n\n"


@pytest.mark.parametrize("data_file", ["/dev/zero", "../outside.raw"])
def test_a_detached_header_may_not_read_devices_or_files_outside_its_folder(tmp_path, data_file):
    (tmp_path / "outside.raw").write_text("1 2 3\n" * 400)
    folder = tmp_path / "scans"
    folder.mkdir()
    header = folder / "planar.nhdr"
    header.write_text(_nrrd_header(data_file))
    with pytest.raises(ScanError, match="lies outside the header's folder: refused"):
        read_scans(header)


def test_the_header_size_limit_applies_to_metaimage_and_nrrd(tmp_path, monkeypatch):
    path = tmp_path / "planar.mha"
    itk.imwrite(itk.image_from_array(gradient().astype(np.float32)), str(path))
    monkeypatch.setenv("SCINTIPIPE_MAX_PIXELS", "100")
    with pytest.raises(ScanError, match=r"48x40 pixels \(1,920\) exceeds the limit of 100 pixels per frame"):
        read_scans(path)


def test_unwrapped_itk_pixel_types_are_refused_quickly_or_read_as_float(tmp_path):
    path = tmp_path / "int64.nrrd"
    path.write_bytes(b"NRRD0004\ntype: int64\ndimension: 2\nsizes: 40 48\nencoding: raw\nendian: little\n\n" + gradient().astype("<i8").tobytes())
    [scan] = read_scans(path)
    np.testing.assert_array_equal(pixels(scan), gradient())
    five_d = tmp_path / "five.nrrd"
    five_d.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 5\nsizes: 40 48 1 1 1\nencoding: raw\n\n" + gradient().astype(np.uint8).tobytes())
    with pytest.raises(ScanError, match="a 5-D image"):
        read_scans(five_d)


def test_a_scale_factor_beyond_float32_is_refused(tmp_path):
    path = tmp_path / "scaled.nii"
    image = nib.Nifti1Image(gradient().T.astype(np.int16), np.eye(4))
    image.header.set_slope_inter(1e38, 0)
    nib.save(image, path)
    with pytest.raises(ScanError, match="exceed the float32 range"):
        read_scans(path)


@pytest.mark.parametrize(
    ("header_class", "endianness", "name"),
    [(nib.Nifti1Header, "<", "m.nii.gz"), (nib.Nifti1Header, ">", "m.nii"), (nib.Nifti2Header, "<", "m.nii.gz")],
)
def test_label_maps_are_told_from_the_header_of_either_nifti_version_and_byte_order(tmp_path, header_class, endianness, name):
    from scintipipe.errors import NotAnImage
    from scintipipe.loaders.volume import nifti_intent

    header = header_class(endianness=endianness)
    header.set_data_dtype(np.uint8)
    header.set_intent("label")
    image_class = nib.Nifti1Image if header_class is nib.Nifti1Header else nib.Nifti2Image
    labels = np.zeros((64, 64), dtype=np.uint8)
    labels[20:40, 10:30] = 1
    nib.save(image_class(labels, np.eye(4), header=header), tmp_path / name)
    assert nifti_intent(tmp_path / name) == "label"
    with pytest.raises(NotAnImage, match="label map"):
        load_volume(tmp_path / name)
    write_nifti(tmp_path / "scan.nii", gradient(dtype=np.int16))
    assert nifti_intent(tmp_path / "scan.nii") == "none"
    (tmp_path / "junk.nii").write_bytes(b"not a header")
    assert nifti_intent(tmp_path / "junk.nii") is None
    expect_scan_error(load_volume, tmp_path / "junk.nii", "not a readable NIfTI")
