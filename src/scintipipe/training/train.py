"""``train_bundle``: labelled scans in, a complete bundle folder out.

This is how a clinic retrains on its own labelled DICOMs and how the shipped bundles are
made: one function, one command (``scintipipe train``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pluggy
import torch
from monai.bundle import ConfigParser
from sklearn.model_selection import train_test_split

from scintipipe.bundle import Bundle
from scintipipe.bundle_writer import NOT_FOR_CLINICAL_USE, bundle_metadata, package_versions, write_bundle
from scintipipe.pipeline import Pipeline, RunOptions
from scintipipe.training.data import ExtraTraining, LabelledSet, LabelsError, hash_dataset, load_labelled_set, read_labels
from scintipipe.training.ensemble import ensemble_seeds, train_ensemble
from scintipipe.training.loop import fit, predict, world
from scintipipe.training.recipe import network_def

#: what :func:`split_rows` splits: a file, or an index into a labelled set
Item = TypeVar("Item")


@dataclass
class TrainResult:
    """A trained bundle and how it did on its validation split."""

    bundle_dir: Path
    validation: dict[str, Any]
    best_epoch: int
    seconds: float
    failures: list[tuple[str, str]]


def build_network(recipe: dict[str, Any]) -> torch.nn.Module:
    """Instantiate the recipe's network from its ``_target_`` config."""
    parser = ConfigParser({"network_def": network_def(recipe)})
    return parser.get_parsed_content("network_def", instantiate=True)


def write_recipe_bundle(
    out_dir: Path,
    recipe: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    model_card: str,
    eval_metrics: dict[str, Any] | None = None,
    description: str = "",
    version: str = "0.1.0",
    gate_settings: dict[str, Any] | None = None,
    training_in_progress: bool = False,
) -> Path:
    """Write a bundle whose configs come from ``recipe`` (kept as ``configs/recipe.json``).

    ``gate_settings`` becomes ``configs/gate.json`` (see :func:`scintipipe.bundle_writer.write_bundle`);
    ``training_in_progress`` marks the bundle written before training (its weights are the
    initial ones, which :meth:`scintipipe.bundle.Bundle.network` refuses to serve).
    """
    metadata = bundle_metadata(
        name=recipe.get("name", recipe["task"]),
        task=recipe["task"],
        labels=recipe["labels"],
        input_shape=recipe["input_size"],
        description=description or recipe.get("description", f"{recipe['task']} classifier"),
        version=version,
        network=recipe["network"]["_target_"],
        explain_layer=recipe.get("explain_layer"),
        explain_method=recipe.get("explain_method"),
        unknown_scale_fovs_mm=recipe.get("unknown_scale_fovs_mm"),
        zoom_factors=recipe.get("zoom_factors"),
        zoom_averaging_below=recipe.get("zoom_averaging_below"),
        clinical_use=False,
        trained_on=recipe.get("trained_on", ""),
        eval_metrics=eval_metrics,
        training_in_progress=training_in_progress,
    )
    return write_bundle(
        out_dir,
        state_dict=state_dict,
        metadata=metadata,
        network_def=network_def(recipe),
        scan_transforms=recipe["scan_transforms"],
        model_card=model_card,
        imports=recipe.get("imports", ()),
        extra_configs={"recipe": recipe},
        gate_settings=gate_settings,
    )


def split_rows(rows: list[tuple[Item, str]], val_fraction: float, seed: int) -> tuple[list[tuple[Item, str]], list[tuple[Item, str]]]:
    """Stratified split of labelled files (views of one file stay together)."""
    labels = [label for _, label in rows]
    counts = {label: labels.count(label) for label in set(labels)}
    stratify = labels if min(counts.values()) >= 2 else None
    return train_test_split(rows, test_size=val_fraction, random_state=seed, stratify=stratify)


def train_bundle(
    pm: pluggy.PluginManager,
    recipe: dict[str, Any],
    data_dir: Path | None,
    labels_csv: Path,
    out_dir: Path,
    device: str = "cpu",
    init_weights: Path | None = None,
    resume: bool = False,
    data_description: str = "",
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    gate_settings: dict[str, Any] | None = None,
    extra_training: Sequence[ExtraTraining] = (),
) -> TrainResult:
    """Train a bundle from labelled scans and write it to ``out_dir``.

    Args:
        pm: plugin manager (its loaders and preprocessors read the scans).
        recipe: a completed recipe.
        data_dir: folder the CSV's file names are relative to (default: the CSV's folder).
        labels_csv: ``file,label`` CSV.
        out_dir: the new bundle folder (also holds ``logs/`` and ``checkpoint.pt``).
        device: ``cpu`` or ``cuda``.
        init_weights: local weights file for transfer learning.
        resume: continue an interrupted run in ``out_dir``.
        data_description: what the data is, for the model card.
        progress: progress bars (``None``: on a terminal).
        log: where progress lines go.
        gate_settings: ``configs/gate.json`` of the new bundle, e.g. the radionuclides kept
            from the bundle it is retrained from
            (:func:`scintipipe.bundle_writer.inherited_gate_settings`; read it before
            training, since ``out_dir`` may be that bundle). The learned gate and the
            temperature are not in it: ``scintipipe gate fit`` fits them for the new weights.
        extra_training: files added to the training fold only, after the split (e.g. a
            GAN's synthetic scans, ``scintipipe-gan``); see :func:`add_extra_training`.
    """
    out_dir = Path(out_dir)
    if ensemble_seeds(recipe):
        return _train_ensemble(
            pm,
            recipe,
            data_dir,
            labels_csv,
            out_dir,
            dict(
                device=device,
                init_weights=init_weights,
                resume=resume,
                data_description=data_description,
                progress=progress,
                log=log,
                gate_settings=gate_settings,
                extra_training=extra_training,
            ),
        )
    rank, size = world()
    if rank != 0:  # in a distributed run only rank 0 logs and writes
        log = _quiet
    torch.manual_seed(int(recipe["seed"]))
    model = build_network(recipe)
    init_report = None
    if init_weights is not None:
        from scintipipe.networks import load_init_weights

        init_report = load_init_weights(model, init_weights)
        log(f"initial weights from {init_weights}: {_count(init_report)}")
    # The bundle exists from the start (initial weights) so preprocessing runs through the
    # very same bundle code path as inference.
    if rank == 0:
        card = "# training in progress\n\nThe weights are the initial ones; `scintipipe train` rewrites this bundle when it ends.\n"
        write_recipe_bundle(out_dir, recipe, model.state_dict(), card, gate_settings=gate_settings, training_in_progress=True)
    if size > 1:
        import torch.distributed as dist

        dist.barrier()
        log(f"distributed training: {size} processes ({dist.get_backend()})")
    # training reads one input per view: the bundle's other scales would be made and thrown away
    options = RunOptions(device=device, segment=False, explain=False, report=False, plugin_options={"scale_averaging": False})
    pipeline = Pipeline(pm, Bundle(out_dir), options)
    rows = read_labels(labels_csv, data_dir, recipe["labels"])
    train_rows, val_rows = split_rows(rows, float(recipe["val_fraction"]), int(recipe["seed"]))
    log(f"{len(rows)} labelled files: {len(train_rows)} for training, {len(val_rows)} for validation")
    train = load_labelled_set(pipeline, train_rows, progress)
    val = load_labelled_set(pipeline, val_rows, progress)
    train.data_hash = val.data_hash = hash_dataset(rows)  # the whole labelled set, as given
    train, extras_note = add_extra_training(pipeline, train, val, rows, extra_training, progress, log)
    failures = train.failures + val.failures
    for source, reason in failures:
        log(f"left out {source}: {reason}")
    result = fit(model, train, val, recipe, out_dir, device=device, resume=resume, progress=progress, log=log)
    model.load_state_dict(result.best_state)
    validation = evaluate_set(model, val, device)
    if rank != 0:
        return TrainResult(out_dir, validation, result.best_epoch, result.seconds, failures)
    card = model_card(recipe, train, val, validation, result.best_epoch, result.seconds, data_description, init_weights, init_report, extras_note)
    write_recipe_bundle(out_dir, recipe, result.best_state, card, eval_metrics={"validation": _headline(validation)}, gate_settings=gate_settings)
    if failures:
        (out_dir / "train_errors.csv").write_text("source,error\n" + "".join(f"{s},{json.dumps(r)}\n" for s, r in failures))
    return TrainResult(out_dir, validation, result.best_epoch, result.seconds, failures)


def _train_ensemble(
    pm: pluggy.PluginManager,
    recipe: dict[str, Any],
    data_dir: Path | None,
    labels_csv: Path,
    out_dir: Path,
    options: dict[str, Any],
) -> TrainResult:
    """:func:`train_bundle` for a recipe with ``ensemble_seeds``: one member per seed, then the ensemble.

    ``options`` are :func:`train_bundle`'s keyword arguments, passed to every member. The
    returned validation is empty: each member's split holds scans the others trained on
    (:mod:`scintipipe.training.ensemble`).
    """

    def train_one(member: dict[str, Any], folder: Path) -> TrainResult:
        return train_bundle(pm, member, data_dir, labels_csv, folder, **options)

    results = train_ensemble(train_one, recipe, out_dir, options.get("log", print))
    trained = [result for result in results if result is not None]
    failures = [failure for result in trained for failure in result.failures]
    seconds = sum(result.seconds for result in trained)
    return TrainResult(out_dir, {}, max((result.best_epoch for result in trained), default=0), seconds, failures)


def add_extra_training(
    pipeline: Pipeline,
    train: LabelledSet,
    val: LabelledSet,
    rows: Sequence[tuple[Path, str]],
    extras: Sequence[ExtraTraining],
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> tuple[LabelledSet, list[str]]:
    """Add each :class:`ExtraTraining`'s files to the training fold, never to validation.

    Args:
        pipeline: loads and preprocesses the extra files exactly like the real ones.
        train: the real training fold.
        val: the validation fold (checked to hold none of the extra files).
        rows: every real labelled ``(path, label)``, training and validation.
        extras: the extra sources, in order.
        progress: progress bars.
        log: where one line per source goes.

    Returns:
        The training fold with the extra views appended (their sources prefixed with
        ``tag:``), and one model-card line per source.

    Raises:
        LabelsError: an extra file is one of the real labelled files (same path or same
            bytes), or it is in the validation fold.
    """
    if not extras:
        return train, []
    real_paths = {Path(path).resolve() for path, _ in rows}
    real_bytes = {_file_digest(path) for path, _ in rows}
    notes = []
    for extra in extras:
        counts = dict(zip(train.labels, train.class_counts(), strict=True))
        extra_rows = [(Path(path), label) for path, label in extra.rows(counts)]
        if not extra_rows:
            log(f"{extra.name}: no files added")
            continue
        clash = [str(path) for path, _ in extra_rows if path.resolve() in real_paths or _file_digest(path) in real_bytes]
        if clash:
            raise LabelsError(
                f"{extra.name}: {len(clash)} file(s) are also real labelled files and would leak into training or validation ({', '.join(clash[:3])})"
            )
        loaded = load_labelled_set(pipeline, extra_rows, progress)
        loaded.sources = [f"{extra.tag}:{source}" for source in loaded.sources]
        train = train.concat(loaded)
        added = dict(zip(loaded.labels, loaded.class_counts(), strict=True))
        note = f"{extra.name}: {len(loaded)} views added to the training fold only ({', '.join(f'{k} {v}' for k, v in added.items())}); data hash `{hash_dataset(extra_rows)}`"
        log(note)
        notes.append(note)
    tags = tuple(f"{extra.tag}:" for extra in extras)
    if any(source.startswith(tags) for source in val.sources):
        raise LabelsError("extra training files reached the validation fold")
    return train, notes


def _file_digest(path: Path) -> str:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else f"missing:{path}"


def _quiet(message: str) -> None:
    pass


def train_distributed(
    nproc: int, kwargs: dict[str, Any], plugins_dir: Path | None = None, port: int | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Run :func:`train_bundle` in ``nproc`` processes (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

    What ``torchrun --nproc_per_node N -m scintipipe train ...`` does on one machine, with
    ``torch.multiprocessing``: each process builds its plugin manager (from ``plugins_dir``)
    and takes its share of every epoch (MONAI's ``DistributedSampler``); validation
    probabilities are gathered over the ranks, and only rank 0 logs and writes the bundle.

    Args:
        nproc: processes (one per GPU on a GPU machine).
        kwargs: :func:`train_bundle`'s keyword arguments except ``pm`` and ``log`` (picklable).
        plugins_dir: one-file plugins each process loads as well.
        port: the rendezvous port on 127.0.0.1 (default: a free one).
        threads: PyTorch threads per process (default: PyTorch's choice).

    Returns:
        Rank 0's ``{"bundle_dir", "validation", "best_epoch", "seconds", "failures"}``.
    """
    import socket
    import tempfile

    import torch.multiprocessing as mp

    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "rank0.json"
        mp.spawn(
            _distributed_worker,
            args=(nproc, port, kwargs, str(plugins_dir) if plugins_dir else None, str(result_file), threads),
            nprocs=nproc,
            join=True,
        )
        return json.loads(result_file.read_text())


def _distributed_worker(
    rank: int, nproc: int, port: int, kwargs: dict[str, Any], plugins_dir: str | None, result_file: str, threads: int | None
) -> None:
    import os

    import torch.distributed as dist

    from scintipipe.plugins import make_plugin_manager

    if threads:
        torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank))
    cuda = str(kwargs.get("device", "cpu")).startswith("cuda")
    if cuda:
        torch.cuda.set_device(rank)
        kwargs = {**kwargs, "device": f"cuda:{rank}"}
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=nproc)
    try:
        log = (lambda message: print(message, file=sys.stderr, flush=True)) if rank == 0 else _quiet
        result = train_bundle(make_plugin_manager(plugins_dir=plugins_dir), log=log, **kwargs)
        if rank == 0:
            summary = {
                "bundle_dir": str(result.bundle_dir),
                "validation": result.validation,
                "best_epoch": result.best_epoch,
                "seconds": result.seconds,
                "failures": result.failures,
            }
            Path(result_file).write_text(json.dumps(summary, default=float))
    finally:
        dist.destroy_process_group()


def evaluate_set(model: torch.nn.Module, data: LabelledSet, device: str = "cpu") -> dict[str, Any]:
    """Full per-class report of ``model`` on ``data`` (see :mod:`scintipipe.evaluation`)."""
    from scintipipe.evaluation import classification_report

    probs = predict(model, data.inputs, device).numpy()
    return classification_report(data.targets.numpy(), probs, data.labels)


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    overall = report.get("overall", {})
    return {key: overall.get(key) for key in ("accuracy", "n") if key in overall} or {"accuracy": report.get("accuracy")}


def _count(report: Any) -> str:
    if isinstance(report, dict):
        return ", ".join(f"{k}: {len(v) if hasattr(v, '__len__') else v}" for k, v in report.items())
    return str(report)


def command_line() -> str:
    """The command that is running, for the model card.

    Rebuilt from the click context when there is one (``sys.argv`` is the test runner's or
    the host program's when ``scintipipe train`` is invoked in-process), else ``sys.argv``.
    """
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return " ".join(shlex.quote(a) for a in sys.argv)
    parts = [ctx.command_path.replace("cli ", "scintipipe ", 1) if ctx.command_path.startswith("cli ") else ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == () or value == "" or (isinstance(param, click.Option) and value == param.default and not param.required):
            continue
        if isinstance(param, click.Argument):
            parts += [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        elif isinstance(param, click.Option) and param.is_flag and isinstance(value, bool):
            opts = param.opts if value else param.secondary_opts
            if opts:
                parts.append(opts[0])
        else:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                parts += [param.opts[0], str(v)]
    return " ".join([parts[0]] + [shlex.quote(p) for p in parts[1:]])


def model_card(
    recipe: dict[str, Any],
    train: LabelledSet,
    val: LabelledSet,
    validation: dict[str, Any],
    best_epoch: int,
    seconds: float,
    data_description: str,
    init_weights: Path | None,
    init_report: Any,
    extras_note: Sequence[str] = (),
) -> str:
    """Markdown model card with provenance: command, data hash, seed, versions, results."""
    from scintipipe.evaluation import format_table

    def counts(s: LabelledSet) -> str:
        return ", ".join(f"{label} {n}" for label, n in zip(s.labels, s.class_counts(), strict=True))

    versions = "\n".join(f"| {k} | {v} |" for k, v in package_versions().items())
    lines = [
        f"# {recipe.get('name', recipe['task'])}: {recipe['task']} classifier",
        "",
        f"> **{NOT_FOR_CLINICAL_USE}**"
        if "simulat" in (data_description + recipe.get("trained_on", "")).lower()
        else "> **Not for clinical use** until validated locally.",
        "",
        f"Labels (output order): {', '.join(recipe['labels'])}.",
        f"Network: `{recipe['network']['_target_']}`; input {recipe['input_size']}.",
        "",
        "## Training data",
        f"- Description: {data_description or 'not given'}",
        f"- Training views: {len(train)} ({counts(train)})",
        f"- Validation views: {len(val)} ({counts(val)})",
        f"- Data hash (SHA-256 over all labelled files and their labels, training and validation): `{train.data_hash}`",
        f"- Files left out: {len(train.failures) + len(val.failures)}",
        *(f"- Extra training data (training fold only, never validation): {note}" for note in extras_note),
        "",
        "## Provenance",
        f"- Command: `{command_line()}`",
        f"- Seed: {recipe['seed']}; epochs: {recipe['epochs']} (best: {best_epoch + 1}); training time {seconds:.0f} s",
        f"- Initial weights: {init_weights or 'random (no pretrained weights)'}",
        "- Recipe: `configs/recipe.json`",
        "",
        "| package | version |",
        "|---|---|",
        versions,
        "",
        "## Validation split (held out from the training data; picks the best epoch)",
        "",
        format_table(validation),
        "",
    ]
    return "\n".join(lines)
