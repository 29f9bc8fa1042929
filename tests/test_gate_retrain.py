"""A retrained bundle keeps its gate settings; ``gate fit`` writes the model card's gate section;
the ship scripts refit the gate with the folders the shipped gate records."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from benchmark_helpers import load_benchmark
from cli_helpers import run as invoke
from cli_helpers import simulate
from scintipipe.bundle_writer import inherited_gate_settings
from scintipipe.docs_markers import marked_content, remove_marked, replace_marked
from scintipipe.gate.fit import bundle_card_section, render_card_section, write_card_section, write_gate
from scintipipe.testing import make_tiny_bundle

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    "uptake4": REPO / "bundles" / "uptake4",
    "disease": REPO / "plugins" / "scintipipe-disease" / "src" / "scintipipe_disease" / "bundle",
    "remnant": REPO / "plugins" / "scintipipe-remnant" / "src" / "scintipipe_remnant" / "bundle",
}


def shipped(name: str) -> Path:
    root = SHIPPED[name]
    if not (root / "configs/gate.json").is_file():
        pytest.skip(f"{name} bundle not in this checkout")
    return root


# ---- 1. a retrained bundle keeps the radionuclides, nothing fitted to the old weights ----


def test_inherited_settings_are_the_radionuclides_only(tmp_path: Path) -> None:
    assert inherited_gate_settings(shipped("uptake4")) == {"radionuclides": ["Tc-99m", "I-123"]}
    assert inherited_gate_settings(shipped("remnant")) == {"radionuclides": ["I-131"]}
    assert inherited_gate_settings(tmp_path) == {} and inherited_gate_settings(None) == {}
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/gate.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        inherited_gate_settings(tmp_path)


def test_writing_new_weights_drops_the_old_gate_statistics(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "b")
    (bundle / "configs/gate.json").write_text(
        json.dumps(
            {"radionuclides": ["Tc-99m"], "temperature": 0.5, "ood": {"method": "mahalanobis", "statistics": "models/ood.pt", "threshold": 1.0}}
        )
    )
    (bundle / "models/ood.pt").write_bytes(b"old statistics")
    make_tiny_bundle(bundle)  # new weights into the same folder, no gate settings given
    assert not (bundle / "configs/gate.json").exists() and not (bundle / "models/ood.pt").exists()

    from scintipipe.bundle_writer import write_bundle

    (bundle / "models/ood.pt").write_bytes(b"old statistics")
    metadata = json.loads((bundle / "configs/metadata.json").read_text())
    inference = json.loads((bundle / "configs/inference.json").read_text())
    state = torch.load(bundle / "models/model.pt", weights_only=True)
    write_bundle(
        bundle,
        state_dict=state,
        metadata=metadata,
        network_def=inference["network_def"],
        scan_transforms=inference["scan_transforms"],
        model_card="# b\n",
        gate_settings={"radionuclides": ["I-123"]},
    )
    assert json.loads((bundle / "configs/gate.json").read_text()) == {"radionuclides": ["I-123"]}
    assert not (bundle / "models/ood.pt").exists()
    from scintipipe.gate.policy import GatePolicy

    policy = GatePolicy.from_bundle_root(bundle)
    assert policy.radionuclides == ("I-123",) and policy.temperature == 1.0 and policy.ood is None


def test_the_train_hint_adapts_the_base_command_or_gives_a_generic_one() -> None:
    from scintipipe.builtin.training_commands import adapt_gate_command, gate_fit_hint

    base = json.loads((shipped("uptake4") / "configs/gate.json").read_text())
    adapted = adapt_gate_command(base["command"], "my uptake4/")
    assert adapted is not None and shlex.split(adapted)[:5] == ["scintipipe", "gate", "fit", "--bundle", "my uptake4/"]
    assert "--train data/u4-rand-train3000" in adapted and "--method mahalanobis_blocks" in adapted
    assert adapt_gate_command("scintipipe run --bundle x", "y") is None and adapt_gate_command("", "y") is None
    hint = gate_fit_hint(Path("my-uptake4"), "uptake4", base, {"radionuclides": ["Tc-99m", "I-123"]}, Path("data/a/labels.csv"))
    assert "\n" not in hint and "radionuclides Tc-99m, I-123 kept from uptake4" in hint
    assert "scintipipe gate fit --bundle my-uptake4 --train data/u4-rand-train3000" in hint
    generic = gate_fit_hint(Path("my-uptake4"), "uptake4_paper", {}, {}, Path("data/a/labels.csv"))
    assert "scintipipe gate fit --bundle my-uptake4 --train data/a --held-out HELD_OUT_FOLDER" in generic and "kept" not in generic


def test_a_reship_keeps_the_hand_added_configs_and_the_version_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = load_benchmark("_common")
    out = make_tiny_bundle(tmp_path / "bundle")
    (out / "configs/train.json").write_text('{"old": "train"}')
    metadata = json.loads((out / "configs/metadata.json").read_text())
    metadata["version"], metadata["changelog"] = "0.3.1", {"0.3.1": "a fix", "0.3.0": "first"}
    (out / "configs/metadata.json").write_text(json.dumps(metadata))

    def fake_training(cmd: list[str], threads: int) -> None:  # training writes a fresh 0.1.0 bundle
        assert not out.exists() or not (out / "configs/train.json").exists()
        make_tiny_bundle(out)

    monkeypatch.setattr(common, "sh", fake_training)
    common.retrain(out, ["scintipipe", "train"], 1, tmp_path / "kept", ())
    assert (out / "configs/train.json").read_text() == '{"old": "train"}'
    assert not (out / "configs/multi_gpu_train.json").exists()
    retrained = json.loads((out / "configs/metadata.json").read_text())
    assert retrained["version"] == "0.4.0"
    assert list(retrained["changelog"]) == ["0.4.0", "0.3.1", "0.3.0"] and retrained["changelog"]["0.3.1"] == "a fix"
    assert retrained["changelog"]["0.4.0"] == common.GENERIC_CHANGELOG
    # told what changed, the new entry says it
    common.retrain(out, ["scintipipe", "train"], 1, tmp_path / "kept", (), changelog="more display exports")
    again = json.loads((out / "configs/metadata.json").read_text())
    assert again["version"] == "0.5.0" and again["changelog"]["0.5.0"] == "more display exports"


@pytest.mark.slow
def test_retraining_in_place_keeps_the_radionuclides_and_the_hint_refits(tmp_path: Path) -> None:
    """``scintipipe train --bundle B --out B`` on a copy of uptake4, then the hinted ``gate fit``."""
    torch.set_num_threads(1)
    for name, n, seed in (("train", 16, 911), ("held", 8, 912)):
        simulate(tmp_path / name, n=n, seed=seed, center="randomised")
    base = shutil.copytree(shipped("uptake4"), tmp_path / "base", ignore=shutil.ignore_patterns("checkpoint.pt", "logs"))
    gate = json.loads((base / "configs/gate.json").read_text())
    gate["command"] = f"scintipipe gate fit --bundle uptake4 --train {tmp_path / 'train'} --held-out {tmp_path / 'held'} --method mahalanobis_blocks"
    (base / "configs/gate.json").write_text(json.dumps(gate))
    train = tmp_path / "train"
    code, output = invoke(
        [
            "train",
            "--bundle",
            str(base),
            "--data",
            str(train),
            "--labels",
            str(train / "labels.csv"),
            "--out",
            str(base),
            "--epochs",
            "1",
            "--threads",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0, output
    assert json.loads((base / "configs/gate.json").read_text()) == {"radionuclides": ["Tc-99m", "I-123"]}
    assert not (base / "models/ood.pt").exists()
    hint = next(line for line in output.splitlines() if line.startswith("input gate:"))
    fit = hint.split("fit them for this bundle: ", 1)[1].split("  (", 1)[0]
    assert fit == f"scintipipe gate fit --bundle {base} --train {tmp_path / 'train'} --held-out {tmp_path / 'held'} --method mahalanobis_blocks"
    code, output = invoke([*shlex.split(fit)[1:], "--threads", "1", "--no-progress"])
    assert code == 0, output
    refitted = json.loads((base / "configs/gate.json").read_text())
    assert refitted["radionuclides"] == ["Tc-99m", "I-123"] and refitted["ood"]["acceptance"]["n"] == 4
    assert (base / "models/ood.pt").is_file()
    section = marked_content((base / "docs/README.md").read_text(), "gate")
    assert section is not None and section.startswith("## Input gate and calibration")
    assert "Stale" not in section and refitted["command"] in section


# ---- 2. the model card's gate section ------------------------------------------------


def test_rendered_section_holds_the_measurements_of_gate_json() -> None:
    gate = json.loads((shipped("disease") / "configs/gate.json").read_text())
    text = render_card_section(gate)
    assert text.startswith("## Input gate and calibration\n")
    for expected in (
        "`mahalanobis_blocks`",
        "Threshold 867.6",
        "99.5th percentile",
        "297/300 (99.0 %, Wilson 95 % CI 97.1-99.7)",
        "`data/dis-rand-exports-test200` 97/100 (97.0 %, Wilson 95 % CI 91.5-99.0)",
        "`data/dis-b-ext200` **200/200 (100 %, Wilson 95 % CI 98.1-100)**",
        "Temperature 0.829",
        "ECE 0.052 -> 0.034",
        "-0.016 to +0.006: no clear gain",
        "Tc-99m, I-123",
        gate["command"],
        *gate["data_commands"],
    ):
        assert expected in text, expected
    assert "Stale" not in render_card_section(gate, gate["ood"]["model_sha256"])
    assert "Stale" in render_card_section(gate, "0" * 64)
    bare = render_card_section({"radionuclides": ["I-131"]})
    assert "No learned out-of-distribution score" in bare and "I-131" in bare and "Reproduce" not in bare


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_cards_show_what_their_gate_json_says(name: str) -> None:
    root = shipped(name)
    section = marked_content((root / "docs/README.md").read_text(), "gate")
    assert section is not None, f"{root}/docs/README.md has no <!-- gate:start --> section"
    assert section == bundle_card_section(root).strip(), f"stale gate section: run scintipipe gate card --bundle {name}"


def test_card_section_is_appended_once_and_replaced_in_place(tmp_path: Path) -> None:
    root = tmp_path / "b"
    (root / "configs").mkdir(parents=True)
    shutil.copy(shipped("remnant") / "configs/gate.json", root / "configs/gate.json")
    (root / "docs").mkdir()
    (root / "docs/README.md").write_text("# Card\n\n## Training data\nkept\n")
    card = write_card_section(root)
    first = card.read_text()
    assert first.startswith("# Card\n\n## Training data\nkept\n\n<!-- gate:start -->\n## Input gate and calibration")
    assert "ECE 0.092 -> 0.060" in first and "Temperature 1.801" in first
    write_card_section(root)
    assert card.read_text() == first
    gate = json.loads((root / "configs/gate.json").read_text())
    gate["temperature"] = 2.5
    (root / "configs/gate.json").write_text(json.dumps(gate))
    card.write_text(first + "\n## After\nalso kept\n")
    write_card_section(root)
    text = card.read_text()
    assert (
        "Temperature 2.500" in text and "Temperature 1.801" not in text and text.endswith("## After\nalso kept\n") and text.count("gate:start") == 1
    )


def test_gate_card_command_rerenders_without_refitting(tmp_path: Path) -> None:
    bundle = shutil.copytree(shipped("uptake4"), tmp_path / "u4", ignore=shutil.ignore_patterns("checkpoint.pt", "logs"))
    card = bundle / "docs/README.md"
    card.write_text(replace_marked(card.read_text(), "gate", "hand-edited"))
    acceptance = json.loads((bundle / "configs/gate.json").read_text())["ood"]["acceptance"]
    code, output = invoke(["gate", "card", "--bundle", str(bundle), "--print"])
    assert code == 0 and f"held-out test half: {acceptance['accepted']}/{acceptance['n']} (" in output
    assert "Wilson 95 % CI" in output.split("held-out test half:", 1)[1].split("\n", 1)[0]
    assert marked_content(card.read_text(), "gate") == "hand-edited"
    code, output = invoke(["gate", "card", "--bundle", str(bundle)])
    assert code == 0, output
    assert marked_content(card.read_text(), "gate") == bundle_card_section(bundle).strip()
    (bundle / "configs/gate.json").unlink()
    code, output = invoke(["gate", "card", "--bundle", str(bundle)])
    assert code != 0 and "does not exist" in output


class _Scorer:
    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"statistics")


def test_data_commands_are_kept_only_for_the_same_folders(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    gate = {"temperature": 1.2, "ood": {"method": "mahalanobis", "statistics": "models/ood.pt", "threshold": 3.0}}
    same = "scintipipe gate fit --bundle b --train data/a --held-out data/h --method mahalanobis"
    path = write_gate(tmp_path, _Scorer(), gate, same, ["make a", "make h"])
    assert json.loads(path.read_text())["data_commands"] == ["make a", "make h"]
    write_gate(tmp_path, _Scorer(), gate, same.replace("mahalanobis", "energy"))
    assert json.loads(path.read_text())["data_commands"] == ["make a", "make h"]
    write_gate(tmp_path, _Scorer(), gate, "scintipipe gate fit --bundle b --train data/other --held-out data/h --method energy")
    assert "data_commands" not in json.loads(path.read_text())


def test_marker_helpers_find_and_remove_a_block() -> None:
    text = replace_marked("# A\n\nbody\n", "gate", "section")
    assert marked_content(text, "gate") == "section" and marked_content(text, "other") is None
    assert remove_marked(text + "\n## B\n", "gate") == "# A\n\nbody\n\n## B\n"
    assert remove_marked("no block\n", "gate") == "no block\n"


# ---- 3. the ship scripts refit the gate with the recorded folders --------------------


@pytest.mark.parametrize("name", ["uptake4", "disease"])
def test_ship_scripts_refit_the_gate_on_the_recorded_folders(name: str) -> None:
    common = load_benchmark("_common")
    ship = load_benchmark(f"ship_{name}")
    recorded = json.loads((shipped(name) / "configs/gate.json").read_text())
    command = common.gate_fit_command(name, common.ROOT / "data", ship.TRAIN_SETS, ship.TEST_SETS, recorded["ood"]["method"], name, 1)
    core, data_commands, words = [], [], iter(command)
    for word in words:
        if word == "--data-command":
            data_commands.append(next(words))
        elif word in ("--cache", "--threads"):
            next(words)
        elif word != "--no-progress":
            core.append(word)
    assert core == shlex.split(recorded["command"])
    assert data_commands == recorded["data_commands"]


def test_ship_cards_move_the_gate_section_before_how_it_was_made(tmp_path: Path) -> None:
    common = load_benchmark("_common")  # the card steps both ship scripts take
    card = tmp_path / "README.md"
    training_card = "> warning\n\n## Training data\nx\n"
    card.write_text("# uptake4\n" + training_card + "\n" + replace_marked("", "gate", "## Input gate and calibration\nfitted").lstrip())
    gate = common.gate_section(card)
    title, rest = common.split_card(card)
    assert title == "# uptake4" and "gate:start" not in rest and rest.strip() == training_card.strip()
    common.write_card_text(card, [title, "", "## Results", "", *gate, "## How it was made", "", "text"], rest)
    text = card.read_text()
    assert text.index("<!-- gate:start -->") < text.index("## How it was made") < text.index(common.MARKER)
    assert marked_content(text, "gate") == "## Input gate and calibration\nfitted"
    assert common.gate_section(card) == gate and common.split_card(card)[1].strip() == training_card.strip()  # a --skip-train rerun keeps it
