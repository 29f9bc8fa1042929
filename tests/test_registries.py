"""Networks, simulator centres and recipes are registered through hooks like tasks are:
usable by name, refused when a name is taken, called through pluggy (tracing and wrappers
see them), and bundles whose labels differ from their task's are refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from scintipipe.bundle import resolve_bundle
from scintipipe.errors import BundleError, RegistrationError
from scintipipe.networks import NETWORKS, build_network, gradcam_layer, network_spec
from scintipipe.plugins import centers, make_plugin_manager, networks, recipes, tasks_and_bundles
from scintipipe.simulate.centers import CENTERS, get_center
from scintipipe.testing import make_tiny_bundle, run_cli
from scintipipe.training.recipe import RecipeError, load_recipe

#: a one-file plugin that registers one network, one centre and one recipe
TINY_PLUGIN = """
from dataclasses import replace
from pathlib import Path

from torch import nn

from scintipipe.api import CENTERS, NetworkSpec, hookimpl

RECIPE = Path(__file__).with_name("tiny_recipe.json")


class TinyNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


@hookimpl
def register_networks(register):
    register.network("tiny-net", NetworkSpec(TinyNet, "features.1", "fc", min_size=8))


@hookimpl
def register_centers(register):
    register.center(replace(CENTERS["b"], name="tiny", matrix=64, pixel_mm=3.75, count_preset=20_000))


@hookimpl
def register_recipes(register):
    register.recipe("tiny_recipe", RECIPE)
"""

TINY_RECIPE = {
    "task": "uptake4",
    "labels": ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"],
    "network": {"_target_": "scintipipe.networks.build_network", "name": "resnet_tiny"},
    "input_size": [32, 32],
    "scan_transforms": [],
    "epochs": 1,
}


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "tiny_plugin.py").write_text(TINY_PLUGIN)
    (folder / "tiny_recipe.json").write_text(json.dumps(TINY_RECIPE))
    return folder


def plugin_manager_with(folder: Path, name: str, body: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text("from scintipipe.api import hookimpl\n" + textwrap.dedent(body))
    return make_plugin_manager(plugins_dir=folder, load_entry_points=False)


def test_a_plugins_network_is_built_by_name(plugins_dir: Path) -> None:
    pm = make_plugin_manager(plugins_dir=plugins_dir, load_entry_points=False)
    assert networks(pm).owner("tiny_net") == "tiny_plugin"  # dashes and case do not matter
    model = build_network("Tiny-Net", num_classes=3, pm=pm).eval()
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 3)
    assert gradcam_layer(model) == "features.1" == gradcam_layer("tiny_net", pm=pm)
    assert network_spec("tiny_net", pm=pm).min_size == 8
    with pytest.raises(KeyError, match="unknown network 'tiny_net'"):
        network_spec("tiny_net")  # the process-wide plugin manager does not load that folder


def test_builtin_networks_come_from_the_builtin_plugin() -> None:
    register = networks(make_plugin_manager(load_entry_points=False))
    assert register.networks == dict(NETWORKS)
    assert {register.owner(name) for name in NETWORKS} == {"scintipipe.builtin.networks"}
    with pytest.raises(TypeError):
        NETWORKS["mine"] = NETWORKS["resnet18"]  # no global to mutate: plugins use the hook


def test_a_plugins_centre_is_used_by_simulate_center(plugins_dir: Path, tmp_path: Path) -> None:
    pm = make_plugin_manager(plugins_dir=plugins_dir, load_entry_points=False)
    assert get_center("tiny", pm=pm).matrix == 64 and centers(pm).owner("tiny") == "tiny_plugin"
    out = tmp_path / "sim"
    run_cli("--plugins-dir", plugins_dir, "simulate", "--task", "uptake4", "--center", "tiny", "--n", "1", "--out", out, "--no-progress")
    settings = json.loads((out / "simulation.json").read_text())
    assert settings["center"]["name"] == "tiny" and settings["center"]["matrix"] == 64
    unknown = run_cli("simulate", "--task", "uptake4", "--center", "tiny", "--n", "1", "--out", tmp_path / "x", expect_exit=2)
    assert "unknown centre 'tiny'" in unknown.output and "siemens" in unknown.output


def test_builtin_centres_come_from_the_builtin_plugin() -> None:
    register = centers(make_plugin_manager(load_entry_points=False))
    assert register.centers == dict(CENTERS) and set(CENTERS) == {"a", "b", "siemens", "randomised"}
    assert register.owner("randomised") == "scintipipe.builtin.simulators"


def test_a_plugins_recipe_is_found_by_name(plugins_dir: Path) -> None:
    pm = make_plugin_manager(plugins_dir=plugins_dir, load_entry_points=False)
    assert recipes(pm).owner("tiny_recipe") == "tiny_plugin"
    recipe = load_recipe("tiny_recipe", pm)
    assert recipe["network"]["name"] == "resnet_tiny" and recipe["batch_size"] == 32  # defaults filled
    assert load_recipe("uptake4_paper", pm)["task"] == "uptake4"  # the core's, registered the same way
    with pytest.raises(RecipeError, match=r"no registered recipe of that name \(registered: .*tiny_recipe"):
        load_recipe("no_such_recipe", pm)


def test_train_recipe_name_reaches_the_plugins_recipe(plugins_dir: Path, tmp_path: Path) -> None:
    """``train --recipe NAME`` resolves through the command's plugin manager (``--plugins-dir`` included):
    the recipe is found and training starts, failing only on the labels file it is given."""
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n")
    result = run_cli(
        "--plugins-dir",
        plugins_dir,
        "train",
        "--bundle",
        "uptake4",
        "--recipe",
        "tiny_recipe",
        "--labels",
        labels,
        "--out",
        tmp_path / "out",
        expect_exit=2,
    )
    assert "labels.csv has no rows" in result.output
    missing = run_cli("train", "--bundle", "uptake4", "--recipe", "tiny_recipe", "--labels", labels, "--out", tmp_path / "out2", expect_exit=2)
    assert "no registered recipe of that name" in missing.output


@pytest.mark.parametrize(
    ("hook", "call", "taken"),
    [
        ("register_networks", 'register.network("resnet18", NetworkSpec(object, "x", "y", 8))', "network 'resnet18'"),
        ("register_centers", 'register.center(replace(CENTERS["a"], injected_mbq=1.0))', "centre 'a'"),
        ("register_recipes", 'register.recipe("uptake4", __file__)', "recipe 'uptake4'"),
    ],
)
def test_a_taken_name_is_refused_naming_both_plugins(tmp_path: Path, hook: str, call: str, taken: str) -> None:
    body = f"""
    from dataclasses import replace
    from scintipipe.api import CENTERS, NetworkSpec

    @hookimpl
    def {hook}(register):
        {call}
    """
    pm = plugin_manager_with(tmp_path, "copycat", body)
    collect = {"register_networks": networks, "register_centers": centers, "register_recipes": recipes}[hook]
    with pytest.raises(RegistrationError, match=rf"{taken} is registered by both plugin") as caught:
        collect(pm)
    assert "plugin 'copycat'" in str(caught.value) and "plugin 'scintipipe.builtin." in str(caught.value)


def test_invalid_registrations_name_the_plugin(tmp_path: Path) -> None:
    body = """
    @hookimpl
    def register_recipes(register):
        register.recipe("ghost", "no/such/recipe.json")
    """
    with pytest.raises(RegistrationError, match=r"plugin 'ghost_plugin' registered recipe 'ghost' at no/such/recipe\.json, which is not a file"):
        recipes(plugin_manager_with(tmp_path, "ghost_plugin", body))


def test_registration_calls_go_through_pluggy_so_tracing_sees_them(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCINTIPIPE_TRACE_HOOKS", "1")
    pm = make_plugin_manager(load_entry_points=False)
    capsys.readouterr()
    centers(pm)
    networks(pm)
    recipes(pm)
    tasks_and_bundles(pm)
    traced = capsys.readouterr().err
    for hook in ("register_centers", "register_networks", "register_recipes", "register_tasks"):
        assert f"{hook} [hook]" in traced, hook


def test_wrappers_see_each_plugins_registration(tmp_path: Path) -> None:
    body = """
    SEEN = []

    @hookimpl(wrapper=True)
    def register_centers(register):
        before = set(register.centers)
        yield
        SEEN.append((register.current_plugin, sorted(set(register.centers) - before)))
    """
    pm = plugin_manager_with(tmp_path, "watcher", body)
    centers(pm)
    seen = pm.get_plugin("watcher").SEEN
    assert ("scintipipe.builtin.simulators", ["a", "b", "randomised", "siemens"]) in seen
    assert all(plugin != "watcher" for plugin, _ in seen)  # a wrapper registers nothing itself


def _task_plugin(folder: Path, bundle: Path, labels: list[str]) -> object:
    body = f"""
    @hookimpl
    def register_tasks(register):
        register.task("pair", {labels!r})
        register.bundle("pair", {str(bundle)!r}, task="pair")
    """
    return plugin_manager_with(folder, "pair_plugin", body)


def test_a_bundle_whose_labels_differ_from_its_tasks_is_refused_when_registered(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "pair-bundle", labels=["absent", "present"])
    pm = _task_plugin(tmp_path / "plugins", bundle, ["present", "absent"])
    with pytest.raises(RegistrationError) as caught:
        tasks_and_bundles(pm)
    message = str(caught.value)
    assert "plugin 'pair_plugin'" in message and "bundle 'pair'" in message
    assert "[absent, present]" in message and "task 'pair' has labels [present, absent]" in message


def test_a_bundle_whose_labels_differ_from_its_tasks_is_refused_when_opened(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "pair-bundle", labels=["absent", "present"])
    registered = tasks_and_bundles(_task_plugin(tmp_path / "plugins", bundle, ["absent", "present"])).bundles
    assert registered["pair"].task_labels == ("absent", "present")
    assert resolve_bundle("pair", registered).labels == ["absent", "present"]

    metadata = bundle / "configs/metadata.json"
    content = json.loads(metadata.read_text())
    content["scintipipe"]["labels"] = ["absent", "residual"]  # edited after registration
    metadata.write_text(json.dumps(content))
    with pytest.raises(
        BundleError,
        match=r"bundle 'pair' declares labels \[absent, residual\] in configs/metadata.json scintipipe.labels, but its task 'pair' has labels \[absent, present\]",
    ):
        resolve_bundle("pair", registered)

    other = make_tiny_bundle(tmp_path / "folder-bundle", labels=["a", "b", "c"])
    content = json.loads((other / "configs/metadata.json").read_text())
    content["scintipipe"]["task"] = "pair"
    (other / "configs/metadata.json").write_text(json.dumps(content))
    with pytest.raises(BundleError, match="bundle 'folder-bundle' declares labels \\[a, b, c\\]"):
        resolve_bundle(other, registered)  # a folder naming a registered task is checked too
