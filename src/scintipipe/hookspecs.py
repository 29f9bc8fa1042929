"""Every hook scintipipe defines, grouped by pipeline stage.

Plugins implement these with ``from scintipipe.api import hookimpl``. Registration hooks take
a ``register`` object and return nothing. Stage hooks are ``firstresult``: the runner uses
the first implementation that returns something other than ``None``, so a plugin returns
``None`` for scans or bundles it does not handle. ``report_case`` is the exception: every
reporter runs. Only :mod:`scintipipe.pipeline` calls stage hooks, and passes each a
``context`` (:class:`scintipipe.api.RunContext`: plugin options, device, out_dir, bundle);
an implementation takes the arguments it needs and leaves the others out.

``docs/hooks.md`` documents each hook; a test keeps it in step with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from scintipipe.bundle import Bundle
    from scintipipe.case import Case, Scan
    from scintipipe.context import RunContext
    from scintipipe.gate import Refusal
    from scintipipe.registry import (
        CenterRegister,
        CommandRegister,
        ExplainerRegister,
        NetworkRegister,
        OptionRegister,
        RecipeRegister,
        SegmenterRegister,
        ServedModelRegister,
        SimulatorRegister,
        TaskRegister,
        TrainingSourceRegister,
    )

PROJECT = "scintipipe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------


@hookspec
def register_tasks(register: TaskRegister) -> None:
    """Register tasks (label sets) and the bundles that solve them.

    Args:
        register: call ``register.task(name, labels, description)`` and
            ``register.bundle(name, path, task)``. Names must be unique across plugins.

    Example:
        >>> @hookimpl
        ... def register_tasks(register):
        ...     register.task("remnant", ["absent", "present"], "residual tissue after surgery")
        ...     register.bundle("remnant", Path(__file__).parent / "bundle", task="remnant")
    """


@hookspec
def register_commands(register: CommandRegister) -> None:
    """Add sub-commands to the ``scintipipe`` command line.

    Args:
        register: call ``register.command(cmd)`` with a :class:`click.Command`.

    Example:
        >>> @hookimpl
        ... def register_commands(register):
        ...     @click.command()
        ...     def hello():
        ...         click.echo("hello")
        ...     register.command(hello)
    """


@hookspec
def register_simulators(register: SimulatorRegister) -> None:
    """Register a scan simulator for a task, used by ``scintipipe simulate --task``.

    Args:
        register: call ``register.simulator(task, factory)`` where ``factory(rng, center,
            label)`` returns one simulated case (see :mod:`scintipipe.simulate`).

    Example:
        >>> @hookimpl
        ... def register_simulators(register):
        ...     register.simulator("remnant", simulate_remnant_case)
    """


@hookspec
def register_networks(register: NetworkRegister) -> None:
    """Register classifier networks that recipes and ``build_network(name, ...)`` can build.

    Args:
        register: call ``register.network(name, spec)`` with a
            :class:`scintipipe.api.NetworkSpec` (builder, Grad-CAM layer, classifier layer,
            minimum input size). Names must be unique across plugins.

    Example:
        >>> @hookimpl
        ... def register_networks(register):
        ...     from scintipipe.api import NetworkSpec
        ...     register.network("tinynet", NetworkSpec(TinyNet, "features.3", "fc", min_size=16))
    """


@hookspec
def register_centers(register: CenterRegister) -> None:
    """Register simulator acquisition profiles, used by ``scintipipe simulate --center NAME``.

    Args:
        register: call ``register.center(profile)`` with a
            :class:`scintipipe.api.CenterProfile`; its ``name`` is what ``--center`` takes.

    Example:
        >>> @hookimpl
        ... def register_centers(register):
        ...     from scintipipe.api import I131_HE, CenterProfile
        ...     register.center(CenterProfile(name="remnant", matrix=256, pixel_mm=2.4, count_preset=150_000, camera=I131_HE))
    """


@hookspec
def register_recipes(register: RecipeRegister) -> None:
    """Register training recipes, used by ``scintipipe train --recipe NAME`` and ``load_recipe(NAME)``.

    Args:
        register: call ``register.recipe(name, path)`` for one JSON file, or
            ``register.recipe_folder(folder)`` for every ``*.json`` in a folder (named
            after the files). Ship the files inside your package so they are installed.

    Example:
        >>> @hookimpl
        ... def register_recipes(register):
        ...     register.recipe_folder(Path(__file__).parent / "recipes")
    """


@hookspec
def register_served_models(register: ServedModelRegister) -> None:
    """Register models that ``scintipipe serve`` offers (MONAI Label infer tasks), at ``/info/`` and ``/infer/{name}``.

    Called when the server starts, and again when a retrained bundle replaces a served one.

    Args:
        register: call ``register.served_model(model)`` with a
            :class:`scintipipe.api.ServedModel` (name, MONAI Label type, labels,
            description, config, and ``infer(scans, params, context)``); names are unique
            across plugins. ``register.bundles`` holds the served bundles by name.

    Example:
        >>> @hookimpl
        ... def register_served_models(register):
        ...     from my_plugin.served import HottestPixel
        ...     for name, bundle in register.bundles.items():
        ...         register.served_model(HottestPixel(name + "_hottest", bundle))
    """


# --------------------------------------------------------------------------------------
# options and named alternatives
# --------------------------------------------------------------------------------------


@hookspec
def add_options(register: OptionRegister) -> None:
    """Declare the options a plugin owns: ``scintipipe run`` flags and the server's infer params.

    Values reach the stage hooks as ``context.options[name]`` (defaults filled in).

    Args:
        register: call ``register.option(name, type, default, help, choices, is_flag,
            choose_from, served)``; names are unique across plugins and the core's own.
            ``register.check(fn)`` adds a check ``fn(options)`` that raises ``ValueError``
            for a combination of values it refuses.

    Example:
        >>> @hookimpl
        ... def add_options(register):
        ...     register.option("hottest_pixel", type=bool, default=True, help="Write hottest_pixel.txt per case.")
    """


@hookspec
def register_training_sources(register: TrainingSourceRegister) -> None:
    """Offer extra training data to ``scintipipe train``, each source behind its own repeatable option.

    ``train`` splits the real labelled files into training and validation first; a
    source's files join the training fold only (see :class:`scintipipe.api.ExtraTraining`),
    so validation stays real.

    Args:
        register: call ``register.source(name, make, help, metavar)``; the flag is
            ``--`` and the name with dashes, and names are unique across plugins and
            ``train``'s own options. ``make(values, context)`` gets every value given for
            the flag and a :class:`scintipipe.registry.TrainingSourceContext` (``out_dir``,
            ``recipe``, ``pm``, ``resume``) and returns a list of ``ExtraTraining``; it
            raises ``ValueError`` for a value it refuses (a usage error, before training).

    Example:
        >>> @hookimpl
        ... def register_training_sources(register):
        ...     def make(values, context):
        ...         return [ExtraTraining(f"scans listed in {v}", rows=lambda counts, v=v: read_rows(v)) for v in values]
        ...     register.source("add_scans", make, "Add the scans of a file,label CSV to the training fold.", metavar="CSV")
    """


@hookspec
def register_segmenters(register: SegmenterRegister) -> None:
    """Register named segmenters, chosen with ``scintipipe run --segmenter NAME`` (and the server's ``segmenter`` param).

    Args:
        register: call ``register.segmenter(name, segment, description)`` where
            ``segment(scan, bundle, context)`` returns what :func:`segment_scan` returns.

    Example:
        >>> @hookimpl
        ... def register_segmenters(register):
        ...     register.segmenter("threshold", threshold_segment, "pixels above 30 % of the maximum")
    """


@hookspec
def register_explainers(register: ExplainerRegister) -> None:
    """Register named explain methods, chosen with ``scintipipe run --explain-method NAME``.

    Args:
        register: call ``register.explainer(name, explain, description)`` where
            ``explain(inputs, class_indices, bundle, device)`` returns what
            :func:`explain_batch` returns.

    Example:
        >>> @hookimpl
        ... def register_explainers(register):
        ...     register.explainer("saliency", vanilla_saliency, "input gradients")
    """


# --------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def load_scans(path: Path, context: RunContext) -> list[Scan] | None:
    """Read one file into scans, one per planar view. Stops at first non-None result.

    Args:
        path: a file (directories are walked by the runner).
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        A list of scans built with :func:`scintipipe.scan.make_scan` (a multi-frame file
        gives one scan per view, ``source`` = ``"file.dcm#anterior"``), or ``None`` when
        this loader does not read this kind of file. Raise
        :class:`scintipipe.errors.ScanError` for a file of your kind that is bad, and
        :class:`scintipipe.errors.NotAnImage` for one that holds no image.

    Example:
        >>> @hookimpl
        ... def load_scans(path):
        ...     if path.suffix != ".raw":
        ...         return None
        ...     return [make_scan(np.fromfile(path, "<u2").reshape(128, 128), str(path))]
    """


# --------------------------------------------------------------------------------------
# gate
# --------------------------------------------------------------------------------------


@hookspec
def gate_scan(scan: Case, bundle: Bundle, context: RunContext) -> Refusal | dict[str, Any] | None:
    """Say whether a loaded view may be classified with this bundle. Every implementation runs.

    Runs after ``load`` and before ``preprocess``. Any refusal keeps the view from the
    classifier: it goes to ``errors.csv`` with the layer and the reason, or, when
    ``skip`` is set (syringe, point-source and flood images), to the skipped notes.

    Args:
        scan: the loaded scan (``scan["image"]`` and its ``meta``).
        bundle: the bundle that would classify it (``bundle.gate`` holds its settings).
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        ``None`` to let the view through, or a :class:`scintipipe.gate.Refusal` (or a dict
        with ``layer`` and ``reason``, optionally ``skip`` and ``kind``).

    Example:
        >>> @hookimpl
        ... def gate_scan(scan, bundle):
        ...     if scan["image"].meta.get("view") == "lateral":
        ...         return Refusal("views", "lateral views are not classified by this bundle")
        ...     return None
    """


@hookspec(firstresult=True)
def gate_batch(inputs: Any, bundle: Bundle, device: str, context: RunContext) -> list[dict[str, Any]] | None:
    """Score a preprocessed batch for being out of the bundle's distribution. Stops at first non-None result.

    Runs just before ``classify_batch`` on the same inputs. The built-in implementation
    uses the statistics the bundle ships (``configs/gate.json``, ``models/ood.pt``) and
    returns ``None`` for a bundle without them.

    Args:
        inputs: the batch tensor given to :func:`classify_batch`.
        bundle: the bundle.
        device: ``"cpu"`` or ``"cuda"``.
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        One dict per input: ``ood_score`` (float, higher is further out),
        ``in_distribution`` (bool), ``reason`` (words for a refusal) and optionally
        ``threshold`` (reported beside the score; default the bundle's), or ``None``.

    Example:
        >>> @hookimpl
        ... def gate_batch(inputs, bundle, device):
        ...     scores = my_detector(inputs)
        ...     return [{"ood_score": s, "in_distribution": s < 3.0, "reason": f"score {s:.1f} >= 3"} for s in scores]
    """


# --------------------------------------------------------------------------------------
# preprocess
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def preprocess_scan(scan: Case, bundle: Bundle, context: RunContext) -> Case | None:
    """Turn a loaded scan into the network input a bundle expects. Stops at first non-None result.

    Args:
        scan: the loaded scan.
        bundle: the bundle that will classify it.
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        The scan dictionary with ``"input"`` set to a tensor of the bundle's input shape
        (other keys kept), or ``None`` to leave it to the next plugin. The built-in
        implementation applies the bundle's ``scan_transforms`` from ``inference.json``.

    Example:
        >>> @hookimpl
        ... def preprocess_scan(scan, bundle):
        ...     if bundle.task != "mytask":
        ...         return None
        ...     return {**scan, "input": my_transform(scan["image"])}
    """


# --------------------------------------------------------------------------------------
# segment
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def segment_scan(scan: Case, bundle: Bundle, context: RunContext) -> dict[str, Any] | None:
    """Find regions of interest and quantify them. Stops at first non-None result.

    The built-in implementation (registered ``trylast``) runs the segmenter named by
    ``context.options["segmenter"]`` (see :func:`register_segmenters`).

    Args:
        scan: the loaded scan (``scan["image"]`` holds counts).
        bundle: the bundle in use (its task may decide which regions matter).
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        ``{"rois": {name: bool ndarray}, "quantities": {name: float}}`` or ``None`` when
        no segmenter handles the scan.

    Example:
        >>> @hookimpl
        ... def segment_scan(scan, bundle):
        ...     img = scan["image"][0].numpy()
        ...     mask = img > 0.3 * img.max()
        ...     return {"rois": {"thyroid": mask}, "quantities": {"thyroid_counts": float(img[mask].sum())}}
    """


# --------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def classify_batch(inputs: Any, bundle: Bundle, device: str, context: RunContext) -> Any | None:
    """Classify a batch of preprocessed inputs. Stops at first non-None result.

    Args:
        inputs: float tensor ``(batch, channels, ...)`` stacked from the scans' ``"input"``.
        bundle: the bundle; ``bundle.network(device)`` returns its model, loaded once.
        device: ``"cpu"`` or ``"cuda"``.
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        Tensor ``(batch, n_labels)`` of class probabilities (rows sum to one), or ``None``.

    Example:
        >>> @hookimpl
        ... def classify_batch(inputs, bundle, device):
        ...     with torch.no_grad():
        ...         return bundle.network(device)(inputs.to(device)).softmax(1).cpu()
    """


# --------------------------------------------------------------------------------------
# explain
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def explain_batch(inputs: Any, class_indices: list[int], bundle: Bundle, device: str, context: RunContext) -> Any | None:
    """Produce a saliency map per input for the given classes. Stops at first non-None result.

    Args:
        inputs: the same batch tensor given to :func:`classify_batch`.
        class_indices: for each input, the class to explain (usually the predicted one).
        bundle: the bundle; ``bundle.explain_layer`` names the layer for Grad-CAM.
        device: ``"cpu"`` or ``"cuda"``.
        context: the run's :class:`scintipipe.api.RunContext`; the built-in
            implementation (registered ``trylast``) runs the explain method named by
            ``context.options["explain_method"]`` (see :func:`register_explainers`).

    Returns:
        Array ``(batch, H, W)`` of maps scaled to [0, 1] on the input grid, or ``None``.

    Example:
        >>> @hookimpl
        ... def explain_batch(inputs, class_indices, bundle, device):
        ...     cam = GradCAM(bundle.network(device), target_layers=bundle.explain_layer)
        ...     return cam(inputs.to(device), class_idx=class_indices[0])[:, 0].cpu().numpy()
    """


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


@hookspec
def report_case(case: Case, bundle: Bundle, out_dir: Path, context: RunContext) -> list[Path] | None:
    """Write one case's results. Every implementation runs.

    Args:
        case: the scan dictionary after all stages, with ``"prediction"`` (label,
            confidence, probabilities), ``"segmentation"`` and ``"heatmap"`` when those
            stages ran.
        bundle: the bundle that classified the case.
        out_dir: ``results/<case>/``, already created.
        context: the run's :class:`scintipipe.api.RunContext` (``context.out_dir`` is
            ``results/``); leave it out of the signature when not needed.

    Returns:
        The files written, or ``None``. The runner collects every reporter's files into
        ``case["outputs"]`` (paths relative to ``results/``) for :func:`report_run`; a
        ``wrapper=True`` implementation sees the others' files as the result of its
        ``yield`` (the built-in HTML report links them this way).

    Example:
        >>> @hookimpl
        ... def report_case(case, bundle, out_dir):
        ...     path = out_dir / "label.txt"
        ...     path.write_text(case["prediction"]["label"])
        ...     return [path]
    """


@hookspec
def report_run(cases: list[dict[str, Any]], bundle: Bundle, out_dir: Path, context: RunContext) -> list[Path] | None:
    """Write batch-level results once every case is done. Every implementation runs.

    Args:
        cases: one record per classified view: ``source``, ``case_dir`` (relative to
            ``out_dir``, ``None`` with ``--no-report``), ``prediction``, ``quantities``,
            ``gate`` and ``outputs`` (the files the reporters wrote, relative to ``out_dir``).
        bundle: the bundle used.
        out_dir: the results folder.
        context: the run's :class:`scintipipe.api.RunContext` (plugin options, device,
            ``out_dir``, bundle); leave it out of the signature when not needed.

    Returns:
        The files written, or ``None``.

    Example:
        >>> @hookimpl
        ... def report_run(cases, bundle, out_dir):
        ...     path = out_dir / "count.txt"
        ...     path.write_text(str(len(cases)))
        ...     return [path]
    """
