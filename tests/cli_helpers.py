"""Helpers shared by the tests that drive the ``scintipipe`` command line, and the inputs they give it."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from scintipipe.cli import cli
from scintipipe.testing import run_cli


def run(args: list[str]) -> tuple[int, str]:
    """Invoke ``scintipipe ARGS`` in-process; return the exit code and the output."""
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def run_with_plugins(plugins_dir: Path, bundle: Path, sources: Iterable[Path], out: Path, *options: str) -> tuple[int, str]:
    """Invoke ``scintipipe --plugins-dir PLUGINS_DIR run --bundle BUNDLE SOURCES --out OUT OPTIONS`` in-process.

    Args:
        plugins_dir: the folder of one-file plugins to load.
        bundle: the bundle folder to run.
        sources: the files and folders to classify.
        out: the results folder.
        *options: more options of ``scintipipe run`` (``--no-explain``...).

    Returns:
        The exit code and the output, as :func:`run` returns them.
    """
    return run(["--plugins-dir", str(plugins_dir), "run", "--bundle", str(bundle), *map(str, sources), "--out", str(out), *options])


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts."""
    with path.open() as handle:
        return list(csv.DictReader(handle))


def simulate(out: Path, *, n: int, seed: int, center: str, task: str = "uptake4") -> Path:
    """Simulate a labelled set with ``scintipipe simulate`` (classes balanced); fails the test if it fails.

    Args:
        out: the folder to write (the scans and ``labels.csv``).
        n: how many cases.
        seed: the simulator's seed.
        center: the simulated centre (``a``, ``b``, ``randomised``...).
        task: the task to simulate.

    Returns:
        ``out``.
    """
    run_cli(
        "simulate", "--task", task, "--n", str(n), "--seed", str(seed), "--center", center, "--class-mix", "balanced", "--out", out, "--no-progress"
    )
    return out


def evaluate_splits(bundle: str | Path, recipes: Iterable[str | Path], labelled: Path, out: Path, *options: str) -> str:
    """Run ``scintipipe evaluate`` of ``recipes`` on 2 random splits (test size 0.34) of a labelled folder.

    Args:
        bundle: the ``-b`` bundle (or recipe) the evaluation is for.
        recipes: the recipes to train and compare on every split.
        labelled: the folder of scans and its ``labels.csv``.
        out: the results folder.
        *options: more options of ``scintipipe evaluate`` (``--threads 1``, ``--workers 2``...).

    Returns:
        The command's output (the test fails unless it exits with 0).
    """
    recipe_args = [arg for recipe in recipes for arg in ("--recipe", recipe)]
    args = ["evaluate", "-b", bundle, *recipe_args, "--labels", labelled / "labels.csv", "--splits", "2", "--test-size", "0.34"]
    return run_cli(*args, "--out", out, labelled, "--no-progress", *options).output


def blob(seed: int, size: int = 64) -> np.ndarray:
    """Poisson counts of a ``size x size`` scan: one bright blob, shifted ``seed`` pixels right of the centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    lam = 2 + 40 * np.exp(-((yy - size / 2) ** 2 + (xx - size / 2 - seed) ** 2) / 60)
    return rng.poisson(lam)


def write_raw(path: Path, counts: np.ndarray, pixel_um: int = 2210) -> Path:
    """Write ``counts`` in the raw-camera format of the docs' plugin (a rows, columns, pixel-size header); return ``path``."""
    header = np.array([counts.shape[0], counts.shape[1], pixel_um], dtype="<u2")
    np.concatenate([header, counts.astype("<u2").ravel()]).tofile(path)
    return path


def plugins_with_camera(tmp_path: Path, docs_plugin_dir: Path, name: str, code: str) -> Path:
    """A plugins folder with the docs' raw-camera loader and one more one-file plugin ``name``.

    Args:
        tmp_path: where to make the ``plugins`` folder.
        docs_plugin_dir: the ``docs_plugin_dir`` fixture's folder (holds ``raw_camera.py``).
        name: the extra plugin's module name.
        code: the extra plugin's source (dedented before it is written).

    Returns:
        The new ``tmp_path/plugins`` folder.
    """
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "raw_camera.py").write_text((docs_plugin_dir / "raw_camera.py").read_text())
    (plugins / f"{name}.py").write_text(textwrap.dedent(code))
    return plugins
