"""``scintipipe.api``, the plugin API: every name resolves, importing it stays light, and the
shipped plugins import nothing else from ``scintipipe``."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import scintipipe.api as api

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
#: a plugin's own packages may be imported freely
OWN_PACKAGES = ("scintipipe_remnant", "scintipipe_disease")


def test_all_lists_exactly_the_exported_names() -> None:
    assert len(api.__all__) == len(set(api.__all__))
    assert set(api.__all__) == set(api._EXPORTS)
    assert set(api.__all__) <= set(dir(api))


@pytest.mark.parametrize("name", api.__all__)
def test_every_name_resolves_to_its_home(name: str) -> None:
    module, _, attribute = api._EXPORTS[name].partition(":")
    value = getattr(api, name)
    assert value is getattr(importlib.import_module(module), attribute)
    assert value is api.__dict__[name]  # kept after the first look-up


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Pipeline'"):
        api.Pipeline  # noqa: B018  (the attribute look-up is what raises)
    with pytest.raises(ImportError):
        exec("from scintipipe.api import no_such_name", {})


def test_the_names_the_brief_promises_are_there() -> None:
    for name in (
        "hookimpl",
        "ScanError",
        "NotAnImage",
        "Bundle",
        "make_scan",
        "Refusal",
        "TaskRegister",
        "CommandRegister",
        "SimulatorRegister",
        "TaskSimulator",
        "SimulatedCase",
        "ArrayTransform",
        "ArrayTransformd",
        "parse_class_mix",
        "run_cli",
    ):
        assert name in api.__all__, name
    assert api.hookimpl is importlib.import_module("scintipipe").hookimpl


def test_importing_the_api_loads_neither_torch_nor_monai() -> None:
    """Plugins are imported when the CLI starts, so ``import scintipipe.api`` (and the
    ``hookimpl`` every plugin takes from it) must stay light. A fresh interpreter, because
    this test process has long imported both."""
    code = (
        "import json, sys\n"
        "import scintipipe.api\n"
        "from scintipipe.api import hookimpl, parse_class_mix, ScanError, NotAnImage, TaskRegister\n"
        "print(json.dumps(sorted(m for m in ('torch', 'monai') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` statement in ``path`` names (strings
    and comments do not count)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "scintipipe":  # from scintipipe import api / hookimpl / evaluation
                found += [(node.lineno, f"scintipipe.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return sorted(found)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        '"""from scintipipe.scan import make_scan"""\n'
        "# import scintipipe.cli\n"
        "import scintipipe.simulate.camera\n"
        "from scintipipe import hookimpl, api\n"
        "from scintipipe.api import ScanError\n"
        "def f():\n"
        "    from scintipipe.bundle import Bundle\n"
        "from scintipipe_remnant import BUNDLE_DIR\n"
    )
    assert [name for _, name in imported_modules(source)] == [
        "scintipipe.simulate.camera",
        "scintipipe.api",
        "scintipipe.hookimpl",
        "scintipipe.api",
        "scintipipe.bundle",
        "scintipipe_remnant",
    ]


def test_shipped_plugins_import_only_the_api() -> None:
    files = sorted(PLUGINS.glob("*/**/*.py"))
    assert len(files) > 10 and any("scintipipe_remnant" in str(f) for f in files) and any("scintipipe_disease" in str(f) for f in files)
    offending = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in files
        for line, name in imported_modules(path)
        if (name == "scintipipe" or name.startswith("scintipipe.")) and name != "scintipipe.api"
    ]
    assert offending == [], "plugins must import from scintipipe.api only:\n" + "\n".join(offending)


def test_the_pytest_plugin_gives_a_plugins_tests_their_fixtures(tmp_path: Path) -> None:
    """A plugin's test file with no conftest gets tiny_bundle, scintipipe_cli and a clean environment."""
    (tmp_path / "test_copied_plugin.py").write_text(
        "import os\n"
        "\n"
        "def test_fixtures(tiny_bundle, scintipipe_cli, tmp_path):\n"
        "    assert os.environ.get('SCINTIPIPE_DISABLE_PLUGINS') is None\n"
        "    assert (tiny_bundle / 'configs' / 'metadata.json').is_file()\n"
        "    assert 'uptake4' in scintipipe_cli('bundles').output\n"
    )
    env = {**os.environ, "SCINTIPIPE_DISABLE_PLUGINS": "scintipipe.builtin.uptake4", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
