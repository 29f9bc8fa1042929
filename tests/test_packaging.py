"""Packaging: a lean core install, extras for the optional parts, clear errors naming the
extra when one is missing, and a wheel that carries the bundles and the plugin template.

``.ci/wheel-check`` goes further: it installs the wheel in a fresh environment and runs
``scintipipe run --bundle uptake4`` on the example scans.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from scintipipe.extras import EXTRAS, MissingExtra, install_hint, require_extra
from scintipipe.testing import run_cli

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src/scintipipe"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CORE = PYPROJECT["project"]["dependencies"]
OPTIONAL = PYPROJECT["project"]["optional-dependencies"]

#: the import names of every extra's packages (and what they bring: starlette comes with fastapi)
EXTRA_MODULES = {module for packages in EXTRAS.values() for _, module in packages} | {"starlette", "multipart"}


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_core_dependencies_leave_out_every_extra_and_the_unused_ones() -> None:
    core = names(CORE)
    for extra, packages in EXTRAS.items():
        assert not core & {distribution for distribution, _ in packages}, f"{extra}'s packages are core dependencies"
    assert "itk" not in core and "itk-io" in core  # the loader calls itk.imread only: not the 1.5 GB metapackage
    assert not core & {"fire", "jsonschema", "pytorch-ignite"}


def test_extras_match_scintipipe_extras_and_all_and_test_pull_in_everything() -> None:
    for extra, packages in EXTRAS.items():
        assert names(OPTIONAL[extra]) == {distribution for distribution, _ in packages}, extra
    assert OPTIONAL["all"] == [f"scintipipe[{','.join(EXTRAS)}]"]
    assert "scintipipe[all]" in OPTIONAL["test"] and "hatchling" in names(OPTIONAL["test"])


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions, not under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Try):  # try: import x / except ImportError
            for inner in node.body:
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    found |= {alias.name for alias in inner.names} if isinstance(inner, ast.Import) else {inner.module or ""}
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_extra_packages_are_imported_lazily() -> None:
    """A core module that imports an extra's package at the top is only ever imported lazily by the rest."""
    imports = {module_name(path): top_level_imports(path) for path in SRC.rglob("*.py")}
    needs_extra = {module for module, used in imports.items() if any(name.split(".")[0] in EXTRA_MODULES for name in used)}
    assert "scintipipe.report.dicom_sr" in needs_extra and "scintipipe.server.app" in needs_extra  # the scan itself works
    changed = True
    while changed:  # a module importing such a module at the top needs the extra too
        grown = {module for module, used in imports.items() if used & needs_extra}
        changed = not grown <= needs_extra
        needs_extra |= grown
    allowed = {
        module
        for module in needs_extra
        if module.startswith(("scintipipe.server", "scintipipe.report.dicom_sr", "scintipipe.report.secondary_capture", "scintipipe.report.codes"))
    }
    assert needs_extra == allowed, f"core modules that cannot be imported without an extra: {sorted(needs_extra - allowed)}"


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRAS, "server", (*EXTRAS["server"], ("scintipipe-no-such-package", "scintipipe_no_such_package")))
    with pytest.raises(
        MissingExtra, match=re.escape('scintipipe serve needs scintipipe-no-such-package, not installed: pip install "scintipipe[server]"')
    ):
        require_extra("server", "scintipipe serve")
    result = run_cli("serve", "--port", "8765", expect_exit=1)
    assert install_hint("server") in result.output


def test_without_highdicom_the_dicom_results_are_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch, tiny_bundle: Path, tmp_path: Path) -> None:
    monkeypatch.setitem(EXTRAS, "reports", (("scintipipe-no-such-package", "scintipipe_no_such_package"),))
    run_cli("run", "--bundle", tiny_bundle, ROOT / "examples/scans/case-00000.dcm", "--out", tmp_path, "--no-explain")
    (note,) = tmp_path.rglob("dicom_skipped.txt")
    assert 'pip install "scintipipe[reports]"' in note.read_text()
    assert not list(tmp_path.rglob("report_sr.dcm"))


def test_a_compressed_scan_without_decoders_names_the_codecs_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

    from scintipipe.loaders.dicom_pixels import _codec_hint

    assert _codec_hint(JPEG2000Lossless) == ""  # every decoder installed here
    monkeypatch.setitem(EXTRAS, "dicom-codecs", (("scintipipe-no-such-package", "scintipipe_no_such_package"),))
    assert 'pip install "scintipipe[dicom-codecs]"' in _codec_hint(JPEG2000Lossless)
    assert _codec_hint(ExplicitVRLittleEndian) == ""  # uncompressed: a decoder would not help


def test_the_wheel_carries_the_bundles_and_the_plugin_template(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the wheel is built without build isolation; hatchling comes with scintipipe[test]")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path), str(ROOT)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("scintipipe-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    for bundle in ("uptake4", "thyroid-seg"):
        for name in ("configs/metadata.json", "configs/inference.json", "models/model.pt"):
            assert f"scintipipe/_shipped_bundles/{bundle}/{name}" in files
    for name in ("configs/train.json", "configs/multi_gpu_train.json", "configs/recipe.json"):  # python -m monai.bundle run retrains it
        assert f"scintipipe/_shipped_bundles/uptake4/{name}" in files
    template = {path.relative_to(SRC).as_posix() for path in (SRC / "templates").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert template and {f"scintipipe/{name}" for name in template} <= files
    assert "scintipipe/schemas/bundle_metadata.schema.json" in files
    assert not [name for name in files if "__pycache__" in name]
    entry_points = next(name for name in files if name.endswith(".dist-info/entry_points.txt"))
    assert "scintipipe = scintipipe.testing" in zipfile.ZipFile(wheel).read(entry_points).decode()
