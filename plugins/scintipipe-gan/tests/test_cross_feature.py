"""The cross-feature ResNet (seed 004, Fig. 4) and its two-phase schedule, at tiny scale on CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from scintipipe.api import build_network, load_recipe, make_plugin_manager, run_cli
from scintipipe_gan.cross_training import SINGLE_FEATURE_FOLDER, phase_recipes


def test_the_network_is_registered_and_runs_forward_on_cpu() -> None:
    model = build_network("Cross-Feature-ResNet", num_classes=4, pm=make_plugin_manager()).eval()
    with torch.no_grad():
        logits = model(torch.rand(3, 1, 96, 96))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    assert model.gradcam_layer == "stages.2"
    assert dict(model.named_modules())["stages.2"] is model.stages[2]


def test_phase_one_holds_the_cross_paths_at_zero_and_phase_two_keeps_what_it_learned() -> None:
    torch.manual_seed(0)
    single = build_network("cross_feature_resnet", num_classes=4, cross_features=False, widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1))
    assert not any("cross_gate" in name for name, _ in single.named_parameters())
    optimiser = torch.optim.SGD(single.parameters(), lr=0.1)
    x, y = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(single(x), y).backward()
    optimiser.step()
    assert single.cross_gates() == [0.0] * 4  # a plain ResNet in phase one

    cross = build_network("cross_feature_resnet", num_classes=4, cross_features=True, widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1))
    cross.load_state_dict(single.state_dict())  # the same tensors: phase two starts from phase one
    single.eval(), cross.eval()
    with torch.no_grad():
        assert torch.equal(single(x), cross(x))  # zero gates: the cross paths change nothing yet
    cross.train()
    torch.nn.functional.cross_entropy(cross(x), y).backward()
    gates = [block.cross_gate for stage in cross.stages for block in stage]
    assert all(gate.requires_grad and gate.grad is not None and float(gate.grad.abs()) > 0 for gate in gates)


def test_the_two_phase_recipes_share_data_seed_and_validation_fold() -> None:
    single, cross = phase_recipes()
    assert single["network"]["cross_features"] is False and cross["network"]["cross_features"] is True
    assert single["epochs"] + cross["epochs"] == 100  # "after 100 rounds of iteration"
    assert single["augment"]["mixup_alpha"] == 0 and cross["augment"]["mixup_alpha"] > 0  # the cross-training set mixes images
    assert cross["optimizer"]["lr"] < single["optimizer"]["lr"]
    other = {**load_recipe("uptake4_cross_feature_cross"), "val_fraction": 0.5}
    with pytest.raises(ValueError, match="must share 'val_fraction'"):
        phase_recipes(single, other)


def test_cross_train_runs_both_phases_and_the_bundle_classifies(tmp_path: Path, scans: Path) -> None:
    out = tmp_path / "cross-feature"
    result = run_cli("gan", "cross-train", "--data", scans, "--out", out, "--epochs", "1", "1", "--device", "cpu", "--no-progress")
    assert "phase 1 of 2" in result.output and "phase 2 of 2" in result.output
    single_weights = torch.load(out / SINGLE_FEATURE_FOLDER / "models/model.pt", weights_only=True)
    final_weights = torch.load(out / "models/model.pt", weights_only=True)
    gates = [name for name in single_weights if name.endswith("cross_gate")]
    assert len(gates) == 8 and all(float(single_weights[name]) == 0.0 for name in gates)
    assert any(float(final_weights[name]) != 0.0 for name in gates)  # phase two learned the cross paths
    card = (out / "docs/README.md").read_text()
    assert "initial weights" in card.lower() and "Validation views: 4" in card
    assert "Validation views: 4" in (out / SINGLE_FEATURE_FOLDER / "docs/README.md").read_text()  # the same real fold
    assert re.search(r"phase 2 of 2", (out / "configs/recipe.json").read_text())

    classified = run_cli(
        "run", "--bundle", out, scans, "--out", tmp_path / "results", "--no-report", "--no-explain", "--no-progress", expect_exit=None
    )
    assert classified.exit_code in (0, 1)
    predictions = (tmp_path / "results/predictions.csv").read_text().splitlines()
    assert len(predictions) > 1  # the plugin's network loads from the bundle config by name
