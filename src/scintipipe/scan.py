"""The data that flows through the pipeline stages.

A *scan* is a MONAI-style dictionary. Its ``"image"`` is a :class:`monai.data.MetaTensor`
of counts (float32, shape ``(1, rows, columns)``) whose ``meta`` carries what later stages
need. Loaders build scans with :func:`make_scan`, which also checks that the pixels are a
usable planar image.

Keys of ``scan["image"].meta`` (missing values are ``None``):

===========================  ==========================================================
``filename_or_obj``          the source, ``path`` or ``path#view`` for multi-frame files
``spacing``                  pixel spacing in mm as ``(row, column)``
``modality``                 DICOM modality (``NM``, ``OT``...) or ``None`` for exports
``radionuclide``             e.g. ``Tc-99m``, ``I-131``
``view``                     e.g. ``anterior``, ``posterior``
``frame_duration_s``         acquisition time of the frame in seconds
``total_counts``             sum of the counts in the frame
``acquisition_datetime``     ISO 8601 string
``study_instance_uid``       the source's StudyInstanceUID
``series_instance_uid``      the source's SeriesInstanceUID
``sop_instance_uid``         the source's SOPInstanceUID
``is_counts``                ``True`` when pixels are counts, ``False`` for display exports
===========================  ==========================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

from scintipipe.errors import ScanError

IMAGE = "image"
SOURCE = "source"

META_KEYS = (
    "spacing",
    "modality",
    "radionuclide",
    "view",
    "frame_duration_s",
    "total_counts",
    "acquisition_datetime",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "is_counts",
)

MIN_SIDE = 16
MAX_SIDE = 4096


def make_scan(pixels: np.ndarray, source: str, **meta: Any) -> dict[str, Any]:
    """Build a pipeline scan from a 2-D pixel array, checking that it is usable.

    Args:
        pixels: 2-D array of counts (or display values for exports), rows first.
        source: the file name, ``path#view`` for one view of a multi-frame file.
        **meta: values for :data:`META_KEYS`; unknown keys are kept as extra metadata.

    Returns:
        ``{"image": MetaTensor(1, rows, cols), "source": source}``.

    Raises:
        ScanError: the array is not 2-D, has an absurd size, holds non-finite values,
            or is empty or constant.

    Example:
        >>> scan = make_scan(np.ones((64, 64)) * np.arange(64), "a.dcm", spacing=(2.0, 2.0))
        >>> tuple(scan["image"].shape), scan["image"].meta["spacing"]
        ((1, 64, 64), (2.0, 2.0))
    """
    array = np.asarray(pixels)
    check_planar_pixels(array, source)
    array = array.astype(np.float32, copy=False)
    spacing = meta.get("spacing")
    if spacing is not None:
        spacing = (float(spacing[0]), float(spacing[1]))
        if not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise ScanError(source, f"invalid pixel spacing {spacing}")
    info: dict[str, Any] = {key: meta.get(key) for key in META_KEYS}
    info.update({k: v for k, v in meta.items() if k not in META_KEYS})
    info["spacing"] = spacing
    info["total_counts"] = float(array.sum()) if meta.get("total_counts") is None else float(meta["total_counts"])
    info["filename_or_obj"] = source
    sx, sy = spacing if spacing is not None else (1.0, 1.0)
    info["affine"] = torch.diag(torch.tensor([sx, sy, 1.0, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(array))[None], meta=info)
    return {IMAGE: image, SOURCE: source}


def check_planar_pixels(array: np.ndarray, source: str) -> None:
    """Raise :class:`ScanError` unless ``array`` is a usable planar image.

    Args:
        array: pixel array, expected 2-D.
        source: file name used in the error message.
    """
    if array.ndim == 3 and array.shape[0] > 1:
        raise ScanError(
            source,
            f"a 3-D volume of {array.shape[0]} slices ({array.shape[1]}x{array.shape[2]}) "
            "where a planar view is expected; planar classification needs a 2-D image",
        )
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ScanError(source, f"expected a 2-D image, found an array of shape {array.shape}")
    rows, cols = array.shape
    if min(rows, cols) < MIN_SIDE or max(rows, cols) > MAX_SIDE:
        raise ScanError(
            source,
            f"absurd image size {rows}x{cols}; expected {MIN_SIDE} to {MAX_SIDE} pixels a side",
        )
    if array.size == 0:
        raise ScanError(source, "empty pixel data")
    if not np.issubdtype(array.dtype, np.number):
        raise ScanError(source, f"pixel data of non-numeric type {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ScanError(source, "pixel data contains NaN or infinite values")
    if float(array.max()) == float(array.min()):
        raise ScanError(source, f"constant pixel data (every pixel is {array.flat[0]}): no image")


def describe(scan: dict[str, Any]) -> dict[str, Any]:
    """Return the scan's metadata as plain JSON-serialisable values.

    Args:
        scan: a scan built by :func:`make_scan`.
    """
    meta = scan[IMAGE].meta
    out = {key: meta.get(key) for key in META_KEYS}
    out["spacing"] = list(out["spacing"]) if out["spacing"] is not None else None
    out["shape"] = list(scan[IMAGE].shape[-2:])
    out["source"] = scan[SOURCE]
    return out
