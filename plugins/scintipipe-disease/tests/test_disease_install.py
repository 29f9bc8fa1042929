"""The plugin is installed and registers its task, bundle, simulator and recipes."""

from __future__ import annotations

import json

import pytest

from scintipipe.api import run_cli

LABELS = ["graves", "subacute_thyroiditis", "thyroid_tumour", "normal"]


def invoke(*args: str) -> str:
    return run_cli(*args).output


def test_plugins_lists_disease_with_its_hooks() -> None:
    line = next(line for line in invoke("plugins").splitlines() if line.startswith("disease"))
    for hook in ("register_tasks", "register_simulators", "register_recipes"):
        assert hook in line


def test_recipes_are_registered_by_name() -> None:
    from scintipipe.api import load_recipe, make_plugin_manager
    from scintipipe_disease import RECIPES_DIR

    pm = make_plugin_manager()
    for path in RECIPES_DIR.glob("*.json"):
        assert load_recipe(path.stem, pm)["labels"] == LABELS, path.stem


def test_bundles_lists_a_usable_disease_bundle() -> None:
    line = next(line for line in invoke("bundles").splitlines() if line.startswith("disease"))
    assert "ok" in line and ", ".join(LABELS) in line


def test_shipped_bundle_is_inside_the_package_and_not_for_clinical_use() -> None:
    from scintipipe_disease import BUNDLE_DIR

    metadata = json.loads((BUNDLE_DIR / "configs/metadata.json").read_text())
    assert metadata["scintipipe"]["task"] == "disease"
    assert metadata["scintipipe"]["labels"] == LABELS
    assert metadata["scintipipe"]["clinical_use"] is False
    assert "Not for clinical use" in (BUNDLE_DIR / "docs/README.md").read_text()
    assert (BUNDLE_DIR / "models/model.pt").stat().st_size < 50_000_000


def test_paper_recipes_build_the_named_networks() -> None:
    """The paper's ResNet-34 and the three comparators: full-scale configs and CPU-scale recipes of the same networks."""
    import torch

    from scintipipe.api import build_network
    from scintipipe_disease import RECIPES_DIR

    expected = {"resnet34": "resnet34", "alexnet": "alexnet", "shufflenet": "shufflenet_v2_x1_0", "mobilenet": "mobilenet_v3_large"}
    for short, network in expected.items():
        recipe = json.loads((RECIPES_DIR / f"disease_{short}_paper.json").read_text())
        assert recipe["task"] == "disease" and recipe["labels"] == LABELS
        assert recipe["network"]["name"] == network
        if short in ("shufflenet", "mobilenet"):  # cheap enough to build and run on CPU
            model = build_network(network, num_classes=4).eval()
            with torch.no_grad():
                assert model(torch.zeros(1, 1, 96, 96)).shape == (1, 4)
        cpu = json.loads((RECIPES_DIR / f"disease_{short}_cpu.json").read_text())  # the same network at CPU scale
        assert cpu["network"]["name"] == network and cpu["input_size"] == [96, 96] and cpu["labels"] == LABELS
    scratch = json.loads((RECIPES_DIR / "disease_resnet34_cpu.json").read_text())
    finetune = json.loads((RECIPES_DIR / "disease_resnet34_finetune_cpu.json").read_text())
    assert finetune["optimizer"]["lr"] == pytest.approx(scratch["optimizer"]["lr"] / 10)
    assert {k: v for k, v in finetune.items() if k not in ("name", "description", "optimizer")} == {
        k: v for k, v in scratch.items() if k not in ("name", "description", "optimizer")
    }


def test_disabling_the_plugin_removes_task_and_bundle(monkeypatch) -> None:
    monkeypatch.setenv("SCINTIPIPE_DISABLE_PLUGINS", "disease")
    bundles = invoke("bundles")
    assert not any(line.startswith("disease") for line in bundles.splitlines()) and "uptake4" in bundles
