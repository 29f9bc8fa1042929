"""Ground-truth masks as one NIfTI label map per case.

Structures overlap (a nodule lies inside a lobe), so the label map paints them in the
order of :data:`MASK_LABELS`; later entries win. Nodules therefore hide the lobe pixels
they cover: the lobe's full extent is the union of its label and the nodule labels
inside it. The table is written next to the maps as ``masks/labels.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

#: label value, structure name; painted in this order (later wins)
MASK_LABELS: tuple[tuple[int, str], ...] = (
    (1, "body"),
    (2, "oesophagus"),
    (3, "oral_cavity"),
    (4, "parotid_right"),
    (5, "parotid_left"),
    (6, "submandibular_right"),
    (7, "submandibular_left"),
    (8, "thyroid_right"),
    (9, "thyroid_left"),
    (10, "isthmus"),
    (11, "pyramidal_lobe"),
    (12, "nodules_cold"),
    (13, "nodules_hot"),
    (14, "stomach"),
)


def label_map(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Paint the structures of ``masks`` into one ``uint8`` label image."""
    shape = next(iter(masks.values())).shape
    out = np.zeros(shape, dtype=np.uint8)
    for value, name in MASK_LABELS:
        mask = masks.get(name)
        if mask is not None:
            out[mask] = value
    return out


def masks_from_label_map(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`label_map` (as far as painting order allows)."""
    return {name: labels == value for value, name in MASK_LABELS}


def write_label_map(masks: dict[str, np.ndarray], pixel_mm: float, path: Path) -> Path:
    """Write the label map as NIfTI, shape ``(columns, rows, 1)`` with the pixel spacing.

    NIfTI's first axis is ``x``; the array is transposed so that viewers show the image
    the way the DICOM is displayed (``nib.load(path).get_fdata()[:, :, 0].T`` gives the
    rows-first image back).
    """
    labels = label_map(masks).T[:, :, None]
    affine = np.diag([pixel_mm, pixel_mm, 1.0, 1.0])
    image = nib.Nifti1Image(labels, affine)
    image.header.set_xyzt_units("mm")
    image.header.set_intent("label")  # loaders skip label maps: they are masks, not scans
    nib.save(image, path)
    return path


def read_label_map(path: Path) -> np.ndarray:
    """Read a label map written by :func:`write_label_map`, rows first."""
    image = nib.load(path)
    if not isinstance(image, nib.Nifti1Image):
        raise ValueError(f"{path} is a {type(image).__name__}, not a label map written by write_label_map")
    return np.asarray(image.dataobj)[:, :, 0].T


def write_label_table(folder: Path) -> Path:
    """Write ``labels.json``: ``{"0": "background", "1": "body", ...}``."""
    table = {"0": "background", **{str(value): name for value, name in MASK_LABELS}}
    path = folder / "labels.json"
    path.write_text(json.dumps(table, indent=2) + "\n")
    return path
