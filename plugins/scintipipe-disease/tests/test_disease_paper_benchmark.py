"""``benchmarks/disease_paper.py`` (the multicentre disease study's design: CV, networks, external set, readers) at a tiny scale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "disease_paper.py"


@pytest.mark.slow
@pytest.mark.skipif(not SCRIPT.is_file(), reason="runs from a source checkout (benchmarks/ is not installed)")
def test_disease_paper_benchmark_runs_every_step_at_tiny_scale(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("disease_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results"
    args = [
        "--work",
        str(tmp_path / "work"),
        "--n-train",
        "40",
        "--n-external",
        "16",
        "--cv-epochs",
        "1",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--recipes",
        "disease_demo_cpu",
        "disease_resnet34_cpu",
        "--cv-recipes",
        "disease_demo_cpu",
        "--out",
        str(out),
        "--pretrain",
        "disease_demo_cpu",
        "--pretrain-n",
        "16",
        "--pretrain-epochs",
        "1",
    ]
    results = module.main(args)

    cv = results["cv"]["summary"]["disease"]["overall_accuracy"]
    assert cv["n"] == 5 and all(0.0 <= v <= 1.0 for v in cv["values"])
    assert set(results["external"]) == {"disease", "disease_resnet34_cpu", "disease_demo_cpu_uptake4init"}
    pretrain_recipe = json.loads((tmp_path / "work" / "pretrain-recipe.json").read_text())
    assert pretrain_recipe["task"] == "uptake4" and pretrain_recipe["epochs"] == 1
    card = (tmp_path / "work" / "bundles" / "disease_demo_cpu_uptake4init" / "docs" / "README.md").read_text()
    assert "uptake4-disease_demo_cpu" in card  # the fine-tuned bundle names its initial weights
    resnet = results["external"]["disease_resnet34_cpu"]
    assert resnet["network"] == "resnet34" and 21.0e6 < resnet["params"] < 21.5e6 and resnet["epochs"] == 1
    assert results["external"]["disease"]["n"] == 16
    assert results["comparisons"][0]["a"] == "disease" and 0.0 <= results["comparisons"][0]["mcnemar_p"] <= 1.0
    # synthetic readers: junior wrong on every 4th scan, senior on every 8th
    readers = results["readers"]["disease"]["readers"]
    assert readers["junior"]["accuracy"]["value"] == pytest.approx(12 / 16)
    assert readers["senior"]["accuracy"]["value"] == pytest.approx(14 / 16)
    assert json.loads(out.with_suffix(".json").read_text())["timings_s"]["train:disease_resnet34_cpu"] > 0
    summary = out.with_suffix(".md").read_text()
    for heading in ("## Five-fold cross-validation", "## External set", "## Readers", "Cohen's kappa junior vs senior"):
        assert heading in summary

    rerun = module.main([*args, "--steps", "summary"])  # every step's output is reused
    assert rerun["external"] == results["external"]
    assert "--steps" not in rerun["command"]


@pytest.mark.skipif(not SCRIPT.is_file(), reason="runs from a source checkout (benchmarks/ is not installed)")
def test_disease_paper_benchmark_refuses_unknown_recipes_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("disease_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--work", str(tmp_path / "work"), "--pretrain", "resnet99"])
    assert exit_info.value.code == 2
    assert "resnet99" in capsys.readouterr().err and not (tmp_path / "work").exists()
