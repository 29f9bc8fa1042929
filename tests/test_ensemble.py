"""Seed ensembles: the ProbabilityEnsemble network, combining bundles, and training from an ensemble recipe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from monai.networks.nets import Classifier

from cli_helpers import read_csv, simulate
from cli_helpers import run as invoke
from scintipipe.bundle import Bundle
from scintipipe.networks import ProbabilityEnsemble, ScintiNet
from scintipipe.testing import make_tiny_bundle
from scintipipe.training.ensemble import EnsembleError, ensemble_seeds, finished_member, member_recipe, write_ensemble_bundle

REPO = Path(__file__).resolve().parents[1]


def members(n: int) -> list[ScintiNet]:
    nets = []
    for seed in range(n):
        torch.manual_seed(seed)
        nets.append(ScintiNet(num_classes=4).eval())
    return nets


def test_ensemble_probabilities_are_the_members_mean() -> None:
    nets = members(3)
    x = torch.rand(5, 1, 48, 48)
    with torch.no_grad():
        expected = torch.stack([net(x).softmax(1) for net in nets]).mean(0)
        got = ProbabilityEnsemble(nets).eval()(x).softmax(1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # one member: the ensemble gives that member's probabilities
    with torch.no_grad():
        torch.testing.assert_close(ProbabilityEnsemble(nets[:1]).eval()(x).softmax(1), nets[0](x).softmax(1), rtol=1e-5, atol=1e-6)


def test_ensemble_weights_and_errors() -> None:
    nets = members(2)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        weighted = ProbabilityEnsemble(nets, weights=[1.0, 0.0]).eval()(x).softmax(1)
        torch.testing.assert_close(weighted, nets[0](x).softmax(1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 weights for 1 members"):
        ProbabilityEnsemble(nets[:1], weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="at least one member"):
        ProbabilityEnsemble([])


def test_ensemble_names_the_first_members_gradcam_layer() -> None:
    ensemble = ProbabilityEnsemble(members(2))
    assert ensemble.gradcam_layer == "members.0.features.4"
    assert "members.0.features.4" in dict(ensemble.named_modules())


def test_ensemble_seeds_are_checked() -> None:
    assert ensemble_seeds({"seed": 0}) == []
    assert ensemble_seeds({"ensemble_seeds": [0, 1, 2]}) == [0, 1, 2]
    for bad in ([0, 0], [0, "1"], 3, [True]):
        with pytest.raises(EnsembleError, match="ensemble_seeds"):
            ensemble_seeds({"ensemble_seeds": bad})
    assert member_recipe({"ensemble_seeds": [4, 5], "seed": 0, "epochs": 2}, 5) == {"seed": 5, "epochs": 2}


def two_tiny_bundles(tmp_path: Path) -> tuple[Path, Path]:
    """Two shape-only bundles with different random weights."""
    first = make_tiny_bundle(tmp_path / "m0")
    second = make_tiny_bundle(tmp_path / "m1")
    torch.manual_seed(1)
    net = Classifier(in_shape=(1, 32, 32), classes=4, channels=(4, 8), strides=(2, 2))
    torch.save(net.state_dict(), second / "models/model.pt")
    return first, second


def test_combined_bundle_gives_the_mean_of_its_members(tmp_path: Path) -> None:
    first, second = two_tiny_bundles(tmp_path)
    out = write_ensemble_bundle([first, second], tmp_path / "ensemble")
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        member_probs = [Bundle(folder).network()(x).softmax(1) for folder in (first, second)]
        assert not torch.allclose(member_probs[0], member_probs[1])  # the members really differ
        got = Bundle(out).network()(x).softmax(1)
    torch.testing.assert_close(got, (member_probs[0] + member_probs[1]) / 2, rtol=1e-5, atol=1e-6)
    bundle = Bundle(out)
    assert bundle.labels == Bundle(first).labels
    metadata = json.loads((out / "configs/metadata.json").read_text())
    assert metadata["scintipipe"]["network"] == "scintipipe.networks.ProbabilityEnsemble"
    assert len(metadata["eval_metrics"]["members"]) == 2
    assert "mean-probability ensemble of 2" in (out / "docs/README.md").read_text()
    assert metadata["name"] == "tiny"  # the members' name, not a member folder's


def test_members_that_read_other_inputs_are_refused(tmp_path: Path) -> None:
    first = make_tiny_bundle(tmp_path / "m0")
    other = make_tiny_bundle(tmp_path / "m1", labels=["a", "b", "c", "d"])
    with pytest.raises(EnsembleError, match=r"m1 has other labels"):
        write_ensemble_bundle([first, other], tmp_path / "ensemble")
    with pytest.raises(EnsembleError, match="at least one member"):
        write_ensemble_bundle([], tmp_path / "ensemble")


@pytest.mark.slow
def test_train_from_an_ensemble_recipe_trains_each_seed_and_resumes(tmp_path: Path) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = simulate(tmp_path / "data", n=24, seed=5, center="a")
    recipe = json.loads((REPO / "bundles/uptake4/configs/recipe.json").read_text())
    recipe.update(epochs=1, batch_size=8, ensemble_seeds=[3, 4])
    recipe_file = tmp_path / "ensemble.json"
    recipe_file.write_text(json.dumps(recipe))
    out = tmp_path / "ens"
    args = [
        "train",
        "--bundle",
        "uptake4",
        "--recipe",
        str(recipe_file),
        "--data",
        str(data),
        "--labels",
        str(data / "labels.csv"),
        "--out",
        str(out),
        "--no-progress",
    ]
    code, output = invoke(args)
    assert code == 0, output
    assert "ensemble member 1/2 (seed 3): training" in output and "ensemble member 2/2 (seed 4): training" in output
    for seed in (3, 4):
        assert finished_member(out / f"members/seed-{seed}")
        assert json.loads((out / f"members/seed-{seed}/configs/recipe.json").read_text())["seed"] == seed
    assert json.loads((out / "configs/recipe.json").read_text())["ensemble_seeds"] == [3, 4]
    code, output = invoke(["run", "--bundle", str(out), str(data), "--out", str(tmp_path / "run"), "--no-report", "--no-explain", "--accept-ood"])
    assert code == 0, output
    assert len(read_csv(tmp_path / "run/predictions.csv")) == 24
    # a finished member is reused, a missing one is trained again
    shutil.rmtree(out / "members/seed-4")
    code, output = invoke(args)
    assert code == 0, output
    assert "ensemble member 1/2 (seed 3): reusing" in output and "ensemble member 2/2 (seed 4): training" in output
    # --seed trains one network with that seed, not the ensemble
    single = tmp_path / "single"
    code, output = invoke([*args[:-2], str(single), "--seed", "7", "--no-progress"])
    assert code == 0, output
    assert not (single / "members").exists()
    assert json.loads((single / "configs/recipe.json").read_text())["seed"] == 7


def test_the_shipped_ensemble_recipe_is_uptake4s_with_three_seeds() -> None:
    from scintipipe.training.recipe import load_recipe

    ensemble, single = load_recipe("uptake4_ensemble"), load_recipe("uptake4")
    assert ensemble_seeds(ensemble) == [0, 1, 2]
    assert member_recipe(ensemble, 0) | {"description": ""} == single | {"description": ""}
