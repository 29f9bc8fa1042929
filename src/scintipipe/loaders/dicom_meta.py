"""Scan metadata from a DICOM dataset: spacing, radionuclide, times, UIDs and extras."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import NuclearMedicineImageStorage
from pydicom.valuerep import DA, DT, TM

from scintipipe.loaders.dicom_fast import element_value
from scintipipe.loaders.dicom_pixels import number_of_frames
from scintipipe.loaders.nuclides import normalise_radionuclide, radionuclide_from_window
from scintipipe.loaders.views import as_list, detector_of_frame

#: (date, time) attribute pairs tried in turn for the acquisition date and time
_DATE_TIME_PAIRS = (
    ("AcquisitionDate", "AcquisitionTime"),
    ("SeriesDate", "SeriesTime"),
    ("ContentDate", "ContentTime"),
    ("StudyDate", "StudyTime"),
)


def dataset_metadata(ds: Dataset) -> dict[str, Any]:
    """Metadata shared by every frame of ``ds``, as keyword arguments for ``make_scan``.

    Returns:
        The :data:`scintipipe.scan.META_KEYS` a DICOM file can fill (but ``view`` and
        ``total_counts``) plus extras that are present: ``patient_id``, ``study_date``,
        ``manufacturer``, ``manufacturer_model``, ``series_description``, ``body_part``, ``image_type``,
        ``study_description``, ``sop_class``, ``transfer_syntax``, ``lossy_compression``,
        ``acquisition_termination``, ``number_of_frames``.
    """
    sop = sop_class(ds)
    meta: dict[str, Any] = {
        "spacing": pixel_spacing(ds),
        "modality": _text(element_value(ds, "Modality")),
        "radionuclide": radionuclide(ds),
        "frame_duration_s": frame_duration_s(ds),
        "acquisition_datetime": acquisition_datetime(ds),
        "study_instance_uid": _text(element_value(ds, "StudyInstanceUID")),
        "series_instance_uid": _text(element_value(ds, "SeriesInstanceUID")),
        "sop_instance_uid": _text(element_value(ds, "SOPInstanceUID")),
        "is_counts": sop == NuclearMedicineImageStorage,
    }
    study_date = _date(element_value(ds, "StudyDate"))
    file_meta = getattr(ds, "file_meta", None)
    syntax = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    extras = {
        "patient_id": _text(element_value(ds, "PatientID")),
        "study_date": study_date.isoformat() if study_date else None,
        "manufacturer": _text(element_value(ds, "Manufacturer")),
        "manufacturer_model": _text(element_value(ds, "ManufacturerModelName")),
        "series_description": _text(element_value(ds, "SeriesDescription")),
        "body_part": _text(element_value(ds, "BodyPartExamined")),
        "image_type": "\\".join(str(v) for v in element_value(ds, "ImageType") or []) or None,
        "study_description": _text(element_value(ds, "StudyDescription")),
        "sop_class": sop.name if sop else None,
        "transfer_syntax": syntax.name if syntax else None,
        "lossy_compression": _text(element_value(ds, "LossyImageCompression")) == "01" or None,
        "acquisition_termination": _text(element_value(ds, "AcquisitionTerminationCondition")),
        "number_of_frames": number_of_frames(ds),
    }
    meta.update({key: value for key, value in extras.items() if value is not None})
    return meta


def frame_metadata(ds: Dataset, frame: int, n_frames: int) -> dict[str, Any]:
    """Metadata of one frame (0-based): its detector, energy window and counts.

    Returns:
        Present values among ``frame_index`` (1-based), ``detector``, ``start_angle``,
        ``zoom``, ``energy_window`` (name), ``energy_window_kev`` ``[lower, upper]`` and
        ``counts_accumulated`` (only for a single-frame file: the attribute covers the file).
    """
    meta: dict[str, Any] = {"frame_index": frame + 1}
    detector = detector_of_frame(ds, frame, n_frames)
    if detector is not None:
        vector = as_list(element_value(ds, "DetectorVector"))
        meta["detector"] = int(vector[frame]) if len(vector) == n_frames else None
        meta["start_angle"] = _float(element_value(detector, "StartAngle"))
        zoom = element_value(detector, "ZoomFactor")
        meta["zoom"] = _floats(zoom) if zoom is not None and not isinstance(zoom, (str, bytes, float, int)) else _float(zoom)
    window = energy_window(ds, frame, n_frames)
    if window is not None:
        meta["energy_window"] = _text(element_value(window, "EnergyWindowName"))
        lower, upper = window_limits(window)
        meta["energy_window_kev"] = [lower, upper] if lower is not None and upper is not None else None
    if n_frames == 1:
        meta["counts_accumulated"] = _int(element_value(ds, "CountsAccumulated"))
    return {key: value for key, value in meta.items() if value is not None}


def sop_class(ds: Dataset) -> Any:
    """The SOP Class UID, from the dataset or else from the file meta information."""
    uid = element_value(ds, "SOPClassUID")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = element_value(ds.file_meta, "MediaStorageSOPClassUID")
    return uid or None


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """``(row, column)`` spacing in mm from Pixel Spacing, else Imager Pixel Spacing."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = element_value(ds, key)
        try:
            if value is not None and len(value) == 2 and min(float(v) for v in value) > 0:
                return float(value[0]), float(value[1])
        except (TypeError, ValueError):
            continue
    return None


def radionuclide(ds: Dataset) -> str | None:
    """The radionuclide, normalised (``Tc-99m``), from the radiopharmaceutical codes or
    text, else the energy window name, else the energy window limits."""
    for info in element_value(ds, "RadiopharmaceuticalInformationSequence") or []:
        for code in element_value(info, "RadionuclideCodeSequence") or []:
            found = normalise_radionuclide(element_value(code, "CodeMeaning")) or normalise_radionuclide(element_value(code, "CodeValue"))
            if found:
                return found
        found = normalise_radionuclide(element_value(info, "Radiopharmaceutical"))
        if found:
            return found
    windows = list(element_value(ds, "EnergyWindowInformationSequence") or [])
    for window in windows:
        found = normalise_radionuclide(element_value(window, "EnergyWindowName"))
        if found:
            return found
    guesses = {radionuclide_from_window(*window_limits(window)) for window in windows}
    guesses.discard(None)
    return guesses.pop() if len(guesses) == 1 else None


def energy_window(ds: Dataset, frame: int, n_frames: int) -> Dataset | None:
    """The Energy Window Information Sequence item of ``frame`` (0-based), if known."""
    windows = list(element_value(ds, "EnergyWindowInformationSequence") or [])
    if not windows:
        return None
    vector = as_list(element_value(ds, "EnergyWindowVector"))
    index = int(vector[frame]) - 1 if len(vector) == n_frames else 0 if len(windows) == 1 else -1
    return windows[index] if 0 <= index < len(windows) else None


def window_limits(window: Dataset) -> tuple[float | None, float | None]:
    """``(lower, upper)`` keV of an energy window item (its first range)."""
    ranges = list(element_value(window, "EnergyWindowRangeSequence") or [])
    if not ranges:
        return None, None
    return _float(element_value(ranges[0], "EnergyWindowLowerLimit")), _float(element_value(ranges[0], "EnergyWindowUpperLimit"))


def frame_duration_s(ds: Dataset) -> float | None:
    """Actual Frame Duration (ms) in seconds, from the dataset or its first phase."""
    value = element_value(ds, "ActualFrameDuration")
    if value is None:
        phases = list(element_value(ds, "PhaseInformationSequence") or element_value(ds, "RotationInformationSequence") or [])
        value = element_value(phases[0], "ActualFrameDuration") if phases else None
    ms = _float(value)
    return ms / 1000.0 if ms is not None and ms > 0 else None


def acquisition_datetime(ds: Dataset) -> str | None:
    """ISO 8601 acquisition date and time.

    Acquisition DateTime first; then the first time among Acquisition, Series, Content and
    Study Time, with the date of the same level (or the first date present). Without any
    date, the time alone (``"15:34:36.585000"``); without any time, the date alone.
    """
    stamp = element_value(ds, "AcquisitionDateTime")
    if stamp:
        try:
            return DT(stamp).isoformat()
        except (TypeError, ValueError):
            pass
    dates = [_date(element_value(ds, d)) for d, _ in _DATE_TIME_PAIRS]
    first_date = next((d for d in dates if d), None)
    for (_, time_key), date in zip(_DATE_TIME_PAIRS, dates, strict=True):
        time = _time(element_value(ds, time_key))
        if time is not None:
            date = date or first_date
            return dt.datetime.combine(date, time).isoformat() if date else time.isoformat()
    return first_date.isoformat() if first_date else None


def _date(value: Any) -> dt.date | None:
    try:
        return DA(value) if value else None
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> dt.time | None:
    try:
        return TM(value) if value else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _floats(values: Any) -> list[float] | None:
    """Every value as a float, or ``None`` when any of them is not a number."""
    numbers = [_float(value) for value in values]
    defined = [number for number in numbers if number is not None]
    return defined if numbers and len(defined) == len(numbers) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and math.isfinite(number) else None
