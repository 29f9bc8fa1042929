"""``RecipeTrainer``: ``scintipipe train`` as the trainer of a bundle's ``configs/train.json``.

MONAI's bundle runner (``python -m monai.bundle run --config_file configs/train.json``)
builds a :class:`RecipeTrainer` from the config and calls :meth:`RecipeTrainer.run`. That is
:func:`scintipipe.training.train.train_bundle` with the bundle's own ``configs/recipe.json``:
the scans read through the plugins' loaders, the same loop and the same new bundle folder
as ``scintipipe train --bundle BUNDLE``.

``configs/multi_gpu_train.json`` starts ``torch.distributed`` before it (gloo on CPU, NCCL
with one GPU per rank) and sets ``distributed``. The loop, seeing the process group, wraps
the network in ``DistributedDataParallel`` and gives each rank its share of every epoch
through MONAI's ``DistributedSampler``. Validation probabilities are gathered over the
ranks; only rank 0 logs and writes. This is the code path of
``torchrun -m scintipipe train``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from scintipipe.errors import ScintipipeError


class DistributedSetupError(ScintipipeError):
    """``train.json`` and the launch disagree: one config under torchrun, or ``multi_gpu_train.json`` without it."""


def bundle_recipe(recipe_file: str | Path, epochs: int | None = None, seed: int | None = None, data_description: str = "") -> dict[str, Any]:
    """A bundle's recipe with the overrides ``scintipipe train`` takes as ``--epochs``, ``--seed`` and ``--data-description``.

    Args:
        recipe_file: the bundle's ``configs/recipe.json``.
        epochs: replaces the recipe's epochs (``None``: keep them).
        seed: replaces the recipe's seed (``None``: keep it).
        data_description: what the data is; becomes the recipe's ``trained_on`` (``""``: keep it).

    Returns:
        The completed recipe (defaults filled in).
    """
    from scintipipe.training.recipe import load_recipe

    recipe = load_recipe(Path(recipe_file))
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    if seed is not None:
        recipe["seed"] = int(seed)
    if data_description:
        recipe["trained_on"] = data_description
    return recipe


class RecipeTrainer:
    """Trains a new bundle from labelled scans with a recipe, as ``scintipipe train`` does.

    Args:
        recipe: a completed recipe (:func:`bundle_recipe`).
        dataset_dir: folder the CSV's file names are relative to.
        labels_csv: ``file,label`` CSV.
        output_dir: the new bundle folder (also holds ``logs/`` and ``checkpoint.pt``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        bundle_root: the bundle being retrained; its ``configs/gate.json`` radionuclides are
            kept, as ``scintipipe train --bundle`` keeps them (``None``: none kept).
        plugins_dir: a folder of one-file plugins to load as well.
        data_description: what the data is, for the model card.
        distributed: ``multi_gpu_train.json``'s setting: the process group must be started.
        progress: progress bars (``None``: on a terminal).
    """

    def __init__(
        self,
        recipe: dict[str, Any],
        dataset_dir: str | Path,
        labels_csv: str | Path,
        output_dir: str | Path,
        device: Any = "cpu",
        bundle_root: str | Path | None = None,
        plugins_dir: str | Path | None = None,
        data_description: str = "",
        distributed: bool = False,
        progress: bool | None = False,
    ):
        self.recipe = recipe
        self.dataset_dir = Path(dataset_dir)
        self.labels_csv = Path(labels_csv)
        self.output_dir = Path(output_dir)
        self.device = str(device)
        self.bundle_root = Path(bundle_root) if bundle_root is not None else None
        self.plugins_dir = Path(plugins_dir) if plugins_dir else None
        self.data_description = data_description
        self.distributed = distributed
        self.progress = progress

    def check_launch(self) -> None:
        """Refuse a config that does not fit how the processes were started.

        Raises:
            DistributedSetupError: ``multi_gpu_train.json`` without a started process group,
                or ``train.json`` alone in one of several torchrun processes (each would
                train alone and write the same folder).
        """
        import torch.distributed as dist

        started = dist.is_available() and dist.is_initialized()
        if self.distributed and not started:
            raise DistributedSetupError(
                "multi_gpu_train.json needs torch.distributed: launch with torchrun --nproc_per_node N -m monai.bundle run "
                "--config_file \"['configs/train.json','configs/multi_gpu_train.json']\""
            )
        if not self.distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise DistributedSetupError(
                "this process is one of several torchrun ranks: add configs/multi_gpu_train.json "
                "(--config_file \"['configs/train.json','configs/multi_gpu_train.json']\")"
            )

    def run(self) -> dict[str, Any]:
        """Train and write the new bundle (rank 0 only in a distributed run).

        Returns:
            ``{"bundle_dir", "validation", "best_epoch", "seconds", "failures"}``; on every
            rank, since validation is gathered over the ranks.
        """
        from scintipipe.bundle_writer import inherited_gate_settings
        from scintipipe.plugins import make_plugin_manager
        from scintipipe.training.loop import world
        from scintipipe.training.train import train_bundle

        self.check_launch()
        rank, _ = world()
        log = _to_stderr if rank == 0 else _quiet
        kept = inherited_gate_settings(self.bundle_root)
        result = train_bundle(
            make_plugin_manager(plugins_dir=self.plugins_dir),
            self.recipe,
            self.dataset_dir,
            self.labels_csv,
            self.output_dir,
            device=self.device,
            data_description=self.data_description,
            progress=self.progress,
            log=log,
            gate_settings=kept or None,
        )
        accuracy = result.validation.get("overall", {}).get("accuracy", {})
        value = accuracy.get("value") if isinstance(accuracy, dict) else accuracy
        log(f"bundle written to {result.bundle_dir} (best epoch {result.best_epoch + 1}, validation accuracy {value})")
        return {
            "bundle_dir": str(result.bundle_dir),
            "validation": result.validation,
            "best_epoch": result.best_epoch,
            "seconds": result.seconds,
            "failures": result.failures,
        }


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    pass
