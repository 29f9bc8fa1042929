"""Test helpers for scintipipe and its plugins, and a pytest plugin (like pytest's ``pytester``).

Installed with scintipipe and loaded by pytest through the ``pytest11`` entry point, so a
plugin's tests get, with no conftest of their own:

``scintipipe_clean_env`` (autouse)
    Unsets the ``SCINTIPIPE_*`` variables that choose plugins (a developer's shell setting
    would otherwise change what a test loads).
``tiny_bundle``
    A shape-only bundle folder (random weights, 32x32 input, uptake4's labels): for testing
    the machinery, never what a label says.
``scintipipe_cli``
    :func:`run_cli`, to run ``scintipipe ARGS`` in-process.

Example (a plugin's ``tests/test_cli.py``)::

    def test_my_task_is_listed(scintipipe_cli):
        assert "my_task" in scintipipe_cli("bundles").output

    def test_run_on_a_folder(scintipipe_cli, tiny_bundle, tmp_path):
        scintipipe_cli("run", "--bundle", tiny_bundle, "scans/", "--out", tmp_path)

Importing this module loads neither torch nor MONAI (pytest imports it at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from click.testing import Result

#: environment variables that change which plugins load (see :mod:`scintipipe.plugins`)
PLUGIN_ENV_VARS = ("SCINTIPIPE_PLUGINS", "SCINTIPIPE_DISABLE_PLUGINS", "SCINTIPIPE_TRACE_HOOKS", "SCINTIPIPE_PLUGINS_DIR")

#: the labels of the shape-only bundle
TINY_BUNDLE_LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


def run_cli(
    *args: str | PathLike[str], expect_exit: int | None = 0, catch_exceptions: bool = False, env: Mapping[str, str | None] | None = None
) -> Result:
    """Run ``scintipipe ARGS`` in this process, as a test does, with the installed plugins.

    Args:
        *args: the command line after ``scintipipe`` (paths are turned into strings).
        expect_exit: the exit code the run must end with (an ``AssertionError`` showing the
            output otherwise); ``None`` accepts any.
        catch_exceptions: turn an unexpected exception into exit code 1 instead of raising it.
        env: environment variables to set (``None`` values unset them) for the run only.

    Returns:
        click's :class:`~click.testing.Result`: ``exit_code``, ``output``, ``exception``.
    """
    from click.testing import CliRunner

    from scintipipe.cli import cli

    argv = [str(arg) for arg in args]
    result = CliRunner().invoke(cli, argv, catch_exceptions=catch_exceptions, env=env)
    if expect_exit is not None and result.exit_code != expect_exit:
        raise AssertionError(f"scintipipe {' '.join(argv)} exited with {result.exit_code}, expected {expect_exit}:\n{result.output}")
    return result


def write_small_recipe(folder: Path, name: str, channels: list[int], size: int = 32, **overrides: Any) -> Path:
    """Write ``folder/NAME.json``: a one-epoch uptake4 recipe of a small MONAI ``Classifier``.

    For tests and benchmarks that train for real but fast (cross-validation, sweeps,
    executors): the scans are resized to ``size`` x ``size`` and scaled to [0, 1].

    Args:
        folder: where to write the recipe.
        name: the recipe's name (and the file's).
        channels: the Classifier's two channel counts (strides 2, 2).
        size: the network's input side in pixels.
        **overrides: recipe keys to set, replacing the defaults (``epochs`` 1, ``batch_size``
            4, ``val_fraction`` 0.34, ``seed``...).

    Returns:
        The recipe file.
    """
    import json

    recipe = {
        "name": name,
        "task": "uptake4",
        "labels": TINY_BUNDLE_LABELS,
        "network": {"_target_": "monai.networks.nets.Classifier", "in_shape": [1, size, size], "classes": 4, "channels": channels, "strides": [2, 2]},
        "input_size": [size, size],
        "scan_transforms": [
            {"_target_": "Resized", "keys": "image", "spatial_size": [size, size], "mode": "area"},
            {"_target_": "ScaleIntensityd", "keys": "image"},
        ],
        "epochs": 1,
        "batch_size": 4,
        "val_fraction": 0.34,
        **overrides,
    }
    path = Path(folder) / f"{name}.json"
    path.write_text(json.dumps(recipe))
    return path


def make_tiny_bundle(folder: Path, labels: list[str] | None = None, explain: bool = True) -> Path:
    """Write a shape-only bundle (random weights, 32x32 input) for testing the machinery.

    Args:
        folder: where to write it (created).
        labels: its labels (default uptake4's four).
        explain: declare a Grad-CAM layer.

    Returns:
        ``folder``.
    """
    import torch
    from monai.networks.nets import Classifier

    from scintipipe.bundle_writer import bundle_metadata, write_bundle

    labels = labels or TINY_BUNDLE_LABELS
    network_def = {
        "_target_": "monai.networks.nets.Classifier",
        "in_shape": [1, 32, 32],
        "classes": len(labels),
        "channels": [4, 8],
        "strides": [2, 2],
    }
    torch.manual_seed(0)
    net = Classifier(in_shape=(1, 32, 32), classes=len(labels), channels=(4, 8), strides=(2, 2))
    metadata = bundle_metadata(
        name="tiny",
        task="uptake4",
        labels=labels,
        input_shape=[32, 32],
        description="Shape-only test bundle with random weights; its outputs mean nothing.",
        network="monai Classifier (random weights)",
        explain_layer="net.layer_1" if explain else None,
    )
    scan_transforms: list[dict[str, Any]] = [
        {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"},
        {"_target_": "Resized", "keys": "image", "spatial_size": [32, 32], "mode": "area"},
        {"_target_": "ScaleIntensityd", "keys": "image"},
    ]
    return write_bundle(
        folder,
        state_dict=net.state_dict(),
        metadata=metadata,
        network_def=network_def,
        scan_transforms=scan_transforms,
        model_card="# tiny\nShape-only test bundle.\n",
    )


@pytest.fixture(autouse=True)
def scintipipe_clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the ``SCINTIPIPE_*`` plugin-selection variables for the test."""
    for name in PLUGIN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shape-only bundle folder (random weights): its outputs mean nothing."""
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture
def scintipipe_cli() -> Callable[..., Result]:
    """:func:`run_cli`: run ``scintipipe ARGS`` in-process."""
    return run_cli
