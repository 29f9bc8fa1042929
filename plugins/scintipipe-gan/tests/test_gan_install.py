"""The plugin is installed, adds ``scintipipe gan``, keeps start-up light, and goes away when disabled."""

from __future__ import annotations

import json
import subprocess
import sys

from scintipipe.api import run_cli


def test_plugins_lists_gan_with_its_hook() -> None:
    line = next(line for line in run_cli("plugins").output.splitlines() if line.startswith("gan"))
    assert "register_commands" in line


def test_gan_help_lists_train_check_and_sample() -> None:
    text = run_cli("gan", "--help").output
    for command in ("train", "check", "sample"):
        assert command in text


def test_the_command_module_imports_neither_torch_nor_monai() -> None:
    code = "import json, sys\nimport scintipipe_gan.plugin\nprint(json.dumps(sorted(m for m in ('torch', 'monai') if m in sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_disabling_the_plugin_removes_the_command(monkeypatch) -> None:
    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "gan")
    assert "gan" not in run_cli("plugins").output.split()
    assert run_cli("gan", "--help", expect_exit=2).exit_code == 2
