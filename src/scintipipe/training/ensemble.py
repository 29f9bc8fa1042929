"""Seed ensembles: one recipe trained several times, shipped as one bundle.

A recipe with ``"ensemble_seeds": [0, 1, 2]`` trains one member per seed (each a complete
bundle under ``OUT/members/seed-<n>``, with its own validation split, since the split
follows the seed), then :func:`write_ensemble_bundle` writes ``OUT`` as a
:class:`scintipipe.networks.ProbabilityEnsemble` of them. A member that has already
finished (its ``configs/metadata.json`` records a validation result) is reused, so an
interrupted ensemble picks up where it stopped.

The ensemble has no validation figure of its own: every member's validation split holds
scans the other members trained on. Measure it on held-out data (``scintipipe evaluate``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from scintipipe.bundle import Bundle
from scintipipe.bundle_writer import DEFAULT_IMPORTS, bundle_metadata, package_versions, write_bundle
from scintipipe.errors import ScintipipeError

ENSEMBLE_NETWORK = "scintipipe.networks.ProbabilityEnsemble"


class EnsembleError(ScintipipeError):
    """Bundles that cannot be combined, or an ensemble recipe that cannot be trained."""


def ensemble_seeds(recipe: dict[str, Any]) -> list[int]:
    """The recipe's ``ensemble_seeds`` (empty: one network).

    Raises:
        EnsembleError: not a list of distinct integers.
    """
    seeds = recipe.get("ensemble_seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds):
        raise EnsembleError(f"ensemble_seeds must be a list of distinct integers, not {seeds!r}")
    return list(seeds)


def member_recipe(recipe: dict[str, Any], seed: int) -> dict[str, Any]:
    """The single-network recipe of the member trained with ``seed``."""
    member = {key: value for key, value in recipe.items() if key != "ensemble_seeds"}
    member["seed"] = seed
    return member


def member_dir(out_dir: Path, seed: int) -> Path:
    """Where the member trained with ``seed`` is written."""
    return Path(out_dir) / "members" / f"seed-{seed}"


def finished_member(folder: Path) -> bool:
    """Whether ``folder`` holds a member whose training finished (its metadata has a validation result)."""
    path = Path(folder) / "configs/metadata.json"
    if not path.is_file() or not (Path(folder) / "models/model.pt").is_file():
        return False
    try:
        return "validation" in json.loads(path.read_text()).get("eval_metrics", {})
    except json.JSONDecodeError:
        return False


def train_ensemble(
    train_one: Callable[[dict[str, Any], Path], Any], recipe: dict[str, Any], out_dir: Path, log: Callable[[str], None] = print
) -> list[Any]:
    """Train (or reuse) every member of an ensemble recipe, then write the ensemble bundle.

    Args:
        train_one: trains one member: ``train_one(member_recipe, member_folder)`` returns
            its :class:`scintipipe.training.train.TrainResult`.
        recipe: the ensemble recipe (with ``ensemble_seeds``).
        out_dir: the ensemble bundle folder; members go under ``members/``.
        log: where progress lines go.

    Returns:
        Each member's training result (``None`` for a member reused as it was).
    """
    seeds = ensemble_seeds(recipe)
    results: list[Any] = []
    for number, seed in enumerate(seeds, 1):
        folder = member_dir(out_dir, seed)
        if finished_member(folder):
            log(f"ensemble member {number}/{len(seeds)} (seed {seed}): reusing the finished member in {folder}")
            results.append(None)
            continue
        log(f"ensemble member {number}/{len(seeds)} (seed {seed}): training into {folder}")
        results.append(train_one(member_recipe(recipe, seed), folder))
    write_ensemble_bundle([member_dir(out_dir, seed) for seed in seeds], out_dir, recipe=recipe)
    return results


def _check_members(bundles: Sequence[Bundle]) -> None:
    first = bundles[0]
    for other in bundles[1:]:
        for what, mine, theirs in (
            ("labels", first.labels, other.labels),
            ("input shape", first.input_shape, other.input_shape),
            ("scan_transforms", first.config.get("scan_transforms"), other.config.get("scan_transforms")),
        ):
            if mine != theirs:
                raise EnsembleError(
                    f"{other.root} has other {what} than {first.root} ({theirs!r} against {mine!r}): members must read the same inputs and give the same labels"
                )


def write_ensemble_bundle(members: Sequence[Path], out_dir: Path, recipe: dict[str, Any] | None = None, version: str = "0.1.0") -> Path:
    """Combine trained bundles into one :class:`~scintipipe.networks.ProbabilityEnsemble` bundle.

    The members must share labels, input shape and ``scan_transforms``. Their network
    configs and weights are copied in (weights under ``members.<i>.``); the metadata and
    the first member's ``imports`` and explain settings are kept, the explain layer
    prefixed with ``members.0.``. ``configs/gate.json`` is written without the learned
    score or temperature (``scintipipe gate fit`` refits them for the ensemble); the first
    member's radionuclides are kept.

    Args:
        members: the member bundle folders, in order.
        out_dir: the ensemble bundle folder (may contain the members' folder).
        recipe: kept as ``configs/recipe.json`` (default: the first member's, with
            ``ensemble_seeds`` of the members' seeds).
        version: the bundle version.

    Raises:
        EnsembleError: no members, or members that differ in what they read or give.
    """
    if not members:
        raise EnsembleError("an ensemble needs at least one member bundle")
    bundles = [Bundle(Path(folder)) for folder in members]
    _check_members(bundles)
    first = bundles[0]
    state: dict[str, torch.Tensor] = {}
    network_defs = []
    member_notes = []
    for index, bundle in enumerate(bundles):
        network_defs.append(bundle.config.get("network_def"))
        weights = bundle.root / "models/model.pt"
        for key, value in torch.load(weights, map_location="cpu", weights_only=True).items():
            state[f"members.{index}.{key}"] = value
        member_recipe_path = bundle.root / "configs/recipe.json"
        member_seed = json.loads(member_recipe_path.read_text()).get("seed") if member_recipe_path.is_file() else None
        validation = bundle.metadata.get("eval_metrics", {}).get("validation", {})
        member_notes.append({"seed": member_seed, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "validation": validation})
    if recipe is None:
        first_recipe = first.root / "configs/recipe.json"
        recipe = json.loads(first_recipe.read_text()) if first_recipe.is_file() else {}
        recipe["ensemble_seeds"] = [note["seed"] for note in member_notes]
    fields = first.metadata.get("scintipipe", {})
    name = str((recipe or {}).get("name") or first.metadata.get("name") or first.name)  # a member's folder name is seed-<n>
    explain_layer = fields.get("explain_layer")
    metadata = bundle_metadata(
        name=name,
        task=first.task,
        labels=first.labels,
        input_shape=first.input_shape,
        description=f"Mean-probability ensemble of {len(bundles)} training runs. {first.description}",
        version=version,
        network=ENSEMBLE_NETWORK,
        explain_layer=f"members.0.{explain_layer}" if explain_layer else None,
        explain_method=fields.get("explain_method"),
        unknown_scale_fovs_mm=fields.get("unknown_scale_fovs_mm"),
        zoom_factors=fields.get("zoom_factors"),
        zoom_averaging_below=fields.get("zoom_averaging_below"),
        clinical_use=bool(fields.get("clinical_use", False)),
        trained_on=str(fields.get("trained_on", "")),
        eval_metrics={"members": member_notes},
    )
    imports = [line for line in first.config.get("imports", []) if line not in DEFAULT_IMPORTS]
    gate_path = first.root / "configs/gate.json"
    radionuclides = json.loads(gate_path.read_text()).get("radionuclides") if gate_path.is_file() else None
    return write_bundle(
        out_dir,
        state_dict=state,
        metadata=metadata,
        network_def={"_target_": ENSEMBLE_NETWORK, "members": network_defs},
        scan_transforms=first.config.get("scan_transforms"),
        model_card=ensemble_card(name, members, member_notes, recipe),
        imports=imports,
        extra_configs={"recipe": recipe} if recipe else None,
        gate_settings={"radionuclides": radionuclides} if radionuclides else None,
    )


def ensemble_card(name: str, members: Sequence[Path], notes: Sequence[dict[str, Any]], recipe: dict[str, Any]) -> str:
    """The ensemble's model card: what it combines and where each member's own card is."""
    rows = []
    for folder, note in zip(members, notes, strict=True):
        accuracy = note["validation"].get("accuracy") if isinstance(note["validation"], dict) else None
        if isinstance(accuracy, dict):  # a Wilson interval (scintipipe.evaluation)
            accuracy = accuracy.get("value")
        shown = f"{100 * accuracy:.1f} %" if isinstance(accuracy, (int, float)) else "-"
        rows.append(f"| {note['seed']} | `{Path(folder).name}` | {shown} | `{note['weights_sha256'][:12]}` |")
    from scintipipe.training.train import command_line  # here: training.train imports this module

    versions = "\n".join(f"| {k} | {v} |" for k, v in package_versions().items())
    return "\n".join(
        [
            f"# {name}: mean-probability ensemble of {len(members)} training runs",
            "",
            f"Each member is `{recipe.get('network', {}).get('_target_', 'the recipe network')}` trained by the same recipe and data with its own seed;",
            "the bundle averages their softmax probabilities (`scintipipe.networks.ProbabilityEnsemble`).",
            "Each member's validation split holds scans the other members trained on, so the ensemble",
            "has no validation figure of its own: measure it on held-out data with `scintipipe evaluate`.",
            "",
            "## Training data",
            f"- Description: {recipe.get('trained_on') or 'not given'}",
            "- Each member's card (training and validation views, data hash, best epoch) is its own `docs/README.md`.",
            "",
            "## Provenance",
            f"- Command: `{command_line()}`",
            f"- Seeds: {', '.join(str(note['seed']) for note in notes)}; recipe: `configs/recipe.json`",
            "",
            "| seed | member | validation accuracy (its own split) | weights (SHA-256) |",
            "|---|---|---|---|",
            *rows,
            "",
            "| package | version |",
            "|---|---|",
            versions,
            "",
        ]
    )
