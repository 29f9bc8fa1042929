"""The hook reference stays in step with hookspecs.py, and every hook has a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from scintipipe import hookspecs

REPO = Path(__file__).resolve().parents[1]
HOOKS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "scintipipe_spec")}


def test_there_are_hooks_for_every_stage() -> None:
    stages = {"load_scans", "preprocess_scan", "segment_scan", "classify_batch", "explain_batch", "report_case"}
    assert stages <= set(HOOKS)
    assert {"register_tasks", "register_commands", "register_simulators"} <= set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_its_signature(name: str) -> None:
    docs = (REPO / "docs/hooks.md").read_text()
    params = ", ".join(inspect.signature(HOOKS[name]).parameters)
    assert re.search(rf"^### `{name}\({re.escape(params)}\)`$", docs, re.M), f"docs/hooks.md lacks '### `{name}({params})`'"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_docstring_with_an_example(name: str) -> None:
    doc = HOOKS[name].__doc__ or ""
    assert "Args:" in doc and "Example:" in doc


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_exercised_by_a_test(name: str) -> None:
    tests = [p for p in (REPO / "tests").glob("test_*.py") if p.name != "test_docs.py"]
    assert any(re.search(rf"\b{name}\b", p.read_text()) for p in tests), f"no test mentions hook {name}"


def test_firstresult_hooks_say_so() -> None:
    for name, fn in HOOKS.items():
        if fn.scintipipe_spec.get("firstresult"):
            assert "Stops at first non-None result" in fn.__doc__, name
