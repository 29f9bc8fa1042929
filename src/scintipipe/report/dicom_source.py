"""The source DICOM of a case, read again to copy its patient and study into results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from scintipipe.case import source_file


def source_path(case: dict[str, Any]) -> Path:
    """The case's source file (``#view`` stripped)."""
    meta = getattr(case["image"], "meta", {}) or {}
    return Path(source_file(str(meta.get("filename_or_obj") or case["source"])))


#: Patient and General Study attributes of type 2 (present, possibly empty) that
#: de-identified files often drop; results need them present to be valid
TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def read_source_dataset(case: dict[str, Any]) -> pydicom.Dataset | None:
    """The source's DICOM header (no pixels), or ``None`` for a non-DICOM source (or one too damaged to refer to).

    Missing type 2 patient and study attributes are added empty, so results copied from
    a de-identified source are still valid; present values are never changed.
    """
    path = source_path(case)
    if not path.is_file():
        return None
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError):
        return None
    if "SOPInstanceUID" not in dataset or "StudyInstanceUID" not in dataset:
        return None
    if "SOPClassUID" not in dataset:  # a damaged header: the file meta still says what the object is
        media_class = getattr(dataset, "file_meta", None) and dataset.file_meta.get("MediaStorageSOPClassUID")
        if not media_class:
            return None
        dataset.SOPClassUID = media_class
    for keyword in TYPE2_PATIENT_STUDY:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def frame_number(case: dict[str, Any], dataset: pydicom.Dataset) -> int | None:
    """The 1-based frame of a multi-frame source the case's view came from, if known."""
    if int(dataset.get("NumberOfFrames", 1) or 1) <= 1:
        return None
    meta = getattr(case["image"], "meta", {}) or {}
    for key in ("frame_number", "frame_index"):
        if meta.get(key) is not None:
            return int(meta[key]) + (1 if key == "frame_index" else 0)
    return None
