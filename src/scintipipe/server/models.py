"""The models the server offers, how each answers an inference request, and the service that runs them.

Served models are registered objects (:class:`~scintipipe.server.served.ServedModel`, MONAI
Label's ``InferTask`` in scintipipe's terms), collected from every plugin's
``register_served_models`` hook for the served bundles. The built-in plugin
``scintipipe.builtin.served_models`` registers three per bundle, defined here:

``<bundle>`` (type ``classification``, :class:`BundleClassifier`)
    The bundle's class probabilities, with the ROI quantities of the classical
    segmenter and the latency.
``<bundle>_roi`` (type ``segmentation``, :class:`BundleRegions`)
    The thyroid segmentation (lobes, isthmus, nodules, salivary glands, background
    region) of the segmenter the ``segmenter`` param names (default ``classical``) as a
    label image, with the segmenter's name in the answer: 3D Slicer and OHIF show only
    segmentation results.
``<bundle>_gradcam`` (type ``segmentation``, bundles that name an ``explain_layer``, :class:`BundleGradCAM`)
    Where the Grad-CAM map of the predicted class reaches ``threshold`` (param, default
    0.5), on the scan grid, as a label image.

Every model runs the input gate first (:mod:`scintipipe.gate`): a view it refuses (a CT,
a photograph, a syringe image, a view out of the bundle's distribution) raises
:class:`~scintipipe.gate.GateRefused`, which the app answers with 422. The params flag
``accept_ood`` classifies what the ``content`` and ``ood`` layers refused, as
``scintipipe run --accept-ood`` does; answers then carry the gate record with
``against_advice`` set. The ``_roi`` model runs the per-view layers (metadata, content)
only: it uses no classifier network.

The plugins' options (their ``add_options`` hook) that are ``served`` are infer params too:
each model's ``/info/`` entry lists them with their defaults under ``config`` and
described under ``options`` (``segmenter``, ``explain_method``, a plugin's own).

The bundles' networks are shared by every request. Everything that touches a network
(classification, Grad-CAM's hooks) runs under one lock, so concurrent requests are
served one network call at a time while loading, preprocessing and segmentation run in
parallel. The server calls the pipeline runner in one place, :class:`PipelineSteps`, and
classifies through :meth:`Pipeline.process <scintipipe.pipeline.Pipeline.process>`, as
``scintipipe run`` does.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from scintipipe.bundle import Bundle
from scintipipe.case import source_file
from scintipipe.errors import ScanError
from scintipipe.explain import heatmap_on_scan
from scintipipe.gate import GateRefused
from scintipipe.pipeline import Pipeline, RunOptions
from scintipipe.report.content import against_advice_text, explain_method_of, gate_of
from scintipipe.runner import Failure
from scintipipe.server.errors import BadRequest, UnknownModel
from scintipipe.server.label_images import GRADCAM_LABELS, ROI_LABELS, region_label_map, roi_label_map, write_label_nifti
from scintipipe.server.served import CLASSIFICATION, SEGMENTATION, InferResult, ServeContext, ServedModel, Timer

ROI_SUFFIX = "_roi"
GRADCAM_SUFFIX = "_gradcam"
DEFAULT_GRADCAM_THRESHOLD = 0.5


def choose_view(scans: list[dict[str, Any]], view: str | None) -> dict[str, Any]:
    """The scan of the requested view (``anterior``...), else the file's first view."""
    if not view:
        return scans[0]
    for scan in scans:
        if str(scan["image"].meta.get("view") or "").lower() == view.lower():
            return scan
    found = [str(s["image"].meta.get("view")) for s in scans]
    raise BadRequest(f"the image has no {view!r} view (views: {found})")


def scan_spacing(scan: dict[str, Any]) -> tuple[float, float] | None:
    """The scan's ``(row, column)`` pixel spacing in mm, when known."""
    spacing = scan["image"].meta.get("spacing")
    return (float(spacing[0]), float(spacing[1])) if spacing is not None else None


def accept_ood_of(params: dict[str, Any]) -> bool:
    """The ``accept_ood`` param as a bool (``true``/``false``, also as strings or 0/1).

    Raises:
        BadRequest: any other value.
    """
    value = params.get("accept_ood", False)
    if isinstance(value, str):
        value = {"true": True, "false": False, "1": True, "0": False, "": False}.get(value.strip().lower(), value)
    if value in (None, 0, 1) or isinstance(value, bool):
        return bool(value)
    raise BadRequest(f"accept_ood must be true or false, not {params.get('accept_ood')!r}")


def served_options(pm: pluggy.PluginManager) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The plugins' option register and their named alternatives (for the served options' choices)."""
    from scintipipe.plugins import explainers, plugin_options, segmenters

    return plugin_options(pm), {"segmenter": segmenters(pm).segmenters, "explainer": explainers(pm).explainers}


def describe_option(option: Any, alternatives: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An infer param as ``/info/`` describes it: ``default``, ``help`` and ``choices`` (``None``: any value)."""
    choices = sorted(alternatives.get(option.choose_from) or {}) if option.choose_from else option.choices
    return {"default": option.default, "help": option.help, "choices": list(choices) if choices else None, "plugin": option.plugin}


def plugin_option_values(register: Any, alternatives: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The served plugin options a request's params set, converted and checked.

    Raises:
        BadRequest: a value of the wrong type, outside its choices, or refused by a plugin's check.
    """
    values: dict[str, Any] = {}
    for name, option in register.options.items():
        if not option.served or params.get(name) is None:
            continue
        value = params[name]
        try:
            if option.is_flag or option.type is bool:
                value = {"true": True, "false": False, "1": True, "0": False}.get(str(value).strip().lower(), value)
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif callable(getattr(option.type, "convert", None)):
                value = option.type.convert(value, None, None)
            elif option.type in (str, int, float):
                value = option.type(value)
        except Exception as exc:
            raise BadRequest(f"param {name}: {exc}") from exc
        values[name] = value
    try:
        register.resolve(values, alternatives)
    except ValueError as exc:
        raise BadRequest(f"params: {exc}") from exc
    return values


def gate_answer(gate: dict[str, Any] | None) -> dict[str, Any]:
    """The gate fields of an answer: ``in_distribution``, ``ood_score``, ``ood_threshold`` and ``gate`` (the whole record)."""
    record = gate_of({"gate": gate})
    record = {**record, "ood_score": json_number(record["ood_score"]), "ood_threshold": json_number(record["ood_threshold"])}
    return {"in_distribution": record["in_distribution"], "ood_score": record["ood_score"], "ood_threshold": record["ood_threshold"], "gate": record}


def json_number(value: Any) -> Any:
    """Floats rounded for JSON; NaN and infinities as ``None``."""
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


#: what holds the network while the runner classifies: a context manager that yields the
#: bundle to classify with (the one served now), or ``None`` to keep the request's
NetworkStep = Callable[[], AbstractContextManager["Bundle | None"]]


class ServedPipeline(Pipeline):
    """The pipeline runner as the server runs it: timed per request, its network step under the service's lock.

    :meth:`~scintipipe.pipeline.Pipeline.process` runs as in ``scintipipe run``; only two
    of its steps are wrapped: each input's load, gate and preprocess
    (:meth:`prepare_unit`) counts as the request's ``preprocess_s``, and the batch's
    learned gate, classification and explanation (:meth:`classify`) run inside
    ``network`` (see :meth:`ModelService.network`).

    Attributes:
        timer: the request's timer.
        network: holds the network for :meth:`classify`.
    """

    timer: Timer
    network: NetworkStep

    def prepare_unit(self, unit: list[Any]) -> list[dict[str, Any] | Failure]:
        """Load, gate and preprocess one input, timed as ``preprocess_s``."""
        with self.timer.step("preprocess_s"):
            return super().prepare_unit(unit)

    def classify(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score, classify and explain a batch while ``network`` holds the network, with the bundle it yields."""
        with self.network() as bundle:
            if bundle is not None:
                self.bundle = bundle
            return super().classify(cases)


class PipelineSteps:
    """The pipeline runner's steps as the server uses them: the one place the server calls :class:`Pipeline`.

    Each method is one step on one request's pipeline (cheap to build: the bundle holds
    the network), so moving the server onto another runner API changes this class only.
    Classification goes through :meth:`Pipeline.process <scintipipe.pipeline.Pipeline.process>`
    (:meth:`process`), as ``scintipipe run`` does.

    Args:
        pm: the plugin manager.
        bundle: the bundle to run with.
        device: ``cpu`` or ``cuda``.
        explain: run the explain stage when classifying.
        accept_ood: classify views the gate's ``content`` and ``ood`` layers refused
            (``scintipipe run --accept-ood``).
        plugin_options: the plugin options the request's params set
            (:func:`plugin_option_values`).
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        bundle: Bundle,
        device: str = "cpu",
        explain: bool = False,
        accept_ood: bool = False,
        plugin_options: dict[str, Any] | None = None,
    ):
        options = RunOptions(
            device=device,
            batch_size=8,
            segment=False,
            explain=explain,
            report=False,
            progress=False,
            accept_ood=accept_ood,
            plugin_options=plugin_options or {},
            workers=0,  # the request's own thread: the server already serves requests in parallel
            time_budget_s=0.0,  # a request has no per-input budget
        )
        self.pipeline = ServedPipeline(pm, bundle, options, log=lambda message: None)

    @property
    def options(self) -> dict[str, Any]:
        """Every plugin option's value, defaults filled in."""
        return self.pipeline.plugin_options

    def load(self, path: Path) -> list[dict[str, Any]]:
        """Read a file into scans with the installed loaders (raises ScanError/NotAnImage)."""
        return self.pipeline.load(path)

    def admit(self, scan: dict[str, Any]) -> dict[str, Any]:
        """The gate's per-view layers on one view: its gate record (raises GateRefused)."""
        return self.pipeline.admit(scan)

    def process(self, scans: list[dict[str, Any]], timer: Timer, network: NetworkStep) -> list[dict[str, Any] | GateRefused]:
        """Gate, preprocess, classify (and explain) loaded scans with :meth:`Pipeline.process`, in one batch.

        Args:
            scans: the request's loaded views.
            timer: the request's timer (``preprocess_s``; ``network`` times the rest).
            network: holds the network while the batch is classified.

        Returns:
            Per scan, its classified case, or the :class:`GateRefused` of the gate layer
            that refused it (the ``error`` of the runner's :class:`Failure` record).

        Raises:
            ScanError: a view no plugin could preprocess or classify (the first such
                failure, as the runner recorded it); any other error a stage raised.
        """
        self.pipeline.timer = timer
        self.pipeline.network = network
        self.pipeline.options.batch_size = max(1, len(scans))  # one batch, one network call
        outcomes: list[dict[str, Any] | GateRefused] = []
        failed: Failure | None = None
        for item in self.pipeline.process(scans):
            if not isinstance(item, Failure):
                outcomes.append(item)
            elif isinstance(item.error, GateRefused):
                outcomes.append(item.error)
            elif failed is None:
                failed = item
        if failed is not None:
            raise failed.error if failed.error is not None else ScanError(failed.source, failed.reason)
        return outcomes

    def segment(self, scan: dict[str, Any]) -> dict[str, Any] | None:
        """The segment stage on one scan (``None`` when no segmenter handles it)."""
        return self.pipeline.call("segment_scan", scan["source"], scan=scan, bundle=self.pipeline.bundle)


@dataclass
class RequestContext:
    """The :class:`~scintipipe.server.served.ServeContext` of one request: the service's steps with the request's settings.

    Attributes:
        service: the model service.
        accept_ood: the request's ``accept_ood``.
        plugin_options: the served plugin options the request's params set.
        options: every plugin option's value (``plugin_options`` over the defaults).
        timer: the request's timer.
    """

    service: ModelService
    accept_ood: bool
    plugin_options: dict[str, Any]
    options: dict[str, Any]
    timer: Timer

    @property
    def bundles(self) -> dict[str, Bundle]:
        """The served bundles by name."""
        return self.service.bundles

    @property
    def device(self) -> str:
        """``cpu`` or ``cuda``."""
        return self.service.device

    def admit(self, bundle_name: str, scans: list[dict[str, Any]], view: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """See :meth:`ModelService.admitted_view`."""
        return self.service.admitted_view(bundle_name, scans, view, self.accept_ood)

    def classify(self, bundle_name: str, scans: list[dict[str, Any]]) -> list[dict[str, Any] | GateRefused]:
        """See :meth:`ModelService.gate_and_classify`."""
        return self.service.gate_and_classify(bundle_name, scans, self.timer, self.accept_ood)

    def explain(self, bundle_name: str, scan: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
        """See :meth:`ModelService.explain`."""
        return self.service.explain(bundle_name, scan, gate, self.timer, self.accept_ood, self.plugin_options)

    def segment(self, bundle_name: str, scan: dict[str, Any]) -> dict[str, Any] | None:
        """See :meth:`ModelService.segment`."""
        return self.service.segment(bundle_name, scan, self.plugin_options)

    def write_label_image(self, labels: np.ndarray, scan: dict[str, Any], model_name: str) -> Path:
        """Write ``labels`` as a NIfTI label image on the scan's grid, under the service's work folder."""
        path = self.service.label_path(model_name)
        write_label_nifti(labels, path, scan_spacing(scan), like=Path(source_file(scan["source"])))
        return path


def bundle_caution(bundle: Bundle) -> str:
    """`` Not for clinical use.`` for a bundle not cleared for it, else nothing."""
    return "" if bundle.clinical_use else " Not for clinical use."


def bundle_answer(bundle: Bundle) -> dict[str, Any]:
    """The ``bundle`` field of an answer: name, version, clinical use."""
    return {"name": bundle.name, "version": bundle.version, "clinical_use": bundle.clinical_use}


def segment_quantities(context: ServeContext, bundle_name: str, scan: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """The segmenter's quantities of ``scan`` for a classification answer; a failure becomes a note."""
    try:
        segmentation = context.segment(bundle_name, scan)
    except Exception as exc:  # noqa: BLE001  (the class answer stands without quantities)
        notes.append(f"segmentation failed, no quantities: {exc}")
        return None
    if not segmentation:
        return None
    notes.extend(segmentation.get("notes") or [])
    return {key: json_number(value) for key, value in (segmentation.get("quantities") or {}).items()}


class BundleModel(ServedModel):
    """A built-in model over one served bundle: ``bundle_name`` is always set."""

    bundle: Bundle
    bundle_name: str


class BundleClassifier(BundleModel):
    """``<bundle>``: the bundle's class probabilities per view, with the chosen view's ROI quantities."""

    def __init__(self, bundle_name: str, bundle: Bundle):
        description = f"{bundle.task} classifier ({bundle.name} {bundle.version}): {bundle.description}{bundle_caution(bundle)}"
        labels = {label: index for index, label in enumerate(bundle.labels)}
        super().__init__(bundle_name, CLASSIFICATION, labels, description, {"view": ""}, bundle=bundle, bundle_name=bundle_name)

    def infer(self, scans: list[dict[str, Any]], params: dict[str, Any], context: ServeContext) -> InferResult:
        """Classify every view; answer for the asked-for view, else the first the gate let through."""
        bundle = context.bundles[self.bundle_name]
        asked = choose_view(scans, params.get("view")) if params.get("view") else None
        outcomes = context.classify(self.bundle_name, scans)
        if asked is not None:
            chosen_index = scans.index(asked)
        else:  # the first view the gate let through
            chosen_index = next((index for index, outcome in enumerate(outcomes) if not isinstance(outcome, GateRefused)), 0)
        outcome = outcomes[chosen_index]
        if isinstance(outcome, GateRefused):
            raise outcome
        chosen = scans[chosen_index]
        notes: list[str] = []
        with context.timer.step("segment_s"):
            quantities = segment_quantities(context, self.bundle_name, chosen, notes)
        views = []
        for scan, case in zip(scans, outcomes, strict=True):
            if isinstance(case, GateRefused):
                refusal = case.refusal
                views.append(
                    {
                        "source": scan["source"],
                        "view": scan["image"].meta.get("view"),
                        "refused": {"layer": refusal.layer, "reason": refusal.reason, "skipped": refusal.skip},
                    }
                )
                continue
            probabilities = {label: case["prediction"][f"prob_{label}"] for label in bundle.labels}
            ranked = sorted(enumerate(bundle.labels), key=lambda item: -probabilities[item[1]])
            views.append(
                {
                    "source": scan["source"],
                    "view": scan["image"].meta.get("view"),
                    "prediction": [{"idx": index, "label": label, "score": probabilities[label]} for index, label in ranked],
                    "label": case["prediction"]["label"],
                    "confidence": case["prediction"]["confidence"],
                    "probabilities": probabilities,
                    **gate_answer(case.get("gate")),
                }
            )
        main = views[chosen_index]
        warning = against_advice_text(main["gate"])
        if warning:
            notes.insert(0, warning)
        answer = {
            "type": CLASSIFICATION,
            "prediction": main["prediction"],
            "label": main["label"],
            "confidence": main["confidence"],
            "probabilities": main["probabilities"],
            "view": main["view"],
            "quantities": quantities,
            "in_distribution": main["in_distribution"],
            "ood_score": main["ood_score"],
            "ood_threshold": main["ood_threshold"],
            "gate": main["gate"],
            "views": views,
            "bundle": bundle_answer(bundle),
            "notes": notes,
        }
        return InferResult(answer)


class BundleRegions(BundleModel):
    """``<bundle>_roi``: the thyroid regions of the chosen segmenter as a label image, with counts and areas."""

    def __init__(self, bundle_name: str, bundle: Bundle):
        description = f"Thyroid regions of interest by the segmenter the 'segmenter' param names (default classical), with counts and areas; for {bundle.name}.{bundle_caution(bundle)}"
        super().__init__(bundle_name + ROI_SUFFIX, SEGMENTATION, dict(ROI_LABELS), description, {"view": ""}, bundle=bundle, bundle_name=bundle_name)

    def infer(self, scans: list[dict[str, Any]], params: dict[str, Any], context: ServeContext) -> InferResult:
        """Segment the admitted view (per-view gate layers only: no network)."""
        scan, gate = context.admit(self.bundle_name, scans, params.get("view"))
        with context.timer.step("segment_s"):
            segmentation = context.segment(self.bundle_name, scan)
        if not segmentation or not segmentation.get("rois"):
            raise ScanError(scan["source"], "no segmenter found regions of interest in this scan")
        labels = roi_label_map(segmentation["rois"])
        path = context.write_label_image(labels, scan, self.name)
        present = {name: int(np.count_nonzero(labels == value)) for name, value in ROI_LABELS.items()}
        answer = {
            "type": SEGMENTATION,
            "label_names": dict(ROI_LABELS),
            "pixels": present,
            "quantities": {key: json_number(value) for key, value in (segmentation.get("quantities") or {}).items()},
            "method": segmentation.get("method"),
            "segmenter": segmentation.get("segmenter"),
            "view": scan["image"].meta.get("view"),
            "shape": list(labels.shape),
            "notes": segmentation.get("notes") or [],
            "gate": gate_answer(gate)["gate"],
        }
        return InferResult(answer, path)


class BundleGradCAM(BundleModel):
    """``<bundle>_gradcam``: where the predicted class's saliency map reaches ``threshold``, as a label image."""

    def __init__(self, bundle_name: str, bundle: Bundle):
        from scintipipe.builtin.explain_gradcam import chosen_method

        method = chosen_method(None, bundle)
        description = f"Region where {bundle.name}'s explanation map ({method}) of the predicted class reaches the threshold.{bundle_caution(bundle)}"
        config = {"view": "", "threshold": DEFAULT_GRADCAM_THRESHOLD, "explain_method": method}
        super().__init__(
            bundle_name + GRADCAM_SUFFIX, SEGMENTATION, dict(GRADCAM_LABELS), description, config, bundle=bundle, bundle_name=bundle_name
        )

    def infer(self, scans: list[dict[str, Any]], params: dict[str, Any], context: ServeContext) -> InferResult:
        """Explain the admitted view's predicted class and threshold the map on the scan grid."""
        scan, gate = context.admit(self.bundle_name, scans, params.get("view"))
        try:
            threshold = float(params.get("threshold", DEFAULT_GRADCAM_THRESHOLD))
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"threshold must be a number in [0, 1], not {params.get('threshold')!r}") from exc
        if not 0.0 <= threshold <= 1.0:
            raise BadRequest(f"threshold must be in [0, 1], not {threshold}")
        bundle = context.bundles[self.bundle_name]
        case = context.explain(self.bundle_name, scan, gate)
        if case.get("heatmap") is None:
            raise BadRequest(f"bundle {bundle.name!r} gave no Grad-CAM map")
        counts_shape = tuple(scan["image"].shape[-2:])
        on_scan = heatmap_on_scan(case["heatmap"], getattr(case["input"], "meta", None), scan["image"].meta, counts_shape)
        labels = region_label_map(on_scan, threshold)
        path = context.write_label_image(labels, scan, self.name)
        answer = {
            "type": SEGMENTATION,
            "label_names": dict(GRADCAM_LABELS),
            "threshold": threshold,
            "explained_label": case["prediction"]["label"],
            "explain_method": explain_method_of(context),
            "confidence": case["prediction"]["confidence"],
            "pixels": {"gradcam_region": int(labels.sum())},
            "view": scan["image"].meta.get("view"),
            "shape": list(labels.shape),
            "bundle": bundle_answer(bundle),
            **gate_answer(case.get("gate")),
        }
        return InferResult(answer, path)


class ModelService:
    """The served bundles and the registered served models; answers inference requests.

    Args:
        pm: the plugin manager (loaders, preprocessing, segmentation, classifiers, and the
            ``register_served_models`` hooks).
        bundles: the bundles to serve, by name.
        device: ``cpu`` or ``cuda``.
        work_dir: where result label images are written before they are sent.

    Raises:
        RegistrationError: two plugins register a served model of the same name (both named).
    """

    def __init__(self, pm: pluggy.PluginManager, bundles: dict[str, Bundle], device: str = "cpu", work_dir: Path | None = None):
        if not bundles:
            raise ValueError("no usable bundle to serve")
        self.pm = pm
        self.device = device
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="scintipipe-serve-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.network_lock = threading.Lock()
        self.bundles: dict[str, Bundle] = {}
        self._models: dict[str, ServedModel] | None = None
        for name, bundle in bundles.items():
            self.set_bundle(name, bundle)
        self._models = self.collect_models()

    # ---- bundles and models -------------------------------------------------------------

    def set_bundle(self, name: str, bundle: Bundle) -> None:
        """Serve ``bundle`` under ``name`` (replacing an earlier one, e.g. after training).

        The network, transforms and config are built here, before any request can use
        them, so no two requests race to build them. The served models are collected
        again for the new set of bundles.
        """
        bundle.network(self.device)
        _ = bundle.scan_transform
        with self.network_lock:
            self.bundles[name] = bundle
        if self._models is not None:
            self._models = self.collect_models()

    def collect_models(self) -> dict[str, ServedModel]:
        """Every plugin's served models for the served bundles (``register_served_models``)."""
        from scintipipe.plugins import served_models

        return served_models(self.pm, self.bundles).served_models

    def models(self) -> dict[str, ServedModel]:
        """Every served model by name."""
        return dict(self._models or {})

    def model(self, name: str) -> ServedModel:
        """The model called ``name``.

        Raises:
            UnknownModel: with the list of models.
        """
        models = self.models()
        if name not in models:
            raise UnknownModel(f"unknown model {name!r}; this server offers: {', '.join(sorted(models))}")
        return models[name]

    def model_info(self, model: ServedModel) -> dict[str, Any]:
        """The ``/info/`` entry of one model, with the served plugin options among its ``config`` params."""
        entry = model.info()
        register, alternatives = served_options(self.pm)
        options = {name: describe_option(option, alternatives) for name, option in register.options.items() if option.served}
        config = {**{name: option["default"] for name, option in options.items()}, **(entry.get("config") or {})}  # the model's own values win
        described = {
            "type": entry["type"],
            "labels": entry["labels"],
            "dimension": entry.get("dimension", 2),
            "description": entry.get("description", ""),
            "config": config,
            "options": options,
        }
        return {**described, **{key: value for key, value in entry.items() if key not in described}}

    def info(self) -> dict[str, Any]:
        """The ``models`` of ``/info/``."""
        return {name: self.model_info(model) for name, model in self.models().items()}

    def steps(self, bundle_name: str, explain: bool = False, accept_ood: bool = False, plugin_options: dict[str, Any] | None = None) -> PipelineSteps:
        """The pipeline's steps over one served bundle (see :class:`PipelineSteps` for the arguments)."""
        return PipelineSteps(self.pm, self.bundles[bundle_name], self.device, explain, accept_ood, plugin_options)

    def load(self, path: Path) -> list[dict[str, Any]]:
        """Read a file into scans with the installed loaders (raises ScanError/NotAnImage)."""
        any_bundle = next(iter(self.bundles))
        return self.steps(any_bundle).load(path)

    # ---- inference -------------------------------------------------------------------

    def infer(self, model_name: str, path: Path, params: dict[str, Any], image_id: str | None = None) -> InferResult:
        """Run model ``model_name`` on the image file ``path``.

        Args:
            model_name: a name from :meth:`models`.
            path: the scan file (its extension lets the loaders recognise it).
            params: the request's JSON params (``view``, ``threshold``, ``accept_ood`` and
                the served plugin options, such as ``segmenter``).
            image_id: the datastore id, echoed in the answer.

        Raises:
            UnknownModel: no such model.
            BadRequest: bad params.
            GateRefused: the input gate refused the view (or, with no ``view`` asked
                for, every view of the file); its source is ``path`` (``#view``).
            ScanError: the file is not a usable scan.
        """
        model = self.model(model_name)
        accept_ood = accept_ood_of(params)
        register, alternatives = served_options(self.pm)
        options = plugin_option_values(register, alternatives, params)
        context = RequestContext(self, accept_ood, options, register.resolve(options, alternatives), Timer())
        with context.timer.step("load_s"):
            scans = self.load(path)
        result = model.infer(scans, params, context)
        result.params.update({"model": model.name, "image": image_id, "latency": context.timer.latency()})
        return result

    def admitted_view(
        self, bundle_name: str, scans: list[dict[str, Any]], view: str | None, accept_ood: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The view to answer for and its gate record, after the gate's per-view layers (metadata, content).

        With ``view`` that view, else the file's first view the gate lets through.

        Raises:
            GateRefused: the asked-for view, or every view, was refused.
        """
        steps = self.steps(bundle_name, accept_ood=accept_ood)
        candidates = [choose_view(scans, view)] if view else scans
        first_refusal: GateRefused | None = None
        for scan in candidates:
            try:
                return scan, steps.admit(scan)
            except GateRefused as refused:
                first_refusal = first_refusal or refused
        assert first_refusal is not None
        raise first_refusal

    def gate_and_classify(
        self, bundle_name: str, scans: list[dict[str, Any]], timer: Timer | None = None, accept_ood: bool = False
    ) -> list[dict[str, Any] | GateRefused]:
        """Gate, preprocess and classify scans; the network call holds the lock.

        Returns:
            Per scan, its classified case, or the :class:`GateRefused` of the gate layer
            that refused it (metadata and content layers before preprocessing, the
            learned ``ood`` layer in the batch).
        """
        timer = timer or Timer()
        steps = self.steps(bundle_name, accept_ood=accept_ood)
        return steps.process(scans, timer, lambda: self.network(timer, bundle_name))

    def classify_scans(
        self, bundle_name: str, scans: list[dict[str, Any]], timer: Timer | None = None, accept_ood: bool = False
    ) -> list[dict[str, Any]]:
        """Gate, preprocess and classify scans (see :meth:`gate_and_classify`).

        Raises:
            GateRefused: the gate refused one of the scans (the first refused is raised).
        """
        outcomes = self.gate_and_classify(bundle_name, scans, timer, accept_ood)
        for outcome in outcomes:
            if isinstance(outcome, GateRefused):
                raise outcome
        return outcomes  # type: ignore[return-value]

    def explain(
        self,
        bundle_name: str,
        scan: dict[str, Any],
        gate: dict[str, Any],
        timer: Timer | None = None,
        accept_ood: bool = False,
        plugin_options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Preprocess, classify and explain one admitted view with the runner; the network call holds the lock.

        ``gate`` is the view's record from :meth:`admitted_view`; the runner gates the view
        again on its way (the per-view layers give the same record).

        Returns:
            The view's case, with ``prediction`` and ``heatmap`` (``None`` when no explain
            method gave a map).

        Raises:
            GateRefused: the learned gate refused the view.
        """
        timer = timer or Timer()
        steps = self.steps(bundle_name, explain=True, accept_ood=accept_ood, plugin_options=plugin_options)
        (outcome,) = steps.process([scan], timer, lambda: self.network(timer))
        if isinstance(outcome, GateRefused):
            raise outcome
        return outcome

    @contextmanager
    def network(self, timer: Timer, bundle_name: str | None = None) -> Iterator[Bundle | None]:
        """Hold the network lock (the runner's network step, see :class:`ServedPipeline`).

        The wait counts as the request's ``wait_s``, the time held as ``classify_s``.

        Yields:
            The bundle served now under ``bundle_name`` (a retrained one replaces its old
            one), or ``None`` without a name: classify with the request's own.
        """
        with timer.step("wait_s"):
            self.network_lock.acquire()
        try:
            with timer.step("classify_s"):
                yield self.bundles[bundle_name] if bundle_name else None
        finally:
            self.network_lock.release()

    def segment(self, bundle_name: str, scan: dict[str, Any], plugin_options: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The segment stage on one scan (``None`` when no segmenter handles it).

        The segmenter is the one ``plugin_options["segmenter"]`` names (default
        ``classical``); the result's ``segmenter`` says which ran. The classical segmenter
        seeds GrabCut itself, so an image gets the same regions whichever worker thread
        serves it.
        """
        return self.steps(bundle_name, plugin_options=plugin_options).segment(scan)

    def label_path(self, model_name: str) -> Path:
        """A new file for a result label image of ``model_name``, in the work folder."""
        handle = tempfile.NamedTemporaryFile(dir=self.work_dir, prefix=f"{model_name}-", suffix=".nii.gz", delete=False)
        handle.close()
        return Path(handle.name)
