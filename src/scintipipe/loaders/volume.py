"""Load NIfTI (nibabel) and MetaImage/NRRD (ITK) files holding one planar image.

A NIfTI array's first axis is ``x`` (columns): a planar image is stored ``(columns, rows)``
or ``(columns, rows, 1)`` and comes back rows first, the way
:mod:`scintipipe.simulate.masks_io` writes it. Singleton axes are dropped; anything left
with more than two axes is a volume, which :func:`scintipipe.scan.make_scan` rejects.

The sizes in the header are checked against :mod:`scintipipe.loaders.limits` before the
pixel data is read: the first two axes make a frame, the others count as frames.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.errors import NotAnImage, ScanError
from scintipipe.loaders.files import detached_data_files
from scintipipe.loaders.grey import to_grey
from scintipipe.loaders.limits import check_file_size, check_float32_range, check_frame_size
from scintipipe.scan import make_scan

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: the image dimensions ITK's Python wrapping reads (first and last)
ITK_DIMENSIONS = (2, 4)
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
#: why a NIfTI segmentation mask is skipped
LABEL_MAP = "a NIfTI label map (segmentation mask, intent 'label'), not a scan"


def load_volume(path: str | Path) -> list[dict[str, Any]]:
    """Read a NIfTI, MetaImage or NRRD file into one scan.

    Args:
        path: the file (``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``).

    Raises:
        ScanError: unreadable file, unknown extension, over an input limit, a true 3-D
            volume, or pixels that :func:`scintipipe.scan.make_scan` rejects.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        pixels, spacing, image_format = _read_nifti(path)
    elif name.endswith(ITK_SUFFIXES):
        pixels, spacing, image_format = _read_itk(path)
    else:
        raise ScanError(path, "not a NIfTI, MetaImage or NRRD file name (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr)")
    check_float32_range(path, pixels)
    return [make_scan(pixels, str(path), spacing=spacing, modality=None, is_counts=False, image_format=image_format)]


def nifti_intent(path: Path) -> str | None:
    """The intent code name in a NIfTI-1 or NIfTI-2 file's header (``"label"``, ``"none"``, ...).

    Only the header is read and decompressed, so a folder of segmentation masks is refused
    at a quarter of the cost of ``nibabel.load`` (0.3 against 1.2 ms a file).

    Returns:
        The intent's name, or None where the file does not start with a NIfTI header
        (``nibabel.load`` then says why).
    """
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError

    try:
        with nib.openers.ImageOpener(str(path)) as stream:
            raw = stream.read(nib.Nifti2Header.sizeof_hdr)
        for header_class in (nib.Nifti1Header, nib.Nifti2Header):
            if len(raw) >= header_class.sizeof_hdr and header_class.may_contain_header(raw):
                return str(header_class.from_fileobj(io.BytesIO(raw[: header_class.sizeof_hdr])).get_intent()[0])
    except (OSError, EOFError, ValueError, zlib.error, HeaderDataError):  # not gzip, cut short, a bad header
        return None
    return None


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float] | None, str]:
    import nibabel as nib

    if nifti_intent(path) == "label":
        raise NotAnImage(path, LABEL_MAP)
    try:
        image = nib.load(path)
    except Exception as exc:
        raise ScanError(path, f"not a readable NIfTI file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ScanError(path, f"not a NIfTI image: nibabel read it as {type(image).__name__}")
    check_header_size(path, [int(side) for side in image.shape])
    if image.header.get_intent()[0] == "label":  # a header nifti_intent could not read
        raise NotAnImage(path, LABEL_MAP)
    try:
        data = np.asarray(image.dataobj)
        zooms = [float(z) for z in image.header.get_zooms()]
    except Exception as exc:
        raise ScanError(path, f"not a readable NIfTI file: {type(exc).__name__}: {exc}") from exc
    if data.dtype.names:  # RGB NIfTI is a structured array
        data = np.stack([data[n] for n in data.dtype.names], axis=-1)
        zooms = zooms[: data.ndim - 1]
        kept = [axis for axis in range(data.ndim - 1) if data.shape[axis] != 1]
        pixels = to_grey(data).squeeze()
    else:
        kept = [axis for axis in range(data.ndim) if data.shape[axis] != 1]
        pixels = data.squeeze()
    pixels = pixels.T  # x first -> rows first
    spacing = _rows_first_spacing([zooms[axis] for axis in kept if axis < len(zooms)]) if pixels.ndim == 2 else None
    return pixels, spacing, "NIfTI"


def _read_itk(path: Path) -> tuple[np.ndarray, tuple[float, float] | None, str]:
    import itk

    check_detached_data_files(path)
    try:
        io = itk.ImageIOFactory.CreateImageIO(str(path), itk.CommonEnums.IOFileMode_ReadMode)
        if io is None:
            raise RuntimeError("ITK has no reader for this file")
        io.SetFileName(str(path))
        io.ReadImageInformation()
        sizes = [int(io.GetDimensions(axis)) for axis in range(io.GetNumberOfDimensions())]
        components = int(io.GetNumberOfComponents())
        component_type = str(io.GetComponentTypeAsString(io.GetComponentType()))
    except Exception as exc:
        raise ScanError(path, f"not a readable MetaImage/NRRD file: {_first_line(exc)}") from exc
    check_header_size(path, sizes)
    # ITK's Python wrapping reads only some pixel types and 2-D to 4-D images; asking for
    # another fails slowly (it lists every wrapped type), so refuse those here, and read
    # every grey image as float32 (make_scan converts to float32 anyway).
    if not ITK_DIMENSIONS[0] <= len(sizes) <= ITK_DIMENSIONS[1]:
        raise ScanError(path, f"a {len(sizes)}-D image: MetaImage/NRRD files of {ITK_DIMENSIONS[0]} to {ITK_DIMENSIONS[1]} dimensions are read")
    if components != 1 and not (components in (3, 4) and component_type == "unsigned_char"):
        raise ScanError(path, f"{components} components of type {component_type} per pixel: expected grey, or 8-bit RGB(A) colour")
    try:
        image = itk.imread(str(path), pixel_type=itk.F) if components == 1 else itk.imread(str(path))
    except Exception as exc:
        raise ScanError(path, f"not a readable MetaImage/NRRD file: {_first_line(exc)}") from exc
    pixels = np.asarray(itk.array_from_image(image))  # rows first: (z, y, x)
    spacing_xyz = [float(s) for s in image.GetSpacing()]
    if image.GetNumberOfComponentsPerPixel() > 1:
        pixels = to_grey(pixels)
    shape_xyz = pixels.shape[::-1]
    kept = [axis for axis in range(len(shape_xyz)) if shape_xyz[axis] != 1]
    pixels = pixels.squeeze()
    spacing = _rows_first_spacing([spacing_xyz[axis] for axis in kept if axis < len(spacing_xyz)]) if pixels.ndim == 2 else None
    return pixels, spacing, "NRRD" if path.name.lower().endswith((".nrrd", ".nhdr")) else "MetaImage"


def check_detached_data_files(header: Path) -> None:
    """Refuse a MetaImage/NRRD header whose data file is not a plain file beside it.

    A header names its pixel file (``ElementDataFile = x.raw``, ``data file: x.raw``); a
    name such as ``/dev/zero`` or ``../../etc/passwd`` would make ITK read a device (it
    crashed on ``/dev/zero``) or a file the user never gave. Names that do not exist are
    left to ITK to report.

    Raises:
        ScanError: the data file lies outside the header's folder, is not a regular file,
            or is over ``SCINTIPIPE_MAX_FILE_MB``.
    """
    folder = header.resolve().parent
    for data_file in detached_data_files(header):
        resolved = data_file.resolve()
        if not resolved.is_relative_to(folder):
            raise ScanError(header, f"the header's data file {str(data_file)!r} lies outside the header's folder: refused")
        if resolved.exists() and not resolved.is_file():
            raise ScanError(header, f"the header's data file {str(data_file)!r} is not a regular file: refused")
        check_file_size(resolved)


def check_header_size(path: Path, sizes_xyz: list[int]) -> None:
    """Check a header's axis sizes (x first) against the input limits before reading pixels.

    The first two axes make a frame (columns, rows); every further axis multiplies the frames.

    Raises:
        ScanError: a negative size, or over :mod:`scintipipe.loaders.limits`.
    """
    if any(side < 0 for side in sizes_xyz):
        raise ScanError(path, f"negative image size {sizes_xyz} in the header: the file is corrupt")
    columns, rows, *others = [*sizes_xyz, 1, 1][: max(2, len(sizes_xyz))]
    check_frame_size(path, rows, columns, int(np.prod(others, dtype=object)) if others else 1)


def _first_line(exc: BaseException) -> str:
    """ITK's reason for a failure, without its source location and object address.

    ITK's messages start with the C++ file and line (``.../itkNrrdImageIO.cxx:410:``), then
    ``itk::ERROR: NrrdImageIO(0x...): what failed``; NRRD adds the parser's trail, whose
    last line is the most specific.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not re.fullmatch(r"\S+\.(cxx|hxx|h|cpp):\d+:?", line)]
    lines = [re.sub(r"^(?:itk::|ITK )ERROR: \w+\(0x[0-9a-f]+\): ", "", line) for line in lines]
    if not lines:
        return type(exc).__name__
    reason = lines[0] if len(lines) == 1 or lines[-1] == lines[0] else f"{lines[0]} ({lines[-1]})"
    return reason[:300]


def _rows_first_spacing(xy: list[float]) -> tuple[float, float] | None:
    """``(row, column)`` spacing from the spacing of the two kept axes in x, y order."""
    if len(xy) != 2 or min(xy) <= 0:
        return None
    return xy[1], xy[0]
