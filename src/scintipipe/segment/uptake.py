"""99mTc thyroid uptake from full and empty syringe images (SNMMI/EANM practice).

Uptake (% of the injected activity) is the background-subtracted thyroid count rate over
the net count rate of the injected activity (full syringe minus empty syringe), every
count rate decay-corrected to the same moment (the thyroid acquisition)::

    uptake % = 100 * R_thyroid / (R_full * D(t_thyroid - t_full) - R_empty * D(t_thyroid - t_empty))
    D(t) = 2 ** (-t / T_half),   R = counts / acquisition time

Without an empty-syringe image the residual activity is taken as zero: the injected
activity is then overestimated by the residual (typically 1-5 %), so the uptake is
underestimated by the same fraction: the figure is a lower bound on what these counts
give with the residual known.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from scintipipe.case import source_file

SECONDS_PER_DAY = 86400.0

#: physical half-lives in hours
HALF_LIFE_H = {"Tc-99m": 6.0067, "I-123": 13.2235, "I-131": 8.0252 * 24.0}
TC99M_HALF_LIFE_H = HALF_LIFE_H["Tc-99m"]


@dataclass(frozen=True)
class SyringeCount:
    """The counts of one syringe acquisition.

    Attributes:
        counts: total counts in the image (the syringe in air; no background is subtracted).
        duration_s: acquisition time.
        time_s: acquisition start, in seconds on any clock shared with the thyroid image
            (e.g. seconds since midnight, or since the injection).
        view: detector view the counts come from (``ANT`` ...), for the record.
    """

    counts: float
    duration_s: float
    time_s: float
    view: str | None = None

    @property
    def rate(self) -> float:
        """Counts per second."""
        return self.counts / self.duration_s


def decay_factor(elapsed_s: float, half_life_h: float = TC99M_HALF_LIFE_H) -> float:
    """Fraction of the activity left after ``elapsed_s`` seconds (negative: before)."""
    return math.exp(-math.log(2) * elapsed_s / (3600.0 * half_life_h))


def thyroid_uptake_percent(
    thyroid_net_counts: float,
    thyroid_duration_s: float,
    thyroid_time_s: float,
    full: SyringeCount,
    empty: SyringeCount | None = None,
    half_life_h: float = TC99M_HALF_LIFE_H,
) -> float:
    """Thyroid uptake in percent of the injected activity.

    Args:
        thyroid_net_counts: background-subtracted thyroid counts.
        thyroid_duration_s: acquisition time of the thyroid image.
        thyroid_time_s: its acquisition start on the syringes' clock.
        full: the full syringe before injection.
        empty: the syringe after injection (residual activity); ``None`` counts the
            whole full syringe as injected, which overestimates the injected activity
            by the residual, so the uptake comes out low by that fraction.
        half_life_h: physical half-life of the radionuclide.

    Returns:
        Uptake in percent.

    Raises:
        ValueError: when the net syringe count rate is not positive.

    Example:
        >>> full = SyringeCount(counts=600_000, duration_s=60, time_s=0)
        >>> round(thyroid_uptake_percent(10_000, 100, 0, full), 3)
        1.0
    """
    thyroid_rate = thyroid_net_counts / thyroid_duration_s
    injected_rate = full.rate * decay_factor(thyroid_time_s - full.time_s, half_life_h)
    if empty is not None:
        injected_rate -= empty.rate * decay_factor(thyroid_time_s - empty.time_s, half_life_h)
    if injected_rate <= 0:
        raise ValueError(f"syringe net count rate is {injected_rate:.1f}/s: the empty syringe counts at least as much as the full one")
    return 100.0 * thyroid_rate / injected_rate


# --------------------------------------------------------------------------------------
# reading acquisition times and syringe images from DICOM
# --------------------------------------------------------------------------------------


def dicom_start_seconds(ds: pydicom.Dataset) -> float | None:
    """Acquisition start of a DICOM image in seconds since 0001-01-01 when a date is known,
    else since midnight (enough for images of the same day).

    Uses AcquisitionDate/Time, falling back to Content and Series date and time.
    """
    for date_key, time_key in (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"), ("SeriesDate", "SeriesTime")):
        text = str(ds.get(time_key) or "").strip()
        if not text:
            continue
        seconds = _dicom_time_seconds(text)
        date = str(ds.get(date_key) or ds.get("StudyDate") or "").strip()
        if len(date) == 8:
            day = dt.date(int(date[:4]), int(date[4:6]), int(date[6:8]))
            seconds += (day - dt.date(1, 1, 1)).days * 86400.0
        return seconds
    datetime_text = str(ds.get("AcquisitionDateTime") or "").strip()
    if datetime_text:
        return iso_seconds(dt.datetime.strptime(datetime_text[:14], "%Y%m%d%H%M%S").isoformat())
    return None


def iso_seconds(text: str) -> float:
    """Seconds since 0001-01-01 of an ISO 8601 date-time, or since midnight for a bare time."""
    if "T" not in text and "-" not in text:
        return _dicom_time_seconds(text.replace(":", ""))
    moment = dt.datetime.fromisoformat(text)
    return (moment.replace(tzinfo=None) - dt.datetime(1, 1, 1)).total_seconds()


def _dicom_time_seconds(text: str) -> float:
    hours, minutes = int(text[:2]), int(text[2:4] or 0)
    seconds = float(text[4:] or 0)
    return hours * 3600.0 + minutes * 60.0 + seconds


def _frame_views(ds: pydicom.Dataset, frames: int) -> list[str | None]:
    detectors = [d.get("ViewCodeSequence", [None])[0] for d in ds.get("DetectorInformationSequence", [])]
    names = [str(code.CodeMeaning).upper() if code is not None else None for code in detectors]
    vector = ds.get("DetectorVector")
    if vector is None:
        vector = list(range(1, frames + 1))
    elif isinstance(vector, (int, float)):
        vector = [vector]
    else:
        vector = list(vector)
    return [names[int(d) - 1] if 0 < int(d) <= len(names) else None for d in vector][:frames]


def read_syringe_dicom(path: str | Path, view: str | None = "ANT") -> SyringeCount:
    """Read a syringe image; with several frames, use the one of ``view`` (``ANT``), else
    the first.

    Args:
        path: an NM (or any single/multi-frame) DICOM file of the syringe.
        view: detector view to prefer (matched as a substring of the view's meaning).

    Raises:
        ValueError: the file has no acquisition time or frame duration.
    """
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    frames = pixels.reshape(-1, *pixels.shape[-2:])
    views = _frame_views(ds, len(frames))
    index = 0
    if view:
        matches = [i for i, name in enumerate(views) if name and view.upper() in name and "POST" not in name]
        index = matches[0] if matches else 0
    duration_ms = ds.get("ActualFrameDuration")
    if duration_ms is None:
        raise ValueError(f"{path}: no ActualFrameDuration, cannot compute a count rate")
    start = dicom_start_seconds(ds)
    if start is None:
        raise ValueError(f"{path}: no acquisition time, cannot correct for decay")
    return SyringeCount(float(frames[index].sum(dtype=np.int64)), float(duration_ms) / 1000.0, start, views[index] if index < len(views) else None)


def scan_start_seconds(meta: dict[str, Any]) -> float | None:
    """Acquisition start of a pipeline scan on the same clock as :func:`read_syringe_dicom`:
    ``acquisition_datetime`` from the loader, else the source DICOM's tags."""
    text = meta.get("acquisition_datetime")
    if text:
        return iso_seconds(str(text))
    source = source_file(str(meta.get("filename_or_obj") or ""))
    if source and Path(source).is_file():
        try:
            return dicom_start_seconds(pydicom.dcmread(source, stop_before_pixels=True))
        except pydicom.errors.InvalidDicomError:
            return None
    return None


def syringe_view(meta: dict[str, Any]) -> str:
    """The detector view of the syringe frame to use: the thyroid scan's own."""
    view = str(meta.get("view") or "anterior").upper()
    return "POST" if view.startswith("POST") else "ANT"


def elapsed_seconds(later: float, earlier: float) -> float:
    """``later - earlier``; when one clock has a date and the other only a time of day,
    compare the times of day."""
    difference = later - earlier
    if abs(difference) > 2 * SECONDS_PER_DAY:
        difference = (difference + SECONDS_PER_DAY / 2) % SECONDS_PER_DAY - SECONDS_PER_DAY / 2
    return difference


def uptake_quantities(meta: dict[str, Any], net_counts: float, full_path: Path, empty_path: Path | None) -> tuple[dict[str, float], list[str]]:
    """Uptake and the syringe figures it used, with notes on what was assumed.

    Raises:
        ValueError: a syringe image or the scan lacks the times or durations needed.
    """
    duration = meta.get("frame_duration_s")
    start = scan_start_seconds(meta)
    if not duration or start is None:
        raise ValueError("the scan has no frame duration or acquisition time")
    view = syringe_view(meta)
    full = read_syringe_dicom(full_path, view)
    empty = read_syringe_dicom(empty_path, view) if empty_path else None
    radionuclide = meta.get("radionuclide") or "Tc-99m"
    half_life = HALF_LIFE_H.get(str(radionuclide), HALF_LIFE_H["Tc-99m"])
    full = SyringeCount(full.counts, full.duration_s, start - elapsed_seconds(start, full.time_s), full.view)
    if empty is not None:
        empty = SyringeCount(empty.counts, empty.duration_s, start - elapsed_seconds(start, empty.time_s), empty.view)
    uptake = thyroid_uptake_percent(net_counts, float(duration), start, full, empty, half_life)
    quantities = {
        "uptake_percent": uptake,
        "syringe_full_counts_per_s": full.rate,
        "syringe_full_to_scan_minutes": (start - full.time_s) / 60.0,
    }
    notes = [f"uptake: {radionuclide} half-life {half_life:g} h; syringe frame {full.view or 'first'}"]
    if empty is None:
        notes.append("uptake: no empty-syringe image, residual activity taken as zero (the uptake is low by the residual fraction)")
    else:
        quantities["syringe_empty_counts_per_s"] = empty.rate
    return quantities, notes
