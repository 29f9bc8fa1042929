"""Training, resume, evaluation and the shipped uptake4 bundle, at small scale.

Everything trains for real on a tiny simulated set (a few epochs of ScintiNet on 40
scans), so these are marked ``slow`` (CI still runs them). The last test checks the
shipped bundle's real inference on fresh simulated centre-b scans.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from cli_helpers import read_csv, simulate
from cli_helpers import run as invoke

REPO = Path(__file__).resolve().parents[1]
LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 simulated centre-a scans, 10 per label."""
    return simulate(tmp_path_factory.mktemp("data") / "center-a", n=40, seed=5, center="a")


@pytest.fixture(scope="module")
def trained(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bundle trained through ``scintipipe train`` for 2 epochs, and the command's output."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = tmp_path_factory.mktemp("bundles") / "my-uptake4"
    code, output = invoke(
        [
            "train",
            "--bundle",
            "uptake4",
            "--data",
            str(tiny_set),
            "--labels",
            str(tiny_set / "labels.csv"),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--seed",
            "3",
            "--data-description",
            "simulated centre-a test scans",
            "--no-progress",
        ]
    )
    assert code == 0, output
    return out, output


def test_train_writes_a_complete_bundle(trained: tuple[Path, str]) -> None:
    out, output = trained
    for name in (
        "configs/metadata.json",
        "configs/inference.json",
        "configs/recipe.json",
        "models/model.pt",
        "docs/README.md",
        "LICENSE",
        "checkpoint.pt",
    ):
        assert (out / name).is_file(), name
    assert any((out / "logs").iterdir()), "TensorBoard logs"
    metadata = json.loads((out / "configs/metadata.json").read_text())
    assert metadata["labels"] == LABELS if "labels" in metadata else True
    assert json.loads((out / "configs/recipe.json").read_text())["epochs"] == 2
    assert "validation accuracy" in output and f"run --bundle {out}" in output


def test_model_card_records_provenance(trained: tuple[Path, str], tiny_set: Path) -> None:
    from scintipipe.training.data import hash_dataset, read_labels

    out, _ = trained
    card = (out / "docs/README.md").read_text()
    assert "NOT FOR CLINICAL USE" in card.upper()
    assert "Command: `" in card and "train" in card and "--epochs 2" in card
    assert hash_dataset(read_labels(tiny_set / "labels.csv", tiny_set, LABELS)) in card
    assert re.search(r"Seed: 3\b", card)
    assert f"| torch | {torch.__version__} |" in card
    assert "simulated centre-a test scans" in card


def test_run_uses_the_new_bundle(trained: tuple[Path, str], tiny_set: Path, tmp_path: Path) -> None:
    out, _ = trained
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("case-00000.dcm", "case-00001.dcm", "case-00002.dcm"):
        (scans / name).write_bytes((tiny_set / name).read_bytes())
    results = tmp_path / "results"
    code, output = invoke(["run", "--bundle", str(out), str(scans), "--out", str(results), "--no-explain", "--no-report"])
    assert code == 0, output
    rows = read_csv(results / "predictions.csv")
    assert len(rows) == 3 and all(r["label"] in LABELS for r in rows)
    # the probabilities are the new bundle's: recompute one with its network directly, averaged
    # over the zooms its recipe declares unless the single pass reaches its threshold
    # (uptake4's recipe carries zoom_factors and zoom_averaging_below into the bundle)
    from scintipipe.bundle import Bundle
    from scintipipe.loaders import read_scans
    from scintipipe.transforms.unknown_scale import zoom_inputs

    bundle = Bundle(out)
    assert bundle.zoom_factors == (0.8, 1.0, 1.25) and bundle.unknown_scale_fovs_mm == (200.0, 280.0, 390.0)
    assert bundle.zoom_averaging_below == 0.9
    scan = read_scans(scans / "case-00000.dcm")[0]
    x = zoom_inputs(scan["image"], bundle.scan_transform, bundle.zoom_factors)
    with torch.inference_mode():
        per_zoom = (bundle.network("cpu")(x) / bundle.gate.temperature).softmax(1)
    probs = per_zoom[1] if float(per_zoom[1].max()) >= bundle.zoom_averaging_below else per_zoom.mean(0)  # zoom 1.0: the spacing as acquired
    row = next(r for r in rows if r["source"].endswith("case-00000.dcm"))
    assert float(row["prob_diffusely_increased"]) == pytest.approx(float(probs[0]), abs=1e-4)


def test_resume_continues_from_the_checkpoint_epoch(tiny_set: Path, tmp_path: Path) -> None:
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.training.recipe import load_recipe
    from scintipipe.training.train import train_bundle

    recipe = load_recipe("uptake4")
    recipe.update(epochs=3, seed=1)
    out = tmp_path / "resumable"
    pm = make_plugin_manager()

    class Interrupt(Exception):
        pass

    def interrupt_after_second(message: str) -> None:
        if message.startswith("epoch 2/3"):  # logged just before epoch 2's checkpoint is saved
            raise Interrupt

    with pytest.raises(Interrupt):
        train_bundle(pm, recipe, tiny_set, tiny_set / "labels.csv", out, progress=False, log=interrupt_after_second)
    saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 0 and len(saved["history"]) == 1  # epoch 1 finished and saved
    from scintipipe.bundle import Bundle
    from scintipipe.errors import BundleError

    assert Bundle(out).training_in_progress  # the stopped run's bundle holds the initial weights
    with pytest.raises(BundleError, match="still being trained"):
        Bundle(out).network("cpu")
    lines: list[str] = []
    result = train_bundle(pm, recipe, tiny_set, tiny_set / "labels.csv", out, resume=True, progress=False, log=lines.append)
    assert any(line.startswith("resumed from") and "after epoch 1 of 3" in line for line in lines), lines
    epochs_run = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs_run] == ["epoch 2/3", "epoch 3/3"]
    final = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert final["epoch"] == 2 and [row["epoch"] for row in final["history"]] == [0, 1, 2]
    assert result.best_epoch in (0, 1, 2)
    assert not Bundle(out).training_in_progress and not Bundle(out).network("cpu").training  # finished: served


def test_resume_with_more_epochs_extends_training(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    base = ["train", "--bundle", "uptake4", "--data", str(tiny_set), "--labels", str(tiny_set / "labels.csv"), "--out", str(out), "--no-progress"]
    code, output = invoke(base + ["--epochs", "1"])
    assert code == 0, output
    code, output = invoke(base + ["--epochs", "2", "--resume"])
    assert code == 0, output
    assert "stretched to 2 epochs" in output and "after epoch 1 of 2" in output and "epoch 2/2" in output
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["epoch"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\ncase-00000.dcm,nodular\n", "unknown labels ['nodular']"),
        ("file,diagnosis\ncase-00000.dcm,focal_increased\n", "must have the columns file,label"),
        ("name,label\ncase-00000.dcm,focal_increased\n", "must have the columns file,label"),
    ],
)
def test_labels_csv_errors_are_usage_errors(content: str, message: str, tiny_set: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    code, output = invoke(
        ["train", "--bundle", "uptake4", "--data", str(tiny_set), "--labels", str(labels), "--out", str(tmp_path / "b"), "--no-progress"]
    )
    assert code == 2
    assert "Usage:" in output and message in output


def test_evaluate_cv_writes_mean_and_sd(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    code, output = invoke(
        [
            "evaluate",
            "--bundle",
            "uptake4",
            "--labels",
            str(tiny_set / "labels.csv"),
            "--cv",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
            str(tiny_set),
            "--no-progress",
        ]
    )
    assert code == 0, output
    summary = (out / "summary.md").read_text()
    assert "±" in summary and "accuracy" in summary.lower()
    experiment = json.loads((out / "experiment.json").read_text())
    assert experiment["design"] == "kfold" and experiment["splits"] == 2


def test_shipped_bundle_beats_chance_on_fresh_center_b(tmp_path: Path) -> None:
    """Real inference of bundles/uptake4 on 40 new centre-b scans (seed not used in training or evaluation)."""
    from scintipipe.bundle import resolve_bundle
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    shipped = resolve_bundle("uptake4", tasks_and_bundles(make_plugin_manager()).bundles)
    assert shipped.root.resolve() == (REPO / "bundles/uptake4").resolve()
    scans = tmp_path / "center-b"
    simulate(scans, n=40, seed=4242, center="b")
    results = tmp_path / "results"
    dicoms = sorted(str(p) for p in scans.glob("case-*.dcm"))  # the folder also holds contact_sheet.png
    code, output = invoke(["run", "--bundle", "uptake4", *dicoms, "--out", str(results), "--no-explain", "--no-report"])
    assert code == 0, output
    truth = {row["file"]: row["label"] for row in read_csv(scans / "labels.csv")}
    rows = read_csv(results / "predictions.csv")
    assert len(rows) == 40
    correct = sum(row["label"] == truth[Path(row["source"]).name] for row in rows)
    assert correct / len(rows) >= 0.85, f"{correct}/40 correct"


def test_benchmark_scripts_run_at_tiny_scale(tiny_set: Path, tmp_path: Path) -> None:
    """The ablation and network benchmarks (which share training.experiment) still run end to end."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    common = ["--train-data", str(tiny_set), "--test-data", str(tiny_set), "--n-train", "40", "--epochs", "1"]
    ablation = load("uptake4_ablation").main(common + ["--variants", "full", "paper", "--out", str(tmp_path / "ablation")])
    assert set(ablation["variants"]) == {"full", "paper"}
    for result in ablation["variants"].values():
        assert 0.0 <= result["external"]["accuracy"] <= 1.0 and result["external"]["n"] == 40
    assert "| full |" in (tmp_path / "ablation.md").read_text()
    networks = load("uptake4_networks").main(common + ["--networks", "scintinet", "--iters", "1", "--out", str(tmp_path / "networks")])
    row = networks["networks"]["scintinet"]
    assert row["weights_mb"] < 5 and row["forward_images_per_s"] > 0
    assert "**Default: ScintiNet" in (tmp_path / "networks.md").read_text()
