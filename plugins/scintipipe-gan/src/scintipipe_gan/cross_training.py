"""The two-phase schedule of the cross-feature ResNet: single-feature images, then the cross-training set.

Seed 004 trains its ResNet on single-feature images first, then retrains it on a
"cross-training set" that mixes features across images. Both phases are ordinary recipes
the plugin registers (``uptake4_cross_feature_single``, ``uptake4_cross_feature_cross``),
so each is one ``scintipipe train``; :func:`train_cross_feature` runs the two in a row:

1. phase one writes a complete bundle to ``OUT/single-feature/`` (cross paths held at zero);
2. phase two starts from its weights (``init_weights``), learns the cross paths on mixed
   images and writes the final bundle to ``OUT``.

Both phases use the same labelled files, seed and validation fraction, so the real
validation fold is the same one, and mixed images are made inside training batches only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SINGLE_FEATURE_RECIPE = "uptake4_cross_feature_single"
CROSS_TRAINING_RECIPE = "uptake4_cross_feature_cross"
#: the phase-one bundle, inside the final one
SINGLE_FEATURE_FOLDER = "single-feature"


@dataclass
class TwoPhaseResult:
    """The two bundles :func:`train_cross_feature` trained (``TrainResult`` of each)."""

    single_feature: Any
    cross_training: Any


def phase_recipes(
    single: str | Path | dict[str, Any] = SINGLE_FEATURE_RECIPE,
    cross: str | Path | dict[str, Any] = CROSS_TRAINING_RECIPE,
    pm: Any = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two phases' recipes (names, files or completed recipes), checked to share data, seed and validation fold.

    Raises:
        ValueError: the phases differ in task, labels, preprocessing, seed or validation fraction.
    """
    from scintipipe.api import load_recipe

    first = dict(single) if isinstance(single, dict) else load_recipe(single, pm)
    second = dict(cross) if isinstance(cross, dict) else load_recipe(cross, pm)
    for key in ("task", "labels", "input_size", "scan_transforms", "seed", "val_fraction"):
        if first.get(key) != second.get(key):
            raise ValueError(f"the two phases must share {key!r}: {first.get(key)!r} in phase one, {second.get(key)!r} in phase two")
    return first, second


def train_cross_feature(
    pm: Any,
    data_dir: Path | None,
    labels_csv: Path,
    out_dir: Path,
    single: str | Path | dict[str, Any] = SINGLE_FEATURE_RECIPE,
    cross: str | Path | dict[str, Any] = CROSS_TRAINING_RECIPE,
    **kwargs: Any,
) -> TwoPhaseResult:
    """Train phase one into ``OUT/single-feature``, then phase two from its weights into ``OUT``.

    Args:
        pm: plugin manager.
        data_dir: folder the CSV's file names are relative to.
        labels_csv: ``file,label`` CSV of the real (or simulated) scans.
        out_dir: the final bundle.
        single: the phase-one recipe.
        cross: the phase-two recipe.
        **kwargs: passed to both :func:`scintipipe.api.train_bundle` calls (``device``,
            ``progress``, ``log``, ``data_description``, ...).
    """
    from scintipipe.api import train_bundle

    first, second = phase_recipes(single, cross, pm)
    out_dir = Path(out_dir)
    log = kwargs.get("log", print)
    log(f"phase 1 of 2 (single-feature images, cross paths held at zero): {first.get('name', 'recipe')} -> {out_dir / SINGLE_FEATURE_FOLDER}")
    phase_one = train_bundle(pm, first, data_dir, labels_csv, out_dir / SINGLE_FEATURE_FOLDER, **kwargs)
    log(f"phase 2 of 2 (cross-training set, from the phase-1 weights): {second.get('name', 'recipe')} -> {out_dir}")
    phase_two = train_bundle(pm, second, data_dir, labels_csv, out_dir, init_weights=phase_one.bundle_dir / "models/model.pt", **kwargs)
    return TwoPhaseResult(phase_one, phase_two)
