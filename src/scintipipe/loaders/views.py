"""Name the view of each frame of an NM file: ``anterior``, ``posterior``, ``left_lateral``...

Sources, best first: the View Code Sequence of the frame's detector (``FACE ANT``, ``ANT``,
``Anterior projection``), the detector's Start Angle (DICOM: 0 degrees is the detector at
the patient's back, i.e. a posterior view, increasing towards the patient's left side),
and for a single-frame file the view codes or View Position at the top level of the
dataset and the Series Description.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.dataset import Dataset

from scintipipe.loaders.dicom_fast import element_value

#: words that name each view, matched against upper-case text split into words
_VIEW_WORDS = (
    ("left_anterior_oblique", ("LAO", "LEFT ANTERIOR OBLIQUE", "OAG", "OBLIQUE ANTERIEURE GAUCHE")),
    ("right_anterior_oblique", ("RAO", "RIGHT ANTERIOR OBLIQUE", "OAD", "OBLIQUE ANTERIEURE DROITE")),
    ("left_posterior_oblique", ("LPO", "LEFT POSTERIOR OBLIQUE", "OPG")),
    ("right_posterior_oblique", ("RPO", "RIGHT POSTERIOR OBLIQUE", "OPD")),
    ("left_lateral", ("LEFT LATERAL", "LAT LEFT", "L LAT", "LT LAT", "LAT L", "LLAT", "LATERAL LEFT", "PROFIL GAUCHE", "LAT G")),
    ("right_lateral", ("RIGHT LATERAL", "LAT RIGHT", "R LAT", "RT LAT", "LAT R", "RLAT", "LATERAL RIGHT", "PROFIL DROIT", "LAT D")),
    ("anterior", ("ANTERIOR", "ANT", "FACE ANT", "ANTERIEUR", "ANTERIEURE")),
    ("posterior", ("POSTERIOR", "POST", "FACE POST", "POSTERIEUR", "POSTERIEURE", "DOS")),
)

#: detector angle (degrees, DICOM Start Angle) of each view
_ANGLE_VIEWS = ((0.0, "posterior"), (90.0, "left_lateral"), (180.0, "anterior"), (270.0, "right_lateral"), (360.0, "posterior"))
_ANGLE_TOLERANCE = 10.0


def normalise_view(text: str | None) -> str | None:
    """Return the view named in ``text`` (``"FACE ANT"`` -> ``"anterior"``) or ``None``.

    Example:
        >>> normalise_view("FACE ANT"), normalise_view("Posterior projection"), normalise_view("LAO")
        ('anterior', 'posterior', 'left_anterior_oblique')
    """
    if not text:
        return None
    words = " " + " ".join(re.sub(r"[^A-Z0-9]+", " ", _ascii_upper(text)).split()) + " "
    for view, phrases in _VIEW_WORDS:
        if any(f" {phrase} " in words for phrase in phrases):
            return view
    return None


def view_from_angle(angle: Any) -> str | None:
    """Return the view of a detector at ``angle`` degrees (DICOM Start Angle), or ``None``."""
    try:
        degrees = float(angle) % 360.0
    except (TypeError, ValueError):
        return None
    for reference, view in _ANGLE_VIEWS:
        if abs(degrees - reference) <= _ANGLE_TOLERANCE:
            return view
    return None


def view_of_codes(items: Any) -> str | None:
    """Return the view a code sequence names (meaning first, then value)."""
    for item in items or []:
        view = normalise_view(element_value(item, "CodeMeaning")) or normalise_view(element_value(item, "CodeValue"))
        if view:
            return view
    return None


def detector_of_frame(ds: Dataset, frame: int, n_frames: int) -> Dataset | None:
    """The Detector Information Sequence item that acquired ``frame`` (0-based), if known."""
    detectors = list(element_value(ds, "DetectorInformationSequence") or [])
    if not detectors:
        return None
    vector = as_list(element_value(ds, "DetectorVector"))
    if len(vector) == n_frames:
        index = int(vector[frame]) - 1
    elif len(detectors) == 1:
        index = 0
    elif len(detectors) == n_frames:
        index = frame
    else:
        return None
    return detectors[index] if 0 <= index < len(detectors) else None


def frame_views(ds: Dataset, n_frames: int) -> list[str | None]:
    """The view of each frame, ``None`` where it cannot be told.

    Args:
        ds: the dataset.
        n_frames: the number of frames in its pixel data.
    """
    views = []
    for frame in range(n_frames):
        detector = detector_of_frame(ds, frame, n_frames)
        view = None
        if detector is not None:
            view = view_of_codes(element_value(detector, "ViewCodeSequence")) or view_from_angle(element_value(detector, "StartAngle"))
        views.append(view)
    if n_frames == 1 and views[0] is None:
        views[0] = (
            view_of_codes(element_value(ds, "ViewCodeSequence"))
            or _view_position(element_value(ds, "ViewPosition"))
            or normalise_view(element_value(ds, "SeriesDescription"))
        )
    return views


def frame_names(views: list[str | None]) -> list[str]:
    """Unique names for the frames: the view where it is known and unique, else ``frameN``.

    Example:
        >>> frame_names(["anterior", "posterior"]), frame_names(["anterior", "anterior"])
        (['anterior', 'posterior'], ['frame1', 'frame2'])
    """
    return [view if view and views.count(view) == 1 else f"frame{i + 1}" for i, view in enumerate(views)]


def _view_position(value: Any) -> str | None:
    # X-ray ViewPosition: AP means the beam enters the front, i.e. an anterior view.
    return {"AP": "anterior", "PA": "posterior", "LL": "left_lateral", "RL": "right_lateral"}.get(str(value or "").strip().upper())


def as_list(value: Any) -> list[Any]:
    """A DICOM value as a list (a single value becomes a one-item list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def _ascii_upper(text: Any) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().upper()
