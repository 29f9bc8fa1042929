"""Load NIfTI (nibabel) and MetaImage/NRRD (ITK) files holding one planar image.

A NIfTI array's first axis is ``x`` (columns): a planar image is stored ``(columns, rows)``
or ``(columns, rows, 1)`` and comes back rows first, the way
:mod:`scintipipe.simulate.masks_io` writes it. Singleton axes are dropped; anything left
with more than two axes is a volume, which :func:`scintipipe.scan.make_scan` rejects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.errors import NotAnImage, ScanError
from scintipipe.loaders.grey import to_grey
from scintipipe.scan import make_scan

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def load_volume(path: str | Path) -> list[dict[str, Any]]:
    """Read a NIfTI, MetaImage or NRRD file into one scan.

    Args:
        path: the file (``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``).

    Raises:
        ScanError: unreadable file, unknown extension, a true 3-D volume, or pixels that
            :func:`scintipipe.scan.make_scan` rejects.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        pixels, spacing, image_format = _read_nifti(path)
    elif name.endswith(ITK_SUFFIXES):
        pixels, spacing, image_format = _read_itk(path)
    else:
        raise ScanError(path, "not a NIfTI, MetaImage or NRRD file name (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr)")
    return [make_scan(pixels, str(path), spacing=spacing, modality=None, is_counts=False, image_format=image_format)]


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float] | None, str]:
    import nibabel as nib

    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj)
        zooms = [float(z) for z in image.header.get_zooms()]
    except Exception as exc:  # noqa: BLE001  (nibabel raises many kinds on corrupt files)
        raise ScanError(path, f"not a readable NIfTI file: {type(exc).__name__}: {exc}") from exc
    if image.header.get_intent()[0] == "label":
        raise NotAnImage(path, "a NIfTI label map (segmentation mask, intent 'label'), not a scan")
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

    try:
        image = itk.imread(str(path))
    except Exception as exc:  # noqa: BLE001  (ITK raises RuntimeError with a long trace)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScanError(path, f"not a readable MetaImage/NRRD file: {first_line[:300]}") from exc
    pixels = np.asarray(itk.array_from_image(image))  # rows first: (z, y, x)
    spacing_xyz = [float(s) for s in image.GetSpacing()]
    if image.GetNumberOfComponentsPerPixel() > 1:
        pixels = to_grey(pixels)
    shape_xyz = pixels.shape[::-1]
    kept = [axis for axis in range(len(shape_xyz)) if shape_xyz[axis] != 1]
    pixels = pixels.squeeze()
    spacing = _rows_first_spacing([spacing_xyz[axis] for axis in kept if axis < len(spacing_xyz)]) if pixels.ndim == 2 else None
    return pixels, spacing, "NRRD" if path.name.lower().endswith((".nrrd", ".nhdr")) else "MetaImage"


def _rows_first_spacing(xy: list[float]) -> tuple[float, float] | None:
    """``(row, column)`` spacing from the spacing of the two kept axes in x, y order."""
    if len(xy) != 2 or min(xy) <= 0:
        return None
    return xy[1], xy[0]
