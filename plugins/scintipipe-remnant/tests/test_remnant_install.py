"""The plugin is installed, registers its task, bundle, simulator, centre, recipes and
command, and goes away cleanly when disabled (how a user sees an uninstall)."""

from __future__ import annotations

import json

import pytest

from scintipipe.api import run_cli


def invoke(*args: str) -> str:
    return run_cli(*args).output


def test_plugins_lists_remnant_with_its_hooks() -> None:
    line = next(line for line in invoke("plugins").splitlines() if line.startswith("remnant"))
    for hook in ("register_tasks", "register_simulators", "register_centers", "register_recipes", "register_commands", "report_run"):
        assert hook in line


def test_bundles_lists_a_usable_remnant_bundle() -> None:
    line = next(line for line in invoke("bundles").splitlines() if line.startswith("remnant"))
    assert "ok" in line and "absent, present" in line


def test_shipped_bundle_is_inside_the_package_and_not_for_clinical_use() -> None:
    from scintipipe_remnant import BUNDLE_DIR

    metadata = json.loads((BUNDLE_DIR / "configs/metadata.json").read_text())
    assert metadata["scintipipe"]["task"] == "remnant"
    assert metadata["scintipipe"]["labels"] == ["absent", "present"]
    assert metadata["scintipipe"]["clinical_use"] is False
    assert "Not for clinical use" in (BUNDLE_DIR / "docs/README.md").read_text()
    assert (BUNDLE_DIR / "models/model.pt").stat().st_size < 50_000_000


def test_disabling_the_plugin_removes_task_bundle_simulator_and_command(monkeypatch, tmp_path) -> None:
    """``SCINTIPIPE_DISABLE_PLUGINS=remnant`` is what ``pip uninstall scintipipe-remnant``
    looks like to a user (the README says how the real uninstall was checked)."""
    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "remnant")
    bundles = invoke("bundles")
    assert "remnant" not in bundles and "uptake4" in bundles
    assert "remnant" not in invoke("plugins")
    assert "remnant-simulate" not in invoke("--help")
    simulate = run_cli(
        "simulate", "--task", "remnant", "--center", "remnant", "--n", "1", "--out", str(tmp_path / "x"), expect_exit=None, catch_exceptions=True
    )
    assert simulate.exit_code != 0 and "no simulator for task 'remnant'" in simulate.output
    run = run_cli("run", "--bundle", "remnant", str(tmp_path), "--out", str(tmp_path / "out"), expect_exit=None, catch_exceptions=True)
    assert run.exit_code != 0


def test_the_remnant_centre_and_the_recipes_come_from_the_plugin(monkeypatch, tmp_path) -> None:
    """The core ships no 131I centre and no remnant recipe: the plugin registers them by name,
    so ``--center remnant`` and ``--recipe remnant_demo_cpu`` work wherever it is installed."""
    from scintipipe.api import CENTERS, ScintipipeError, get_center, load_recipe, make_plugin_manager
    from scintipipe_remnant.center import REMNANT_CENTER

    assert "remnant" not in CENTERS
    pm = make_plugin_manager()
    assert get_center("remnant", pm) is REMNANT_CENTER
    assert load_recipe("remnant_resnet18_paper", pm)["task"] == "remnant"
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n")
    found = run_cli(
        "train", "--bundle", "remnant", "--recipe", "remnant_demo_cpu", "--labels", str(labels), "--out", str(tmp_path / "out"), expect_exit=2
    )
    assert "labels.csv has no rows" in found.output  # the recipe was found by name; the data was not usable

    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "remnant")
    pm = make_plugin_manager()
    with pytest.raises(KeyError, match="unknown centre 'remnant'"):
        get_center("remnant", pm)
    with pytest.raises(ScintipipeError, match="no registered recipe of that name"):
        load_recipe("remnant_demo_cpu", pm)
