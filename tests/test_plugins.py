"""The plugin manager: built-ins, discovery, disabling, registration and error reporting."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pluggy
import pytest
from click.testing import CliRunner

from scintipipe.cli import cli
from scintipipe.errors import RegistrationError
from scintipipe.plugins import DEFAULT_PLUGINS, describe_plugins, make_plugin_manager, simulators, tasks_and_bundles


def write_plugin(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text("from scintipipe import hookimpl\n" + textwrap.dedent(body))
    return path


def fake_distribution(site: Path, name: str, module_body: str) -> None:
    """Install a plugin distribution with an entry point into ``site`` (on sys.path)."""
    write_plugin(site, name, module_body)
    info = site / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[scintipipe]\n{name} = {name}\n")


def test_builtin_plugins_are_registered_like_third_party_ones() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    names = {row["name"] for row in describe_plugins(pm)}
    assert set(DEFAULT_PLUGINS) <= names
    hooks = {row["name"]: row["hooks"] for row in describe_plugins(pm)}
    assert hooks["scintipipe.builtin.classify_bundle"] == ["classify_batch"]
    assert "register_tasks" in hooks["scintipipe.builtin.uptake4"]


def test_entry_point_plugins_are_discovered_and_can_be_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(
        tmp_path,
        "sp_fake_one",
        """
        @hookimpl
        def register_tasks(register):
            register.task("fake_one", ["a", "b"], "first fake")
    """,
    )
    fake_distribution(
        tmp_path,
        "sp_fake_two",
        """
        @hookimpl
        def register_tasks(register):
            register.task("fake_two", ["a", "b"], "second fake")
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tasks = tasks_and_bundles(make_plugin_manager()).tasks
    assert {"fake_one", "fake_two", "uptake4"} <= set(tasks)
    assert tasks["fake_one"].plugin == "sp_fake_one"
    row = next(r for r in describe_plugins(make_plugin_manager()) if r["name"] == "sp_fake_one")
    assert row["version"] == "1.2.3" and not row["builtin"]

    monkeypatch.setenv("SCINTIPIPE_PLUGINS", "sp_fake_two")
    assert "fake_one" not in tasks_and_bundles(make_plugin_manager()).tasks
    assert "fake_two" in tasks_and_bundles(make_plugin_manager()).tasks

    monkeypatch.setenv("SCINTIPIPE_PLUGINS", "")
    tasks = tasks_and_bundles(make_plugin_manager()).tasks
    assert "fake_two" not in tasks and "uptake4" in tasks  # built-ins stay
    for mod in ("sp_fake_one", "sp_fake_two"):
        sys.modules.pop(mod, None)


def test_disable_plugins_blocks_builtins_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "scintipipe.builtin.uptake4, scintipipe.builtin.explain_gradcam")
    pm = make_plugin_manager(load_entry_points=False)
    assert not pm.has_plugin("scintipipe.builtin.uptake4")
    assert "uptake4" not in tasks_and_bundles(pm).tasks
    assert [impl.plugin_name for impl in pm.hook.explain_batch.get_hookimpls() if not impl.wrapper] == []  # the stage-timing wrapper stays


def test_plugins_dir_loads_one_file_plugins(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "myplugin",
        """
        @hookimpl
        def register_tasks(register):
            register.task("mytask", ["x", "y"], "from a one-file plugin")
    """,
    )
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins"])
    assert result.exit_code == 0, result.output
    assert "myplugin" in result.output and "register_tasks" in result.output


def test_misspelt_hook_is_refused_naming_the_plugin(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "typo",
        """
        @hookimpl
        def load_scan(path):
            return None
    """,
    )
    with pytest.raises(pluggy.PluginValidationError, match="typo"):
        make_plugin_manager(plugins_dir=tmp_path, load_entry_points=False)


def test_duplicate_task_names_both_plugins(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "clash",
        """
        @hookimpl
        def register_tasks(register):
            register.task("uptake4", ["a", "b"], "clashes with the built-in")
    """,
    )
    pm = make_plugin_manager(plugins_dir=tmp_path, load_entry_points=False)
    with pytest.raises(RegistrationError, match=r"scintipipe.builtin.uptake4.*clash|clash.*scintipipe.builtin.uptake4"):
        tasks_and_bundles(pm)


def test_registration_failure_names_the_plugin(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "broken",
        """
        @hookimpl
        def register_simulators(register):
            raise KeyError("boom")
    """,
    )
    pm = make_plugin_manager(plugins_dir=tmp_path, load_entry_points=False)
    with pytest.raises(RegistrationError, match="broken.*register_simulators"):
        simulators(pm)


def test_plugin_commands_join_the_cli(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "hello",
        """
        import click

        @hookimpl
        def register_commands(register):
            @click.command()
            def hello():
                \"\"\"Say hello.\"\"\"
                click.echo("hello from a plugin")
            register.command(hello)
    """,
    )
    runner = CliRunner()
    assert "hello" in runner.invoke(cli, ["--plugins-dir", str(tmp_path), "--help"]).output
    result = runner.invoke(cli, ["--plugins-dir", str(tmp_path), "hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_trace_env_writes_hook_calls(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCINTIPIPE_TRACE_HOOKS", "1")
    pm = make_plugin_manager(load_entry_points=False)
    tasks_and_bundles(pm)
    pm.hook.classify_batch.get_hookimpls()
    pm.hook.register_commands(register=type("R", (), {"command": lambda self, c: None})())
    assert "register_commands" in capsys.readouterr().err
