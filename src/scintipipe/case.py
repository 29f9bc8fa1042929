"""The typed shape of what flows through the stage hooks: :class:`Scan` and :class:`Case`.

A loader returns scans; the runner adds keys as the stages run, and the finished case is
what the reporters get. These are :class:`typing.TypedDict` descriptions of those plain
dictionaries (a type checker reads them; at run time they are ordinary dicts), exported
as :data:`scintipipe.api.Scan` and :data:`scintipipe.api.Case`.

A view's ``source`` is the file path, with ``#view`` appended for one view of a
multi-frame file (``study.dcm#anterior``); :func:`source_file` and :func:`source_view`
take it apart, so no plugin parses the string itself.

Example:
    >>> source_file("scans/study.dcm#anterior"), source_view("scans/study.dcm#anterior")
    ('scans/study.dcm', 'anterior')
    >>> source_view("scans/neck.png") is None
    True
"""

from __future__ import annotations

from typing import Any, TypedDict

VIEW_SEPARATOR = "#"


class Scan(TypedDict):
    """One loaded planar view (what ``load_scans`` returns a list of).

    Keys:
        image: a :class:`monai.data.MetaTensor` of counts ``(1, rows, columns)``; its
            ``meta`` keys are listed in :mod:`scintipipe.scan`.
        source: the file, ``path`` or ``path#view``.
    """

    image: Any
    source: str


class Prediction(TypedDict, total=False):
    """``case["prediction"]``: a row of ``predictions.csv``."""

    source: str
    label: str
    confidence: float
    in_distribution: str
    ood_score: float | str


class Case(Scan, total=False):
    """A scan as the stages fill it in; every key but ``image`` and ``source`` may be absent.

    Keys:
        input: the preprocessed network input (``preprocess_scan``).
        scale_inputs: ``(k, C, H, W)`` inputs of the same view at the bundle's other scales
            (:mod:`scintipipe.transforms.unknown_scale`); the classify stage averages the
            probabilities over them.
        scale_input_is_input: per scale input, whether it is ``input`` itself (its
            probabilities are reused, not computed again).
        zoom_pending: zoom factors whose inputs the classify stage makes only if the scan's
            top probability is under the bundle's ``zoom_averaging_below``.
        gate: the input gate's record: ``in_distribution``, ``ood_score``,
            ``ood_threshold``, ``overridden``, ``against_advice``.
        syringe: ``{"full": file, "empty": file}`` found in the view's study.
        segmentation: ``{"rois": {name: bool array}, "quantities": {name: float},
            "notes": [...], "method": str, "segmenter": str}`` (``segment_scan``).
        prediction: see :class:`Prediction` (plus ``prob_<label>`` per label).
        heatmap: the predicted class's map ``(H, W)`` in [0, 1] (``explain_batch``).
        heatmaps: ``{label: map}`` for every class explained.
        outputs: the files the reporters wrote, relative to the run's folder.
        refused: the :class:`scintipipe.gate.GateRefused` of a view the learned gate refused.
    """

    input: Any
    scale_inputs: Any
    scale_input_is_input: list[bool]
    zoom_pending: tuple[float, ...]
    gate: dict[str, Any]
    syringe: dict[str, str]
    segmentation: dict[str, Any]
    prediction: dict[str, Any]
    heatmap: Any
    heatmaps: dict[str, Any]
    outputs: list[str]
    refused: Any


def source_file(source: str) -> str:
    """The file part of a view's ``source`` (``study.dcm#anterior`` -> ``study.dcm``)."""
    return str(source).partition(VIEW_SEPARATOR)[0]


def source_view(source: str) -> str | None:
    """The view part of a view's ``source``, or ``None`` for a single-view file."""
    return str(source).partition(VIEW_SEPARATOR)[2] or None
