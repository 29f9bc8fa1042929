"""Label images the server sends (regions of interest, Grad-CAM region) and reads (readers' labels).

A label image is a NIfTI file laid out like the simulator's masks: shape ``(columns,
rows, 1)``, ``uint8``, intent ``label``, the pixel spacing in the affine, so 3D Slicer and
OHIF overlay it on the scan it came from. When the scan itself was a NIfTI file the
label takes that file's affine, so both line up in the viewer exactly.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

#: ROI label values of the ``<bundle>_roi`` model, painted in this order (nodules last,
#: over the lobes that contain them)
ROI_LABELS: dict[str, int] = {
    "thyroid_right": 1,
    "thyroid_left": 2,
    "isthmus": 3,
    "nodules_hot": 4,
    "nodules_cold": 5,
    "salivary_right": 6,
    "salivary_left": 7,
    "background_region": 8,
}
#: the segmenter's ROI name for each label name (its background ring is ``background``)
ROI_SOURCE_NAMES = {"background_region": "background"}
PAINT_ORDER = ("background_region", "salivary_right", "salivary_left", "thyroid_right", "thyroid_left", "isthmus", "nodules_cold", "nodules_hot")

GRADCAM_LABELS: dict[str, int] = {"gradcam_region": 1}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
CLASS_LABEL_SUFFIXES = (".json", ".txt")


def roi_label_map(rois: dict[str, np.ndarray]) -> np.ndarray:
    """Paint the segmenter's boolean ROIs into one ``uint8`` image (rows first)."""
    shape = next(iter(rois.values())).shape
    out = np.zeros(shape, dtype=np.uint8)
    for name in PAINT_ORDER:
        mask = rois.get(ROI_SOURCE_NAMES.get(name, name))
        if mask is not None and mask.shape == shape:
            out[np.asarray(mask, dtype=bool)] = ROI_LABELS[name]
    return out


def region_label_map(heatmap: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels where a [0, 1] saliency map reaches ``threshold``, as label 1."""
    return (np.asarray(heatmap) >= threshold).astype(np.uint8)


def load_nifti(path: Path) -> SpatialImage:
    """``nib.load``, checked to be an image with an affine (not, say, a CIFTI or a surface)."""
    image = nib.load(path)
    if not isinstance(image, SpatialImage):
        raise ValueError(f"{path.name} is a {type(image).__name__}, not an image")
    return image


def write_label_nifti(labels: np.ndarray, path: Path, spacing: Sequence[float] | None = None, like: Path | None = None) -> Path:
    """Write a rows-first label image as NIfTI for viewers.

    Args:
        labels: ``(rows, columns)`` ``uint8`` labels.
        path: a ``.nii.gz`` or ``.nii`` path.
        spacing: ``(row, column)`` pixel spacing in mm (default 1 mm).
        like: the scan's own NIfTI file, whose affine the label then takes.
    """
    affine = np.diag([float(spacing[1]), float(spacing[0]), 1.0, 1.0]) if spacing else np.eye(4)
    if like is not None and like.name.lower().endswith(NIFTI_SUFFIXES):
        try:
            affine = load_nifti(like).affine
        except Exception:  # noqa: BLE001  (nibabel raises many kinds on a bad file; fall back to the spacing affine)
            pass
    image = nib.Nifti1Image(np.ascontiguousarray(labels.T[:, :, None].astype(np.uint8)), affine)
    image.header.set_xyzt_units("mm")
    image.header.set_intent("label")
    nib.save(image, path)
    return path


def read_label_nifti(path: Path) -> np.ndarray:
    """Read a label image back, rows first (for tests and training)."""
    data = np.asarray(load_nifti(path).dataobj)
    return data.reshape(data.shape[0], data.shape[1]).T


def check_label_file(path: Path, suffix: str) -> dict[str, Any]:
    """Check an uploaded label and describe it.

    A label is a NIfTI label image (a reader's corrected regions) or, for
    classification, a ``.json`` (``{"label": "focal_increased"}``) or ``.txt`` file
    holding the class name.

    Returns:
        ``{"kind": "image", "shape": [...], "values": [...]}`` or
        ``{"kind": "class", "class_label": name}``.

    Raises:
        ValueError: the file is neither, with the reason.
    """
    if suffix in NIFTI_SUFFIXES:
        try:
            data = np.asarray(load_nifti(path).dataobj)
        except Exception as exc:
            raise ValueError(f"the label is not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
        if data.ndim < 2 or data.size == 0 or not np.issubdtype(data.dtype, np.number):
            raise ValueError(f"the label image has shape {data.shape}; a 2-D label image is needed")
        values = np.unique(data)
        if values.size > 256 or not np.allclose(values, np.round(values)):
            raise ValueError("the label image holds non-integer or too many distinct values; labels are small integers")
        return {"kind": "image", "shape": list(data.shape), "values": [int(v) for v in values]}
    if suffix in CLASS_LABEL_SUFFIXES:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValueError("the label file is not UTF-8 text") from exc
        name: object = text
        if suffix == ".json":
            try:
                content = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"the label file is not valid JSON: {exc}") from exc
            name = content.get("label") if isinstance(content, dict) else content
        if not isinstance(name, str) or not name or len(name) > 100 or "\n" in name:
            raise ValueError('a class label file holds one class name (text) or {"label": name} (JSON)')
        return {"kind": "class", "class_label": name}
    raise ValueError(f"labels are NIfTI label images (.nii, .nii.gz) or class names (.json, .txt), not {suffix or 'files without an extension'}")


def class_label_from(params: dict[str, Any], described: dict[str, Any], known: Sequence[str]) -> str | None:
    """The reader's class for an image, from the label file or the save request.

    Looked for in order: a class label file; ``params["label"]`` or
    ``params["class_label"]``; a segment of ``params["label_info"]`` (what 3D Slicer sends)
    named after one of the ``known`` classes.
    """
    if described.get("kind") == "class":
        return described["class_label"]
    for key in ("class_label", "label"):
        if isinstance(params.get(key), str) and params[key]:
            return params[key]
    for segment in params.get("label_info") or []:
        name = segment.get("name") if isinstance(segment, dict) else None
        if name in known:
            return name
    return None
