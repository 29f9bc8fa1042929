"""``register_training_sources``: plugins offer extra data to ``scintipipe train``, for the training fold only.

A one-file plugin offers ``--add-scans CSV``; the scans it lists join the training fold
after the split, validation stays the real held-out files, and refusals come before training.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scintipipe.errors import RegistrationError
from scintipipe.plugins import make_plugin_manager, training_sources
from scintipipe.testing import run_cli

#: a one-file plugin offering ``scintipipe train --add-scans CSV`` (repeatable)
SOURCE_PLUGIN = """
import csv
from pathlib import Path

from scintipipe.api import ExtraTraining, hookimpl


def read_rows(csv_path):
    folder = Path(csv_path).parent
    with open(csv_path, newline="") as handle:
        return [(folder / row["file"], row["label"]) for row in csv.DictReader(handle)]


def add_scans(values, context):
    extras = []
    for value in values:
        if not Path(value).is_file():
            raise ValueError(f"{value} is not a file,label CSV")
        extras.append(ExtraTraining(f"scans listed in {Path(value).name}", rows=lambda counts, value=value: read_rows(value), tag="extra"))
    (Path(context.out_dir).parent / "source_context.txt").write_text(f"{context.recipe['task']} {context.resume}")
    return extras


@hookimpl
def register_training_sources(register):
    register.source("add_scans", add_scans, "Add the scans of a file,label CSV to the training fold.", metavar="CSV")
"""


def plugin_folder(folder: Path, **plugins: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in plugins.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return folder


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 simulated centre-a uptake4 scans (4 per label) and 4 others in ``extra/`` (one per label), listed two per CSV."""
    root = tmp_path_factory.mktemp("train-sources")
    run_cli("simulate", "--task", "uptake4", "--n", "16", "--seed", "3", "--center", "a", "--class-mix", "balanced", "--out", root / "real")
    run_cli("simulate", "--task", "uptake4", "--n", "4", "--seed", "9", "--center", "a", "--class-mix", "balanced", "--out", root / "extra")
    rows = (root / "extra/labels.csv").read_text().splitlines()
    (root / "extra/first.csv").write_text("\n".join([rows[0], *rows[1:3]]) + "\n")
    (root / "extra/second.csv").write_text("\n".join([rows[0], *rows[3:5]]) + "\n")
    return root


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plugin_folder(tmp_path_factory.mktemp("plugins"), add_scans_plugin=SOURCE_PLUGIN)


def train_args(scans: Path, out: Path, *extra: str | Path) -> list[str | Path]:
    real = scans / "real"
    return [
        "train",
        "--bundle",
        "uptake4",
        "--data",
        real,
        "--labels",
        real / "labels.csv",
        "--out",
        out,
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def test_help_lists_the_source_after_trains_own_options(plugins: Path) -> None:
    text = " ".join(run_cli("--plugins-dir", plugins, "train", "--help").output.split())
    assert "--add-scans CSV" in text and "Add the scans of a file,label CSV" in text and "plugin add_scans_plugin" in text
    assert text.index("--add-scans") > text.index("--progress")
    assert "--add-scans" not in run_cli("train", "--help").output


def test_the_sources_scans_join_the_training_fold_only(tmp_path: Path, scans: Path, plugins: Path) -> None:
    out = tmp_path / "bundle"
    flags = ("--add-scans", scans / "extra/first.csv", "--add-scans", scans / "extra/second.csv")
    result = run_cli("--plugins-dir", plugins, *train_args(scans, out, *flags))
    card = (out / "docs/README.md").read_text()
    assert "Training views: 16" in card  # 12 real training views and 2 + 2 from the source
    assert "Validation views: 4" in card  # the real held-out files, as without the source
    for name in ("first.csv", "second.csv"):
        assert f"scans listed in {name}: 2 views added to the training fold only" in result.output
        assert f"Extra training data (training fold only, never validation): scans listed in {name}" in card
    assert (tmp_path / "source_context.txt").read_text() == "uptake4 False"


def test_a_refused_value_is_a_usage_error_before_training(tmp_path: Path, scans: Path, plugins: Path) -> None:
    out = tmp_path / "bundle"
    result = run_cli("--plugins-dir", plugins, *train_args(scans, out, "--add-scans", tmp_path / "none.csv"), expect_exit=2)
    assert f"--add-scans: {tmp_path / 'none.csv'} is not a file,label CSV" in result.output
    assert not out.exists()


def test_a_source_that_repeats_a_real_file_is_refused(tmp_path: Path, scans: Path, plugins: Path) -> None:
    result = run_cli("--plugins-dir", plugins, *train_args(scans, tmp_path / "bundle", "--add-scans", scans / "real/labels.csv"), expect_exit=2)
    assert "are also real labelled files and would leak into training or validation" in result.output


def test_sources_go_with_one_training_process(tmp_path: Path, scans: Path, plugins: Path) -> None:
    args = train_args(scans, tmp_path / "bundle", "--add-scans", scans / "extra/first.csv", "--nproc", "2")
    result = run_cli("--plugins-dir", plugins, *args, expect_exit=2)
    assert "go with one training process" in result.output


def test_a_flag_train_already_has_is_refused_naming_the_plugin(tmp_path: Path) -> None:
    body = """
    from scintipipe.api import hookimpl

    @hookimpl
    def register_training_sources(register):
        register.source("epochs", lambda values, context: [])
    """
    folder = plugin_folder(tmp_path / "plugins", greedy=body)
    result = run_cli("--plugins-dir", folder, "train", "--help", expect_exit=1)
    assert "plugin 'greedy' offered training source 'epochs', but scintipipe train already has --epochs" in result.output


def test_a_taken_or_invalid_name_is_refused_naming_the_plugins(tmp_path: Path) -> None:
    folder = plugin_folder(tmp_path / "plugins", add_scans_plugin=SOURCE_PLUGIN, copycat=SOURCE_PLUGIN)
    with pytest.raises(RegistrationError, match="training source 'add_scans' is registered by both plugin") as caught:
        training_sources(make_plugin_manager(plugins_dir=folder, load_entry_points=False))
    assert "plugin 'add_scans_plugin'" in str(caught.value) and "plugin 'copycat'" in str(caught.value)
    bad = SOURCE_PLUGIN.replace('register.source("add_scans"', 'register.source("--add-scans"')
    folder = plugin_folder(tmp_path / "bad", dashes=bad)
    with pytest.raises(RegistrationError, match="plugin 'dashes' registered training source '--add-scans': a name must be a Python identifier"):
        training_sources(make_plugin_manager(plugins_dir=folder, load_entry_points=False))
