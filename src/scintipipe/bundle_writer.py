"""Write a complete MONAI bundle folder: used by ``scintipipe train`` and by tests.

The same function writes every bundle the project makes, so shipped bundles, retrained
clinic bundles and test fixtures share one layout.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch

#: ``configs/gate.json`` keys a retrained bundle keeps from the bundle it was retrained from:
#: facts about the task's inputs. The temperature, the learned score's statistics and the
#: calibration belong to the old weights and are never copied (``scintipipe gate fit`` refits them).
INHERITED_GATE_KEYS = ("radionuclides",)

METADATA_SCHEMA_URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json"

#: the ``$import`` lines every ``inference.json`` starts with (:func:`inference_config`)
DEFAULT_IMPORTS = ("$import glob", "$import os", "$import scintipipe", "$import scintipipe.transforms")

NOT_FOR_CLINICAL_USE = "Demonstration model trained on simulated scans. Not for clinical use: it has not been validated on real patients."


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "not installed"


def package_versions() -> dict[str, str]:
    """Versions of the packages a bundle's behaviour depends on."""
    return {name: _version(name) for name in ("scintipipe", "monai", "torch", "numpy", "pydicom", "scikit-learn", "opencv-python-headless")} | {
        "python": platform.python_version()
    }


def inference_config(
    labels: Sequence[str],
    network_def: dict[str, Any],
    scan_transforms: list[dict[str, Any]],
    imports: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``inference.json`` content: what the runner needs plus a full MONAI evaluator.

    Args:
        labels: class names in output order.
        network_def: ``{"_target_": ..., **kwargs}`` of the network.
        scan_transforms: transforms on the ``"image"`` key of a loaded scan.
        imports: extra ``$import`` lines (e.g. a plugin package).

    Returns:
        A dict ready for ``json.dump``. ``python -m monai.bundle run --config_file
        configs/inference.json --dataset_dir DIR --output_dir OUT`` classifies every file
        under ``DIR`` and writes ``OUT/predictions.csv``.
    """
    return {
        "imports": [*DEFAULT_IMPORTS, *imports],
        "bundle_root": ".",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "ckpt_path": "$os.path.join(@bundle_root, 'models', 'model.pt')",
        "dataset_dir": "$os.path.join(@bundle_root, 'docs', 'examples')",
        "output_dir": "./eval",
        "labels": list(labels),
        "network_def": network_def,
        "network": "$@network_def.to(@device)",
        "scan_transforms": scan_transforms,
        "datalist": "$[{'image': f} for f in scintipipe.transforms.list_scans(@dataset_dir)]",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": "$[scintipipe.transforms.LoadScand(keys='image')] + @scan_transforms + [scintipipe.transforms.CollatableMetad(keys='image')]",
        },
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 32, "shuffle": False, "num_workers": 0},
        "inferer": {"_target_": "SimpleInferer"},
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {"_target_": "scintipipe.transforms.SavePredictionsd", "keys": "pred", "labels": "@labels", "output_dir": "@output_dir"},
            ],
        },
        "handlers": [
            {"_target_": "CheckpointLoader", "load_path": "@ckpt_path", "load_dict": {"model": "@network"}, "map_location": "@device"},
        ],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
            "val_handlers": "@handlers",
            "amp": False,
        },
        "initialize": ["$monai.utils.set_determinism(seed=0)"],
        "run": ["$@evaluator.run()"],
    }


def bundle_metadata(
    *,
    name: str,
    task: str,
    labels: Sequence[str],
    input_shape: Sequence[int],
    description: str,
    version: str = "0.1.0",
    changelog: dict[str, str] | None = None,
    network: str = "",
    explain_layer: str | None = None,
    explain_method: str | None = None,
    unknown_scale_fovs_mm: Sequence[float] | None = None,
    zoom_factors: Sequence[float] | None = None,
    zoom_averaging_below: float | None = None,
    clinical_use: bool = False,
    trained_on: str = "",
    eval_metrics: dict[str, Any] | None = None,
    authors: str = "scintipipe developers",
    training_in_progress: bool = False,
) -> dict[str, Any]:
    """The ``metadata.json`` content, valid against the shipped schema.

    ``training_in_progress`` marks the bundle ``scintipipe train`` writes before the first
    epoch (initial weights); :meth:`scintipipe.bundle.Bundle.network` refuses to load it.
    ``unknown_scale_fovs_mm`` makes pictures without pixel spacing classified at those
    assumed fields of view and averaged, ``zoom_factors`` scans with a spacing at those
    multiples of it (:mod:`scintipipe.transforms.unknown_scale`), skipping the scans whose
    top probability at the spacing as acquired reaches ``zoom_averaging_below``.
    """
    versions = package_versions()
    fields: dict[str, Any] = {"task": task, "labels": list(labels), "network": network, "clinical_use": clinical_use, "trained_on": trained_on}
    if explain_layer:
        fields["explain_layer"] = explain_layer
    if explain_method:
        fields["explain_method"] = explain_method
    if unknown_scale_fovs_mm:
        fields["unknown_scale_fovs_mm"] = [float(f) for f in unknown_scale_fovs_mm]
    if zoom_factors:
        fields["zoom_factors"] = [float(f) for f in zoom_factors]
    if zoom_averaging_below is not None:
        fields["zoom_averaging_below"] = float(zoom_averaging_below)
    if training_in_progress:
        fields["training_in_progress"] = True
    return {
        "schema": METADATA_SCHEMA_URL,
        "version": version,
        "changelog": changelog or {version: "initial version"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "optional_packages_version": {k: v for k, v in versions.items() if k not in ("monai", "torch", "numpy", "python")},
        "name": name,
        "task": f"{task}: classify planar thyroid scintigrams into {', '.join(labels)}",
        "description": description,
        "authors": authors,
        "copyright": "Copyright (c) scintipipe developers",
        "data_type": "dicom",
        "intended_use": "Research and demonstration only." if not clinical_use else "See the model card.",
        "eval_metrics": eval_metrics or {},
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "NM",
                    "num_channels": 1,
                    "spatial_shape": list(input_shape),
                    "dtype": "float32",
                    "value_range": [0, None],
                    "is_patch_data": False,
                    "channel_def": {"0": "counts, normalised"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": len(labels),
                    "spatial_shape": [1],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {str(i): label for i, label in enumerate(labels)},
                }
            },
        },
        "scintipipe": fields,
    }


def inherited_gate_settings(base_root: str | Path | None) -> dict[str, Any]:
    """The ``configs/gate.json`` settings a bundle retrained from ``base_root`` keeps (:data:`INHERITED_GATE_KEYS`).

    Args:
        base_root: the folder of the bundle being retrained (``None``, or a folder without
            ``configs/gate.json``: nothing is kept).

    Raises:
        ValueError: the base's ``configs/gate.json`` is not valid JSON.

    Example:
        >>> inherited_gate_settings(None)
        {}
    """
    if base_root is None:
        return {}
    path = Path(base_root) / "configs/gate.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from exc
    return {key: data[key] for key in INHERITED_GATE_KEYS if data.get(key)}


def write_bundle(
    out_dir: str | Path,
    *,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    network_def: dict[str, Any],
    scan_transforms: list[dict[str, Any]],
    model_card: str,
    imports: Sequence[str] = (),
    license_text: str | None = None,
    extra_configs: dict[str, Any] | None = None,
    gate_settings: dict[str, Any] | None = None,
) -> Path:
    """Write a complete bundle folder and return its path.

    The weights are new, so gate statistics fitted to other weights are not left behind:
    ``configs/gate.json`` is written from ``gate_settings`` alone (removed when there are
    none) and an old ``models/ood.pt`` is removed. Fit the learned gate and the temperature
    for the new weights with ``scintipipe gate fit``.

    Args:
        out_dir: the bundle folder to create (existing files are overwritten).
        state_dict: the trained network's weights.
        metadata: from :func:`bundle_metadata`.
        network_def: ``{"_target_": ..., **kwargs}``.
        scan_transforms: transforms applied to a loaded scan's ``"image"``.
        model_card: Markdown for ``docs/README.md``.
        imports: extra ``$import`` lines for ``inference.json``.
        license_text: ``LICENSE`` content; defaults to the project's Apache-2.0 notice.
        extra_configs: more ``configs/<name>.json`` files, e.g. ``{"recipe": {...}}``.
        gate_settings: ``configs/gate.json`` content, e.g. the radionuclides of the bundle it
            was retrained from (:func:`inherited_gate_settings`).
    """
    root = Path(out_dir)
    for sub in ("configs", "models", "docs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    labels = metadata["scintipipe"]["labels"]
    (root / "configs/metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    config = inference_config(labels, network_def, scan_transforms, imports)
    (root / "configs/inference.json").write_text(json.dumps(config, indent=2) + "\n")
    for config_name, content in (extra_configs or {}).items():
        (root / "configs" / f"{config_name}.json").write_text(json.dumps(content, indent=2) + "\n")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, root / "models/model.pt")
    gate = gate_settings or (extra_configs or {}).get("gate")
    if gate_settings:
        (root / "configs/gate.json").write_text(json.dumps(gate_settings, indent=2) + "\n")
    elif gate is None:
        (root / "configs/gate.json").unlink(missing_ok=True)
    if not (gate and gate.get("ood")):
        (root / "models/ood.pt").unlink(missing_ok=True)
    (root / "docs/README.md").write_text(model_card)
    (root / "LICENSE").write_text(license_text or DEFAULT_LICENSE)
    return root


DEFAULT_LICENSE = """Copyright (c) scintipipe developers

Licensed under the Apache License, Version 2.0 (the "License"); you may not use these
files except in compliance with the License. You may obtain a copy of the License at
http://www.apache.org/licenses/LICENSE-2.0. Unless required by applicable law or agreed to
in writing, software distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.

The weights in models/ were trained on simulated scintigrams. They are not a medical device
and are not for clinical use.
"""
