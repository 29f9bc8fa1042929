"""The pipeline runner: the only place that calls stage hooks.

:meth:`Pipeline.process` is the one way to run the stages. For each input file, in a pool
of worker threads (:mod:`scintipipe.runner`): ``load`` → per view ``gate`` → ``preprocess``
→ ``segment``; in the calling thread, a batch at a time, the learned ``gate`` score →
``classify`` → ``explain``. It yields every case, or a :class:`~scintipipe.runner.Failure`,
in input order. :meth:`Pipeline.run` consumes it: ``report``, ``predictions.csv`` (a row as
each case is done), ``errors.csv``. The model is loaded once per run. A failure in one file
is written to ``errors.csv`` (with the stage, and the gate layer for refusals) and the batch
goes on. Each stage hook's time comes from the stage-timing plugin
(:mod:`scintipipe.builtin.stage_timing`).

Files of one DICOM study are handled together (see :mod:`scintipipe.loaders.studies`):
views the gate skips as syringe images are offered for the thyroid uptake of the other
views of their study.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
import torch
from monai.data import MetaTensor
from tqdm import tqdm

from scintipipe import runner
from scintipipe.budget import DEFAULT_BUDGET_S, InputClock
from scintipipe.builtin.stage_timing import STAGE_OF_HOOK, StageTimes, recording
from scintipipe.bundle import Bundle
from scintipipe.case import source_file, source_view
from scintipipe.context import RunContext
from scintipipe.errors import NotAnImage, PluginError, ScanError, ScintipipeError
from scintipipe.gate.refusal import GATE_COLUMNS, GateRefused, Refusal
from scintipipe.loaders.studies import choose_syringes, study_groups
from scintipipe.loading import refuse_unclaimed
from scintipipe.runner import Failure, can_fork_workers, default_workers, ordered_map, portable
from scintipipe.transforms.predictions import prediction_columns, prediction_row


@dataclass
class RunOptions:
    """What a run does: the runner's own settings, and the values of the plugins' options.

    Attributes:
        device: ``"cpu"`` or ``"cuda"``.
        batch_size: views classified together.
        segment: run the segment stage (when ``report`` is on too: with ``--no-report`` nothing reads its regions).
        explain: run the explain stage.
        report: run the report stage (per-case folders).
        progress: show a progress bar; ``None`` shows it only on a terminal.
        explain_classes: labels to explain besides the predicted one (``("all",)`` for
            every label); maps go to ``case["heatmaps"][label]``.
        accept_ood: classify views the ``content`` and ``ood`` gate layers refused; their
            reports say they were classified against the gate's advice.
        plugin_options: values of options plugins declare in ``add_options`` by name
            (``{"segmenter": "learned", "pdf": True}``); the others take their defaults.
            Stage hooks see them all as ``context.options``.
        workers: threads (or processes) that load, gate and preprocess while the previous
            batch is classified (``0``: all in the calling thread; ``None``:
            :func:`scintipipe.runner.default_workers`).
        worker_processes: fork worker processes rather than threads, where the platform
            can (:func:`scintipipe.runner.can_fork_workers`), the device is the CPU and
            the run has at least :data:`scintipipe.runner.MIN_UNITS_FOR_PROCESSES` units;
            ``scintipipe run`` turns it on, the server and the listener keep threads
            (``docs/decisions.md``, ADR 15).
        in_flight: units of work (files, or DICOM studies when segmenting) submitted ahead
            of the one being waited for (``None``: twice ``workers``); bounds memory.
        time_budget_s: seconds one input (file, or study when segmenting) may take through
            load, gate, preprocess and segment before it fails with a clear reason
            (``0``: no budget); see :mod:`scintipipe.budget`.
    """

    device: str = "cpu"
    batch_size: int = 32
    segment: bool = True
    explain: bool = True
    report: bool = True
    progress: bool | None = None
    explain_classes: tuple[str, ...] = ()
    accept_ood: bool = False
    plugin_options: dict[str, Any] = field(default_factory=dict)
    workers: int | None = None
    worker_processes: bool = False
    in_flight: int | None = None
    time_budget_s: float = DEFAULT_BUDGET_S


@dataclass
class RunSummary:
    """What a run produced (``stage_seconds``: ``{stage: {"seconds", "calls"}}`` from the stage-timing plugin)."""

    files: int = 0
    classified: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every input was processed, 1 when some failed."""
        return 1 if self.failures else 0


def default_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def plugin_for_exception(hook: Any, exc: BaseException) -> str:
    """Name the plugin whose hook implementation appears in the exception's traceback."""
    codes = {impl.function.__code__: impl.plugin_name for impl in hook.get_hookimpls()}
    tb = exc.__traceback__
    culprit = "unknown"
    while tb is not None:
        name = codes.get(tb.tb_frame.f_code)
        if name is not None:
            culprit = name  # keep the innermost hookimpl frame
        tb = tb.tb_next
    return culprit


def plain_tensor(value: Any) -> torch.Tensor:
    """A plain tensor from a MetaTensor, tensor or array (metadata is not needed to batch)."""
    if isinstance(value, MetaTensor):
        return value.as_tensor()
    return torch.as_tensor(value)


#: the order in which gate layers' refusals are reported
LAYER_ORDER = {"metadata": 0, "content": 1, "ood": 2}


def gate_columns(gate: dict[str, Any] | None) -> dict[str, Any]:
    """The ``predictions.csv`` gate columns: ``in_distribution`` (true/false, blank without a learned score) and ``ood_score``."""
    gate = gate or {}
    known = gate.get("in_distribution")
    score = gate.get("ood_score")
    return {"in_distribution": "" if known is None else ("true" if known else "false"), "ood_score": "" if score is None else round(float(score), 3)}


def error_stage(exc: BaseException, default: str) -> str:
    """The ``stage`` column of ``errors.csv``: ``gate:<layer>`` for refusals, else the stage."""
    if isinstance(exc, GateRefused):
        return f"gate:{exc.refusal.layer}"
    if isinstance(exc, PluginError):
        return exc.stage
    return default


def relative_outputs(written: list[list[Path] | None] | None, out_dir: Path) -> list[str]:
    """The files every reporter returned, as POSIX paths relative to ``out_dir``, each once, in order."""
    outputs: list[str] = []
    for paths in written or []:
        for path in paths or []:
            path = Path(path)
            relative = (path.relative_to(out_dir) if path.is_absolute() and path.is_relative_to(out_dir) else path).as_posix()
            if relative not in outputs:
                outputs.append(relative)
    return outputs


class CaseNamer:
    """Give every view a unique, readable folder name under ``results/``."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, source: str) -> str:
        path, view = source_file(source), source_view(source)
        name = Path(path).name
        stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", stem + (f"_{view}" if view else "")) or "case"
        name, n = base, 1
        while name in self._used:
            n += 1
            name = f"{base}-{n}"
        self._used.add(name)
        return name


class Pipeline:
    """Runs the stages over a batch of files with one bundle.

    Args:
        pm: the plugin manager.
        bundle: the bundle to classify with.
        options: what to run.
        log: where notes go (skipped files); defaults to stderr.

    Raises:
        ValueError: ``options.plugin_options`` names an option no plugin declares, a value
            outside its choices, or a combination a plugin's check refuses.
    """

    def __init__(self, pm: pluggy.PluginManager, bundle: Bundle, options: RunOptions | None = None, log: Callable[[str], None] | None = None):
        from scintipipe.plugins import explainers, plugin_options, segmenters, stage_plugins

        self.pm = pm
        self.bundle = bundle
        self.options = options or RunOptions()
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.segmenters = segmenters(pm).segmenters
        self.explainers = explainers(pm).explainers
        self.stage_plugins = stage_plugins(pm)
        alternatives = {"segmenter": self.segmenters, "explainer": self.explainers}
        self.plugin_options = plugin_options(pm).resolve(self.options.plugin_options, alternatives)
        self.out_dir: Path | None = None
        # a malformed scale setting stops the run here, not once per scan
        _ = bundle.unknown_scale_fovs_mm, bundle.zoom_factors, bundle.zoom_averaging_below

    @property
    def context(self) -> RunContext:
        """The :class:`RunContext` the stage hooks get (built per call: the server swaps ``bundle``)."""
        return RunContext(self.plugin_options, self.options.device, self.out_dir, self.bundle, self.segmenters, self.explainers, self.stage_plugins)

    @property
    def segments(self) -> bool:
        """Whether the segment stage runs: asked for, and some output reads its regions
        (the per-case reports; with ``--no-report`` nothing would)."""
        return self.options.segment and self.options.report

    # ---- hook calls -------------------------------------------------------------------

    def call(self, hook_name: str, source: str, **kwargs: Any) -> Any:
        """Call a stage hook with the run's ``context``; wrap unexpected exceptions with plugin, stage and file."""
        hook = getattr(self.pm.hook, hook_name)
        kwargs.setdefault("context", self.context)
        clock = self.clock
        clock.stage(STAGE_OF_HOOK[hook_name])
        try:
            result = hook(**kwargs)
        except ScintipipeError:
            raise
        except Exception as exc:
            raise PluginError(plugin_for_exception(hook, exc), STAGE_OF_HOOK[hook_name], source, exc) from exc
        clock.check()
        return result

    @property
    def clock(self) -> InputClock:
        """The per-input time budget and slow-input notices (:mod:`scintipipe.budget`)."""
        if getattr(self, "_clock", None) is None:
            self._clock = InputClock(self.options.time_budget_s, self.log)
        return self._clock

    def load(self, path: Path) -> list[dict[str, Any]]:
        """Load one file into views; raise ScanError when no loader reads it."""
        scans = self.call("load_scans", str(path), path=path)
        if scans is None:
            refuse_unclaimed(path)
        return scans

    def admit(self, scan: dict[str, Any]) -> dict[str, Any]:
        """Run the gate's per-view layers (``gate_scan``) on a loaded view.

        Returns:
            The view's gate record: ``in_distribution``, ``ood_score`` and
            ``ood_threshold`` (filled by :meth:`classify`), and ``overridden``, the
            refusals ``--accept-ood`` set aside.

        Raises:
            GateRefused: a layer refused the view; ``exc.refusal.skip`` is set for
                syringe, point-source and flood images.
        """
        source = scan["source"]
        answers = self.call("gate_scan", source, scan=scan, bundle=self.bundle) or []
        refusals = sorted(
            (Refusal.coerce(answer) for answer in answers if answer is not None), key=lambda r: LAYER_ORDER.get(r.layer, len(LAYER_ORDER))
        )
        final = [r for r in refusals if not r.skip and not r.overridable]
        skips = [r for r in refusals if r.skip]
        advisory = [r for r in refusals if r.overridable]
        for group in (final, skips):
            if group:
                raise GateRefused(source, group[0])
        if advisory and not self.options.accept_ood:
            raise GateRefused(source, advisory[0])
        return {
            "in_distribution": None,
            "ood_score": None,
            "ood_threshold": None,
            "overridden": [r.as_dict() for r in advisory],
            "against_advice": bool(advisory),
        }

    def prepare(self, scan: dict[str, Any], gate: dict[str, Any] | None = None, syringe: dict[str, str] | None = None) -> dict[str, Any]:
        """Gate (unless ``gate`` is given), preprocess and segment one view.

        Args:
            scan: the loaded view.
            gate: its record from :meth:`admit` when the caller already gated it.
            syringe: ``{"full": file, "empty": file}`` found in the view's study, for the uptake.

        Raises:
            GateRefused: the gate refused the view.
            ScanError: no plugin could preprocess it.
        """
        source = scan["source"]
        gate = self.admit(scan) if gate is None else gate
        case = self.call("preprocess_scan", source, scan=scan, bundle=self.bundle)
        if case is None or "input" not in case:
            raise ScanError(source, f"no plugin could preprocess this scan for bundle {self.bundle.name!r}")
        case["gate"] = gate
        if syringe:
            case["syringe"] = syringe
        if self.segments:
            case["segmentation"] = self.call("segment_scan", source, scan=case, bundle=self.bundle)
        return case

    def score_out_of_distribution(self, cases: list[dict[str, Any]], inputs: torch.Tensor, sources: str) -> list[dict[str, Any]]:
        """Run the learned gate (``gate_batch``); mark refused cases with ``case["refused"]``.

        Returns:
            The cases refused (not to be classified); without ``--accept-ood`` these are
            the views the learned score puts out of distribution.
        """
        verdicts = self.call("gate_batch", sources, inputs=inputs, bundle=self.bundle, device=self.options.device)
        if verdicts is None:
            return []
        refused = []
        for case, verdict in zip(cases, verdicts, strict=False):
            gate = case.setdefault("gate", {"overridden": [], "against_advice": False})
            gate["ood_score"] = float(verdict["ood_score"])
            gate["in_distribution"] = bool(verdict["in_distribution"])
            gate["ood_threshold"] = verdict.get("threshold", self.bundle.gate.threshold)
            if gate["in_distribution"]:
                continue
            refusal = Refusal("ood", str(verdict.get("reason") or f"out of distribution for bundle {self.bundle.name!r}"))
            if self.options.accept_ood:
                gate["overridden"].append(refusal.as_dict())
                gate["against_advice"] = True
            else:
                case["refused"] = GateRefused(case["source"], refusal)
                refused.append(case)
        return refused

    def classify(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Gate, classify and explain a batch in place: sets ``gate``, ``prediction`` and ``heatmap``.

        Returns:
            The cases the learned gate refused: they carry ``case["refused"]`` and no
            prediction.
        """
        sources = ", ".join(c["source"] for c in cases[:3]) + (" ..." if len(cases) > 3 else "")
        inputs = torch.stack([plain_tensor(c["input"]) for c in cases]).float()
        self.bundle.network(self.options.device)  # built outside inference mode, or its weights could not serve Grad-CAM
        with torch.inference_mode():  # not around explain: Grad-CAM needs gradients
            refused = self.score_out_of_distribution(cases, inputs, sources)
        if refused:
            keep = [index for index, case in enumerate(cases) if "refused" not in case]
            cases, inputs = [cases[index] for index in keep], inputs[keep]
            if not cases:
                return refused
        with torch.inference_mode():
            probs = self.call("classify_batch", sources, inputs=inputs, bundle=self.bundle, device=self.options.device)
        if probs is None:
            raise ScanError(sources, f"no plugin could classify with bundle {self.bundle.name!r}")
        probs = self.average_over_scales(cases, torch.as_tensor(probs), sources)
        labels = self.bundle.labels
        for case, row in zip(cases, probs.tolist(), strict=False):
            case["prediction"] = prediction_row(case["source"], row, labels)
            case["prediction"].update(gate_columns(case.get("gate")))
        if self.options.explain:
            predicted = probs.argmax(dim=1).tolist()
            for case in cases:
                case["heatmaps"] = {}
            for label in self.classes_to_explain():
                indices = predicted if label is None else [labels.index(label)] * len(cases)
                maps = self.call("explain_batch", sources, inputs=inputs, class_indices=indices, bundle=self.bundle, device=self.options.device)
                if maps is None:
                    break
                for case, index, heatmap in zip(cases, indices, maps, strict=False):
                    case["heatmaps"][labels[index]] = heatmap
                    if label is None:
                        case["heatmap"] = heatmap
        return refused

    def average_over_scales(self, cases: list[dict[str, Any]], probs: torch.Tensor, sources: str) -> torch.Tensor:
        """Probabilities with the row of each case preprocessed at several scales replaced by
        its mean over them (``case["scale_inputs"]``: assumed fields of view, or zoom factors;
        see :mod:`scintipipe.transforms.unknown_scale`); other rows unchanged."""
        self.make_pending_zooms(cases, probs)
        index = [i for i, case in enumerate(cases) if case.get("scale_inputs") is not None]
        if not index:
            return probs
        # the input at the scale the case was classified at is one of them: its row is reused, not computed again
        reused = [list(cases[i].get("scale_input_is_input") or [False] * len(cases[i]["scale_inputs"])) for i in index]
        stacked = [plain_tensor(cases[i]["scale_inputs"]).float()[[not r for r in flags]] for i, flags in zip(index, reused, strict=True)]
        scaled = torch.empty((0, probs.shape[1]))
        if sum(len(inputs) for inputs in stacked):
            with torch.inference_mode():
                scaled = self.call("classify_batch", sources, inputs=torch.cat(stacked), bundle=self.bundle, device=self.options.device)
            scaled = torch.as_tensor(scaled).float()
        out = probs.clone().float()
        start = 0
        for i, inputs, flags in zip(index, stacked, reused, strict=True):
            rows = [scaled[start : start + len(inputs)], probs[i : i + 1].float().expand(sum(flags), -1)]
            out[i] = torch.cat(rows).mean(0)
            start += len(inputs)
        return out

    def make_pending_zooms(self, cases: list[dict[str, Any]], probs: torch.Tensor) -> None:
        """Settle each case whose zooms were deferred (``case["zoom_pending"]``, bundles with
        ``zoom_averaging_below``): make the zoom inputs where the top probability at the
        spacing as acquired is under the threshold, else note that the scan was classified once."""
        from scintipipe.transforms.unknown_scale import below_threshold, confident_note, make_pending_zoom_inputs, zoom_failed_note, zoom_note

        index = [i for i, case in enumerate(cases) if case.get("zoom_pending") is not None]
        if not index:
            return
        below = self.bundle.zoom_averaging_below
        uncertain = below_threshold(probs[index].float(), below).tolist() if below is not None else [True] * len(index)
        for i, average in zip(index, uncertain, strict=True):
            case = cases[i]
            factors = case["zoom_pending"]
            if average or below is None:
                try:
                    make_pending_zoom_inputs(case, self.bundle.scan_transform)
                    note = zoom_note(factors)
                except Exception as exc:  # noqa: BLE001  (a transform raises many kinds; the scan keeps its single pass, the batch goes on)
                    case.pop("zoom_pending", None)
                    note = zoom_failed_note(exc)
            else:
                case.pop("zoom_pending")
                note = confident_note(float(probs[i].max()), below)
            meta = getattr(case["image"], "meta", None)
            if meta is not None:
                meta["notes"] = [*(n for n in meta.get("notes") or [] if n != note), note]

    def classes_to_explain(self) -> list[str | None]:
        """``None`` (the predicted class) first, then the extra labels asked for."""
        extra = list(self.options.explain_classes)
        if "all" in extra:
            extra = list(self.bundle.labels)
        unknown = [label for label in extra if label not in self.bundle.labels]
        if unknown:
            raise ScanError("--explain-class", f"unknown labels {unknown}; bundle labels are {self.bundle.labels}")
        return [None, *extra]

    # ---- the run ----------------------------------------------------------------------

    def failure(self, source: str, exc: BaseException, stage: str) -> Failure:
        """The :class:`Failure` record of ``source`` failing with ``exc`` in ``stage``."""
        reason = exc.reason if isinstance(exc, ScanError) and str(exc.source) == source else str(exc)
        return Failure(source, error_stage(exc, stage), reason, exc)

    def work_units(self, inputs: list[Path | str | dict[str, Any]]) -> list[list[Any]]:
        """Split the inputs into units prepared together: one per DICOM study when the
        segment stage runs (a study's syringe images serve its thyroid views), else one per input."""
        if not self.segments:
            return [[entry] for entry in inputs]
        files = [Path(entry) for entry in inputs if not isinstance(entry, dict)]
        groups = iter(study_groups(files))
        units: list[list[Any]] = []
        seen_files = False
        for entry in inputs:  # loaded scans stay units of their own, where they were
            if isinstance(entry, dict):
                units.append([entry])
            elif not seen_files:
                units.extend(groups)
                seen_files = True
        return units

    def prepare_unit(self, unit: list[Any]) -> list[dict[str, Any] | Failure]:
        """Load, gate and prepare one unit's inputs (runs in a worker thread).

        Every view is gated before any is prepared, so that a syringe image anywhere in a
        study is offered for the uptake of all its thyroid views.

        Returns:
            A prepared case or a :class:`Failure` for every view (or unreadable file), in order.
        """
        first = unit[0] if unit else ""
        self.clock.start(str(first["source"] if isinstance(first, dict) else first))
        try:
            return self._prepare_unit(unit)
        finally:
            self.clock.finish()

    def _prepare_unit(self, unit: list[Any]) -> list[dict[str, Any] | Failure]:
        items: list[dict[str, Any] | Failure | None] = []
        admitted: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        syringes: list[tuple[str, dict[str, Any]]] = []
        for entry in unit:
            if isinstance(entry, dict):
                path, scans = None, [entry]
            else:
                path = Path(entry)
                try:
                    scans = self.load(path)
                except NotAnImage as note:
                    items.append(Failure(str(path), "load", note.reason, note, skipped=True))
                    continue
                except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
                    items.append(self.failure(str(path), exc, "load"))
                    continue
            syringe_meta = None
            for scan in scans:
                try:
                    gate = self.admit(scan)
                except GateRefused as refused:
                    if not refused.refusal.skip:
                        items.append(self.failure(scan["source"], refused, "gate"))
                        continue
                    items.append(Failure(scan["source"], error_stage(refused, "gate"), refused.refusal.reason, refused, skipped=True))
                    if refused.refusal.kind == "syringe" and syringe_meta is None:
                        syringe_meta = dict(scan["image"].meta)
                    continue
                except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
                    items.append(self.failure(scan["source"], exc, "gate"))
                    continue
                admitted.append((len(items), scan, gate))
                items.append(None)  # its place, filled once the whole unit is gated
            if syringe_meta is not None and path is not None:
                syringes.append((str(path), syringe_meta))
        syringe = choose_syringes(syringes)
        for index, scan, gate in admitted:
            try:
                items[index] = self.prepare(scan, gate, syringe)
            except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
                items[index] = self.failure(scan["source"], exc, "preprocess")
        return items  # type: ignore[return-value]

    def finish_batch(self, items: list[dict[str, Any] | Failure]) -> list[dict[str, Any] | Failure]:
        """Classify (and explain) the cases among ``items``; the refused and failed become :class:`Failure` records, in place."""
        cases = [item for item in items if isinstance(item, dict)]
        if not cases:
            return items
        try:
            self.classify(cases)
        except Exception as exc:  # noqa: BLE001  (the whole batch failed in classify/explain)
            return [self.failure(item["source"], exc, "classify") if isinstance(item, dict) else item for item in items]
        return [self.failure(item["source"], item["refused"], "gate") if isinstance(item, dict) and "refused" in item else item for item in items]

    @property
    def uses_worker_processes(self) -> bool:
        """Whether worker processes may be forked: asked for, on the CPU, where the platform can fork
        (:meth:`prepared_units` forks them for runs of :data:`scintipipe.runner.MIN_UNITS_FOR_PROCESSES` units or more)."""
        return self.options.worker_processes and self.options.device == "cpu" and can_fork_workers()

    def prepared_units(self, units: list[list[Any]]) -> Iterator[list[dict[str, Any] | Failure]]:
        """:meth:`prepare_unit` of every unit, in order, from the pool of worker threads or processes."""
        processes = self.uses_worker_processes and len(units) >= runner.MIN_UNITS_FOR_PROCESSES  # a fork pays off only on a longer run
        workers = default_workers(processes) if self.options.workers is None else self.options.workers
        if not (workers and processes):
            yield from ordered_map(self.prepare_unit, units, workers, self.options.in_flight)
            return
        # chunks pay where units are cheap; a study being segmented takes far longer than its task's cost
        chunk_size = 1 if self.segments else runner.chunk_size_for(len(units), workers)
        for items, hook_times in ordered_map(
            self._prepare_in_worker_process,
            units,
            workers,
            self.options.in_flight,
            processes=True,
            worker_setup=self._set_up_worker_process,
            chunk_size=chunk_size,
        ):
            for hook_name, figures in hook_times.items():  # the worker's stage times join the run's
                self.stage_times.add(hook_name, figures["seconds"], int(figures["calls"]))
            yield items

    def _set_up_worker_process(self) -> None:
        """In a forked worker: one PyTorch thread, and a clock of its own (the runner's lock and watcher thread stay behind)."""
        torch.set_num_threads(1)
        self._clock = InputClock(self.options.time_budget_s, self.log)
        self._clock.__enter__()

    def _prepare_in_worker_process(self, unit: list[Any]) -> tuple[list[dict[str, Any] | Failure], dict[str, dict[str, float]]]:
        """In a forked worker: :meth:`prepare_unit`, made picklable, and the stage times it took."""
        times = StageTimes()
        with recording(times):
            items = self.prepare_unit(unit)
        return [portable(item) for item in items], times.by_hook()

    def stream(self, units: list[list[Any]]) -> Generator[dict[str, Any] | Failure, None, None]:
        """Prepare units in the worker pool while classifying the previous batch; yield in order."""
        batch: list[dict[str, Any] | Failure] = []
        n_cases = 0
        for items in self.prepared_units(units):
            for item in items:
                batch.append(item)
                n_cases += isinstance(item, dict)
                if n_cases >= self.options.batch_size:
                    yield from self.finish_batch(batch)
                    batch, n_cases = [], 0
        yield from self.finish_batch(batch)

    def process(self, inputs: Iterable[Path | str | dict[str, Any]], times: StageTimes | None = None) -> Iterator[dict[str, Any] | Failure]:
        """Run the stages over ``inputs``: the one way to run them.

        Files are loaded, gated and preprocessed (and segmented, when ``segments``) in a
        pool of ``options.workers`` threads while the previous batch is classified and
        explained; a few units are in flight at once, never the whole input.

        Args:
            inputs: files, or scans already loaded (dicts with ``source`` and ``image``).
            times: where the stage-timing plugin adds each stage-hook call's time (a new
                :class:`StageTimes` when not given); also kept as ``self.stage_times``.

        Yields:
            For every view, in input order: its case (``prediction``, ``gate``, and
            ``segmentation``/``heatmaps`` when those stages ran), or a :class:`Failure` for
            a view or file that failed or was skipped.
        """
        self.stage_times = times if times is not None else StageTimes()
        stream = self.stream(self.work_units(list(inputs)))
        try:
            with self.clock:
                yield from self._recorded(stream)
        finally:
            stream.close()

    def _recorded(self, stream: Iterator[dict[str, Any] | Failure]) -> Iterator[dict[str, Any] | Failure]:
        """Items of ``stream`` with stage times recorded only around the runner's own work, not the caller's."""
        while True:
            with recording(self.stage_times):
                try:
                    item = next(stream)
                except StopIteration:
                    return
            yield item

    def run(self, files: Iterable[Path], out_dir: Path) -> RunSummary:
        """Process every file, writing ``predictions.csv`` (a row as each case is done), ``errors.csv`` and case folders.

        Args:
            files: input files (directories already expanded).
            out_dir: the results folder (created).
        """
        return self.run_groups([(files, out_dir)])[0]

    def run_groups(self, groups: Sequence[tuple[Iterable[Path], Path]], on_done: Callable[[int, RunSummary], None] | None = None) -> list[RunSummary]:
        """:meth:`run` on several groups of files in one :meth:`process` pass, each group into its own folder.

        The views of all groups are batched together (one pass, one model), while each
        folder gets what :meth:`run` alone would have written there: ``predictions.csv``,
        ``errors.csv``, case folders and the ``report_run`` outputs of its own cases.
        A file belongs to one group.

        Args:
            groups: ``(files, out_dir)`` per group.
            on_done: called with a group's index and summary as soon as its folder is
                complete (every view of its files reported), while the pass goes on.

        Returns:
            Each group's summary, in order (``seconds``: from the pass's start to the
            group's completion; ``stage_seconds``: the pass's so far).
        """
        start = time.perf_counter()
        times = StageTimes()
        lists = [[Path(path) for path in files] for files, _ in groups]
        owner = {str(path): index for index, files in enumerate(lists) for path in files}
        remaining = [{str(path) for path in files} for files in lists]
        outputs: list[RunOutput | None] = [None] * len(groups)
        summaries: list[RunSummary | None] = [None] * len(groups)

        def output(index: int) -> RunOutput:
            if outputs[index] is None:
                outputs[index] = RunOutput(self, lists[index], Path(groups[index][1]), times, start)
            return outputs[index]  # type: ignore[return-value]

        def close(index: int) -> None:
            if summaries[index] is None:
                summaries[index] = output(index).close()
                if on_done is not None:
                    on_done(index, summaries[index])  # type: ignore[arg-type]

        if len(groups) == 1:  # as `run` always did: the folder and its files exist from the start, and hooks see it
            self.out_dir = Path(groups[0][1])
            output(0)
        all_files = [path for files in lists for path in files]
        bar = tqdm(total=len(all_files), desc="scans", unit="file", disable=self._progress_disabled(len(all_files)), file=sys.stderr)
        last_file, current = None, 0
        try:
            for item in self.process(all_files, times):
                source = item.source if isinstance(item, Failure) else item["source"]
                file = source_file(source)
                if file != last_file:
                    bar.update(1)
                    if last_file is not None:  # a file's views come together: the last one is done
                        finished = owner.get(last_file)
                        if finished is not None:
                            remaining[finished].discard(last_file)
                            if not remaining[finished]:
                                close(finished)
                    last_file = file
                    current = owner.get(file, current)
                output(current).take(item)
        finally:
            bar.close()
        for index in range(len(groups)):
            close(index)
        return summaries  # type: ignore[return-value]

    def _progress_disabled(self, n_files: int) -> bool | None:
        if self.options.progress is None:
            return None if n_files > 1 else True  # tqdm: None disables on non-terminals
        return not self.options.progress


class RunOutput:
    """What :meth:`Pipeline.run` writes in one folder: ``predictions.csv``, ``errors.csv``, case folders, ``report_run``.

    Args:
        pipeline: the pipeline whose hooks report.
        files: the folder's input files (their count goes to the summary).
        out_dir: the folder (created).
        times: where report hook times are added.
        start: ``time.perf_counter()`` when the pass began.
    """

    def __init__(self, pipeline: Pipeline, files: list[Path], out_dir: Path, times: StageTimes, start: float):
        self.pipeline, self.out_dir, self.times, self.start = pipeline, out_dir, times, start
        out_dir.mkdir(parents=True, exist_ok=True)
        self.summary = RunSummary(files=len(files))
        self.namer = CaseNamer()
        self._pred_handle = (out_dir / "predictions.csv").open("w", newline="")
        self._err_handle = (out_dir / "errors.csv").open("w", newline="")
        self.predictions = csv.DictWriter(self._pred_handle, fieldnames=[*prediction_columns(pipeline.bundle.labels), *GATE_COLUMNS])
        self.predictions.writeheader()
        self._pred_handle.flush()
        self.errors = csv.writer(self._err_handle)
        self.errors.writerow(["source", "stage", "error"])

    def take(self, item: dict[str, Any] | Failure) -> None:
        """Record a failure, or report a case (a reporter's failure is recorded as the case's)."""
        if isinstance(item, Failure):
            self.record(item)
            return
        try:
            self.report(item)
        except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
            self.record(self.pipeline.failure(item["source"], exc, "report"))

    def record(self, failure: Failure) -> None:
        """A skipped input goes to the log; a failed one to ``errors.csv``."""
        if failure.skipped:
            self.summary.skipped.append((failure.source, failure.reason))
            self.pipeline.log(f"skipped {failure.source}: {failure.reason}")
            return
        self.summary.failures.append((failure.source, failure.reason))
        self.errors.writerow([failure.source, failure.stage, failure.reason])
        self._err_handle.flush()

    def report(self, case: dict[str, Any]) -> None:
        """Write the case's folder (``report_case``) and its ``predictions.csv`` row."""
        pipeline, out_dir = self.pipeline, self.out_dir
        case_name = None
        case["outputs"] = []
        if pipeline.options.report:
            case_name = self.namer(case["source"])
            case_dir = out_dir / case_name
            case_dir.mkdir(parents=True, exist_ok=True)
            pipeline.out_dir = out_dir
            with recording(self.times):
                written = pipeline.call("report_case", case["source"], case=case, bundle=pipeline.bundle, out_dir=case_dir)
            case["outputs"] = relative_outputs(written, out_dir)
        self.predictions.writerow(case["prediction"])
        self._pred_handle.flush()  # an interrupted run keeps every row it finished
        self.summary.classified += 1
        quantities = (case.get("segmentation") or {}).get("quantities")
        self.summary.cases.append(
            {
                "source": case["source"],
                "case_dir": case_name,
                "prediction": case["prediction"],
                "quantities": quantities,
                "gate": case.get("gate"),
                "outputs": case["outputs"],
            }
        )

    def close(self) -> RunSummary:
        """Write the batch-level outputs (study tables, index.html; also with ``--no-report``), close the files; the summary."""
        pipeline = self.pipeline
        pipeline.out_dir = self.out_dir
        try:
            with recording(self.times):
                pipeline.call("report_run", str(self.out_dir), cases=self.summary.cases, bundle=pipeline.bundle, out_dir=self.out_dir)
        except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
            self.record(pipeline.failure(str(self.out_dir), exc, "report"))
        finally:
            self._pred_handle.close()
            self._err_handle.close()
        self.summary.seconds = time.perf_counter() - self.start
        self.summary.stage_seconds = self.times.by_stage()
        return self.summary
