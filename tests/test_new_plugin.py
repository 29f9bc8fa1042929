"""``scintipipe new-plugin``: the plugin it writes installs, passes its own tests with no core
edit, and runs through ``scintipipe run``; bad arguments are refused, naming the problem.

The plugin is installed with ``pip install --target`` into a temporary folder and found
through ``PYTHONPATH`` in subprocesses, so the shared environment is left as it was.
"""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scintipipe.testing import run_cli

LABELS = ("euthyroid", "diffuse_goitre", "nodular_goitre")


def plugin_env(site: Path) -> dict[str, str]:
    """This environment with the plugin's install folder first on the path and one thread."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCINTIPIPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def made_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``scintipipe new-plugin goitre --labels ...`` in a temporary folder."""
    out = tmp_path_factory.mktemp("new-plugin")
    result = run_cli("new-plugin", "goitre", "--labels", ",".join(LABELS), "--out", out)
    assert "scintipipe-goitre" in result.output
    return out / "scintipipe-goitre"


def test_new_plugin_writes_a_package_that_imports_only_the_plugin_api(made_plugin: Path) -> None:
    package = made_plugin / "src/scintipipe_goitre"
    for name in ("pyproject.toml", "README.md", "LICENSE", "tests/test_plugin.py", "tests/test_run.py"):
        assert (made_plugin / name).is_file(), name
    for name in (
        "__init__.py",
        "plugin.py",
        "simulator.py",
        "bundle/configs/metadata.json",
        "bundle/configs/recipe.json",
        "bundle/models/model.pt",
        "bundle/LICENSE",
    ):
        assert (package / name).is_file(), name
    pyproject = (made_plugin / "pyproject.toml").read_text()
    assert '[project.entry-points.scintipipe]\ngoitre = "scintipipe_goitre.plugin"' in pyproject
    assert "${" not in pyproject and "Apache License" in (made_plugin / "LICENSE").read_text()
    for path in [*package.glob("*.py"), *(made_plugin / "tests").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in modules:
                assert module == "scintipipe.api" or not (module == "scintipipe" or module.startswith("scintipipe.")), f"{path.name} imports {module}"


def test_made_plugin_installs_passes_its_own_tests_and_runs(made_plugin: Path, tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the plugin is built without build isolation; hatchling comes with scintipipe[test]")
    site = tmp_path / "site"
    env = plugin_env(site)
    run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(made_plugin)],
        tmp_path,
        env,
    )
    assert (site / "scintipipe_goitre/bundle/models/model.pt").is_file()

    done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"], made_plugin, env, timeout=600)
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]

    scans, results = tmp_path / "scans", tmp_path / "results"
    simulate = ["simulate", "--task", "goitre", "--n", "1", "--seed", "3", "--out", str(scans), "--no-progress"]
    classify = ["run", "--bundle", "goitre", str(scans), "--out", str(results), "--no-explain", "--no-report"]
    # both commands in one interpreter (PyTorch is imported once), through the command line's own entry
    script = f"from scintipipe.cli import cli\nfor argv in {[simulate, classify]!r}:\n    if cli(argv, prog_name='scintipipe', standalone_mode=False):\n        raise SystemExit(f'scintipipe {{argv[0]}} failed')\n"
    run([sys.executable, "-c", script], tmp_path, env)
    with (results / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["label"] in LABELS
    assert {f"prob_{label}" for label in LABELS} <= set(rows[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Goitre!"], "'Goitre!' is not a plugin name"),
        (["bone--scan"], "is not a plugin name"),
        (["goitre", "--task", "Goitre"], "'Goitre' is not a task name"),
        (["goitre", "--labels", "small"], "two or more labels"),
        (["goitre", "--labels", "small,Large"], "'Large': a label is lowercase"),
        (["goitre", "--labels", "small,small"], "'small' given more than once"),
        (["uptake4"], "task 'uptake4' is already registered by plugin 'scintipipe.builtin.uptake4'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("new-plugin", *args, "--out", tmp_path, expect_exit=2)
    assert message in " ".join(result.output.split())
    assert not any(tmp_path.iterdir()), "nothing is written for a refused command"


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "scintipipe-goitre").mkdir()
    (tmp_path / "scintipipe-goitre/keep.txt").write_text("mine")
    result = run_cli("new-plugin", "goitre", "--out", tmp_path, expect_exit=2)
    assert "already exists" in result.output
    assert [p.name for p in (tmp_path / "scintipipe-goitre").iterdir()] == ["keep.txt"]


def test_help_shows_an_example() -> None:
    output = run_cli("new-plugin", "--help").output
    assert "scintipipe new-plugin goitre --labels" in output and "--task" in output and "--out" in output
