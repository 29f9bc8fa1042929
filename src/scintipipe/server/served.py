"""Served models: what ``scintipipe serve`` lists in ``/info/`` and runs at ``/infer/{name}``.

A served model is MONAI Label's ``InferTask`` (``monailabel.interfaces.tasks.infer_v2``) in
scintipipe's terms: one object per model, with a ``name``, a ``type`` (MONAI Label's
``InferType`` values: ``classification``, ``segmentation``...), ``labels``, ``dimension``,
``description`` and ``config`` (its own infer params and their defaults), an :meth:`info`
that gives its ``/info/`` entry, and an :meth:`infer` that answers one request. Plugins
register them with the ``register_served_models`` hook; the server's own three models per
bundle (``<bundle>``, ``<bundle>_roi``, ``<bundle>_gradcam``) are registered the same way
by ``scintipipe.builtin.served_models``.

:meth:`ServedModel.infer` gets the request's scans (the uploaded or stored file, read by
the installed loaders), its params, and a :class:`ServeContext`: the served bundles, the
request's plugin options and timer, and the steps of the pipeline (gate, classify, explain,
segment) run the way the server runs them, with the network lock held where it must be.

Example:
    >>> class Hottest(ServedModel):                              # doctest: +SKIP
    ...     def __init__(self):
    ...         super().__init__("hottest", CLASSIFICATION, ["hot"], "The hottest pixel's counts.")
    ...     def infer(self, scans, params, context):
    ...         image = scans[0]["image"]
    ...         return InferResult({"type": CLASSIFICATION, "max_counts": float(image.max())})
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from scintipipe.bundle import Bundle
    from scintipipe.gate import GateRefused

#: MONAI Label's model types (``InferType``); ``/info/`` gives one per model
CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"
ANNOTATION = "annotation"
DEEPGROW = "deepgrow"
DEEPEDIT = "deepedit"
SCRIBBLES = "scribbles"
DETECTION = "detection"
OTHERS = "others"
INFER_TYPES = (CLASSIFICATION, SEGMENTATION, ANNOTATION, DEEPGROW, DEEPEDIT, SCRIBBLES, DETECTION, OTHERS)


@dataclass
class InferResult:
    """What one inference produced.

    Attributes:
        params: the JSON answer (the server adds ``model``, ``image`` and ``latency``).
        label_file: the label image (segmentation models), or ``None``; the server sends
            it and then deletes it.
    """

    params: dict[str, Any]
    label_file: Path | None = None


@dataclass
class Timer:
    """Seconds spent per step of one request."""

    start: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as ``name``."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.perf_counter() - begin, 4)

    def latency(self) -> dict[str, float]:
        """The steps and the total, in seconds."""
        return {**self.steps, "total_s": round(time.perf_counter() - self.start, 4)}


class ServeContext(Protocol):
    """What :meth:`ServedModel.infer` gets besides the scans and params: one per request.

    Attributes:
        bundles: the served bundles by name (a retrained bundle replaces its old one here).
        device: ``cpu`` or ``cuda``.
        accept_ood: the ``accept_ood`` param: classify what the gate's ``content`` and
            ``ood`` layers refused (answers then carry the gate record with
            ``against_advice`` set).
        options: every plugin option's value (the request's served ones over the
            defaults), as ``RunContext.options`` holds them in a run.
        timer: the request's :class:`Timer`; its steps are the answer's ``latency``.
    """

    accept_ood: bool
    options: dict[str, Any]
    timer: Timer

    @property
    def bundles(self) -> Mapping[str, Bundle]:
        """The served bundles by name."""

    @property
    def device(self) -> str:
        """``cpu`` or ``cuda``."""

    def admit(self, bundle_name: str, scans: list[dict[str, Any]], view: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The view to answer for (``view``, else the first the gate lets through) and its gate record.

        Raises:
            GateRefused: the asked-for view, or every view, was refused.
            BadRequest: the file has no such view.
        """

    def classify(self, bundle_name: str, scans: list[dict[str, Any]]) -> list[dict[str, Any] | GateRefused]:
        """Gate, preprocess and classify scans: per scan its case (``prediction``, ``gate``) or its refusal."""

    def explain(self, bundle_name: str, scan: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
        """Preprocess, classify and explain one admitted view: its case with ``prediction`` and ``heatmap``.

        Raises:
            GateRefused: the learned gate refused the view.
        """

    def segment(self, bundle_name: str, scan: dict[str, Any]) -> dict[str, Any] | None:
        """The segment stage on one scan with the segmenter the options name (``None``: none handled it)."""

    def write_label_image(self, labels: np.ndarray, scan: dict[str, Any], model_name: str) -> Path:
        """Write a label image on the scan's grid (its spacing, and its geometry when a NIfTI) for the answer."""


class ServedModel:
    """One model the server offers, like MONAI Label's ``InferTask``; subclass it and override :meth:`infer`.

    Args:
        name: the name clients use (``/infer/{name}``); unique across plugins.
        type: a MONAI Label model type (:data:`INFER_TYPES`): 3D Slicer and OHIF show
            ``segmentation`` results, the answer of a ``classification`` model is JSON only.
        labels: the label names with their values in the label image (a list numbers
            them from 0).
        description: one line for ``/info/``.
        config: the model's own infer params and their defaults; the served plugin
            options are added to every model's ``config`` by the server.
        dimension: 2 for planar scans.
        bundle: the bundle behind the model, summarised under ``bundle`` in ``/info/``.
        bundle_name: the name the bundle is served under (default its ``name``).
    """

    def __init__(
        self,
        name: str,
        type: str,  # noqa: A002  (MONAI Label's word)
        labels: Mapping[str, int] | Sequence[str] | None = None,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        dimension: int = 2,
        bundle: Bundle | None = None,
        bundle_name: str | None = None,
    ):
        self.name = name
        self.type = type
        self.labels: dict[str, int] = dict(labels) if isinstance(labels, Mapping) else {label: index for index, label in enumerate(labels or ())}
        self.description = description
        self.config: dict[str, Any] = dict(config or {})
        self.dimension = dimension
        self.bundle = bundle
        self.bundle_name = bundle_name or (bundle.name if bundle is not None else None)

    @property
    def kind(self) -> str:
        """The model's ``type`` (the server's word for it)."""
        return self.type

    def info(self) -> dict[str, Any]:
        """The model's ``/info/`` entry: ``type``, ``labels``, ``dimension``, ``description``, ``config`` (and ``bundle``)."""
        entry: dict[str, Any] = {
            "type": self.type,
            "labels": dict(self.labels),
            "dimension": self.dimension,
            "description": self.description,
            "config": dict(self.config),
        }
        if self.bundle is not None:
            entry["bundle"] = self.bundle.summary()
        return entry

    def infer(self, scans: list[dict[str, Any]], params: dict[str, Any], context: ServeContext) -> InferResult:
        """Answer one request.

        Args:
            scans: the file's views, read by the installed loaders (one per planar view).
            params: the request's JSON params (the model's own ``config`` keys, ``view``,
                ``accept_ood``, the served plugin options).
            context: the request's :class:`ServeContext`.

        Returns:
            The answer, with a label image for segmentation models. Raise
            ``BadRequest`` for bad params (400), ``ScanError`` for an unusable scan (415);
            a ``GateRefused`` from the context's steps becomes 422.
        """
        raise NotImplementedError(f"served model {self.name!r} ({type(self).__name__}) does not implement infer")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, type={self.type!r})"
