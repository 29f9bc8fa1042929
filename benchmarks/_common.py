"""Helpers the benchmark scripts share: the one place for each piece more than one script needs.

Not a benchmark itself. The scripts run as ``python benchmarks/NAME.py`` from the repository
root, which puts ``benchmarks/`` first on ``sys.path``; the tests load some of them by file
path, so every script that imports this module puts its own folder on ``sys.path`` first.

Three groups:

- running ``scintipipe`` in child processes (:func:`simulate_args`, :func:`simulate_once`,
  :func:`run_no_report`) and recording the checkout (:func:`git_commit`);
- scoring predicted labels against each case's accepted labels and comparing two
  classifiers on the same cases (:func:`score_predictions`, :func:`mcnemar_exact`), for the
  benchmarks that judge a candidate against the shipped model;
- the steps of the ship scripts (``ship_uptake4.py``, ``ship_disease.py``), which rebuild a
  shipped bundle: simulate its data sets, train, refit the input gate, evaluate, and write the
  model card around the training card ``scintipipe train`` wrote.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the repository root (the scripts' working folder)
ROOT = Path(__file__).resolve().parents[1]
#: the command line run in a child process with this interpreter: ``python -m scintipipe``
SCINTIPIPE = [sys.executable, "-m", "scintipipe"]

# ---- scintipipe in child processes ----------------------------------------------------


def simulate_args(task: str, n: int, seed: int, center: str, out: str | Path, extra: Sequence[str] = ()) -> list[str]:
    """The ``scintipipe simulate`` arguments that make one data set, without the program.

    Args:
        task: the simulator task (``--task``).
        n: how many scans (``--n``).
        seed: the random seed (``--seed``).
        center: the centre profile (``--center``).
        out: the output folder (``--out``), as the command should show it.
        extra: further arguments, placed before ``--out``.

    Returns:
        ``["simulate", "--task", TASK, "--n", N, "--seed", SEED, "--center", CENTER, *EXTRA, "--out", OUT]``.
    """
    return ["simulate", "--task", task, "--n", str(n), "--seed", str(seed), "--center", center, *extra, "--out", str(out)]


def bundle_copy(source: Path, out: Path, key: str, value: Any) -> Path:
    """A copy of the bundle folder ``source`` whose ``metadata.json`` sets ``scintipipe.<key>`` to ``value``.

    Args:
        source: the bundle folder.
        out: the copy's folder (must not exist).
        key: the field of the metadata's ``scintipipe`` block.
        value: its new value; ``None`` removes it.

    Returns:
        ``out``.
    """
    shutil.copytree(source, out)
    path = out / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    fields = metadata.setdefault("scintipipe", {})
    fields.pop(key, None)
    if value is not None:
        fields[key] = value
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return out


def simulate_once(folder: Path, n: int, seed: int, center: str, task: str = "uptake4", extra: Sequence[str] = (), progress: bool = False) -> Path:
    """Simulate a labelled data set into ``folder`` unless its ``labels.csv`` is already there.

    Runs ``python -m scintipipe simulate`` (:func:`simulate_args`) in a child process, in the
    caller's working folder.

    Args:
        folder: the output folder.
        n: how many scans.
        seed: the random seed.
        center: the centre profile.
        task: the simulator task.
        extra: further ``simulate`` arguments (for example ``["--class-mix", "balanced"]``).
        progress: show the simulator's progress bar (otherwise ``--no-progress``).

    Returns:
        ``folder``.

    Raises:
        subprocess.CalledProcessError: when the simulation fails.
    """
    if not (folder / "labels.csv").is_file():
        command = [*SCINTIPIPE, *simulate_args(task, n, seed, center, folder, extra)]
        subprocess.run(command if progress else [*command, "--no-progress"], check=True)
    return folder


def run_no_report(bundle: str, targets: Iterable[str | Path], out: Path, threads: int = 1) -> subprocess.CompletedProcess[str]:
    """Classify files with ``scintipipe run --no-report --no-explain`` on the CPU, in a child process.

    Args:
        bundle: a registered bundle name or a bundle folder (``--bundle``).
        targets: the files and folders to classify.
        out: the run's output folder (``--out``).
        threads: ``--threads``, and the child's ``OMP_NUM_THREADS``.

    Returns:
        The finished process; its ``stderr`` holds the run's log.

    Raises:
        RuntimeError: when the run wrote no ``predictions.csv``.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [
        *SCINTIPIPE,
        "run",
        "--bundle",
        bundle,
        "--no-report",
        "--no-explain",
        "--no-progress",
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--out",
        str(out),
        *map(str, targets),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if not (out / "predictions.csv").is_file():
        raise RuntimeError(f"scintipipe run --bundle {bundle} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def git_commit() -> str:
    """The checkout's short commit hash (``unknown`` outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---- the ship scripts -------------------------------------------------------------------
#
# A ship script's data sets: TRAIN_SETS ``[(folder, n, seed, centre, extra simulate arguments)]``
# and TEST_SETS ``{key: (folder, n, seed, centre, extra simulate arguments, description)}``,
# folders relative to ``ROOT / "data"``.

#: where the ship scripts' model card continues with the card ``scintipipe train`` wrote
MARKER = "<!-- below: the card written by scintipipe train -->"
#: the gate section ``scintipipe gate fit`` writes (``<!-- gate:start -->``): placed before "How it was made"
GATE_MARKER = "gate"
#: the learned score used when the old bundle records none
DEFAULT_GATE_METHOD = "mahalanobis_blocks"
#: TEST_SETS keys the gate is fitted on as held-out in-distribution folders, and as external folders
GATE_HELD_OUT = ("internal", "exports")
GATE_EXTERNAL = ("external",)
#: a ship script's simulated test sets: ``{key: (folder, simulate command, description)}`` (:func:`simulate_sets`)
Tests = dict[str, tuple[Path, list[str], str]]


def sh(cmd: list[str], threads: int) -> None:
    """Print a command and run it in the repository root; stop on failure.

    Args:
        cmd: the command.
        threads: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` of the child process.

    Raises:
        subprocess.CalledProcessError: when the command fails.
    """
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def repo_relative(path: Path) -> str:
    """``path`` as the recorded commands show it: relative to the repository when inside it, else absolute.

    A ``--data`` folder outside the checkout (another disk, a shared worktree's data) is
    then named in full instead of failing. Inside is judged on the path as written (made
    absolute, symlinks kept), so a ``data`` symlink to another disk still shows as ``data/...``.
    """
    written = Path(os.path.abspath(path))
    if written.is_relative_to(ROOT):
        return str(written.relative_to(ROOT))
    resolved = written.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def simulate_command(folder: Path, n: int, seed: int, center: str, extra: list[str] | None = None, task: str = "uptake4") -> list[str]:
    """The ``scintipipe simulate`` command that makes ``folder``, as the model card and the gate record it.

    Args:
        folder: the output folder (shown relative to the repository when inside it).
        n: how many scans.
        seed: the random seed.
        center: the centre profile.
        extra: further ``simulate`` arguments.
        task: the simulator task.
    """
    return ["scintipipe", *simulate_args(task, n, seed, center, repo_relative(folder), extra or []), "--no-progress"]


def simulate_sets(data: Path, train_sets: list, test_sets: dict, threads: int, task: str) -> tuple[list[list[str]], Tests]:
    """Simulate a ship script's training and test sets, each unless its folder already has ``labels.csv``.

    Args:
        data: the data folder.
        train_sets: the script's TRAIN_SETS.
        test_sets: the script's TEST_SETS.
        threads: the simulator's threads (:func:`sh`).
        task: the simulator task.

    Returns:
        ``(train_commands, tests)``: the :func:`simulate_command` of every training set, and
        :data:`Tests` for the test sets.
    """

    def simulate(name: str, n: int, seed: int, center: str, extra: list[str]) -> list[str]:
        cmd = simulate_command(data / name, n, seed, center, extra, task)
        if not (data / name / "labels.csv").is_file():
            sh(cmd, threads)
        return cmd

    train_commands = [simulate(name, n, seed, center, extra) for name, n, seed, center, extra in train_sets]
    tests = {
        key: (data / folder, simulate(folder, n, seed, center, extra), text) for key, (folder, n, seed, center, extra, text) in test_sets.items()
    }
    return train_commands, tests


def combined_labels(folders: list[Path], base: Path, out_csv: Path) -> int:
    """Write one ``file,label`` CSV over several simulated folders.

    Args:
        folders: folders with a ``labels.csv``.
        base: the folder the written paths are relative to.
        out_csv: the CSV to write.

    Returns:
        The number of rows written.
    """
    rows = []
    for folder in folders:
        with (folder / "labels.csv").open(newline="") as handle:
            rows += [((folder / row["file"]).relative_to(base).as_posix(), row["label"]) for row in csv.DictReader(handle)]
    with out_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows(rows)
    return len(rows)


def train_command(bundle: str, recipe: str, labels_csv: Path, out: Path, description: str, threads: int, epochs: int = 0) -> list[str]:
    """The ``scintipipe train`` command that rebuilds a shipped bundle from ``data/``.

    Args:
        bundle: the bundle's registered name (``--bundle``).
        recipe: the recipe, relative to the repository root.
        labels_csv: the training labels (:func:`combined_labels`), inside the repository.
        out: the bundle folder, inside the repository.
        description: ``--data-description`` for the training card.
        threads: ``--threads``.
        epochs: ``--epochs`` (0: the recipe's).
    """
    cmd = [
        "scintipipe",
        "train",
        "--bundle",
        bundle,
        "--recipe",
        recipe,
        "--data",
        "data",
        "--labels",
        repo_relative(labels_csv),
        "--out",
        repo_relative(out),
        "--data-description",
        description,
        "--threads",
        str(threads),
        "--no-progress",
    ]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    return cmd


def old_gate(out: Path) -> dict:
    """The bundle's current ``configs/gate.json`` (``{}`` when absent), read before the folder is cleared."""
    path = out / "configs/gate.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def seed_gate(out: Path, old: dict) -> None:
    """Write the ``configs/gate.json`` keys a retrained bundle keeps (the radionuclides) into the cleared ``out``.

    ``scintipipe train --bundle NAME`` keeps them from the bundle NAME registers; when that
    is ``out`` itself, this is where it finds them after the old bundle was removed.

    Args:
        out: the cleared bundle folder.
        old: the old ``configs/gate.json`` (:func:`old_gate`).
    """
    from scintipipe.bundle_writer import INHERITED_GATE_KEYS

    kept = {key: old[key] for key in INHERITED_GATE_KEYS if old.get(key)}
    if kept:
        (out / "configs").mkdir(parents=True, exist_ok=True)
        (out / "configs/gate.json").write_text(json.dumps(kept, indent=2) + "\n")


def keep_training_outputs(out: Path, keep: Path, names: Iterable[str]) -> None:
    """Move what training leaves in the bundle (checkpoint, logs) into ``keep``, so that it is not shipped.

    Args:
        out: the bundle folder.
        keep: the folder to move them to; emptied first.
        names: the files and folders to move, where present.
    """
    if keep.exists():
        shutil.rmtree(keep)
    keep.mkdir(parents=True)
    for name in names:
        if (out / name).exists():
            shutil.move(str(out / name), str(keep / name))


#: bundle files a reship carries over from the bundle it replaces: added to the shipped
#: bundle after training (by hand or another script), not written by ``scintipipe train``
CARRIED_ON_RETRAIN = ("configs/train.json", "configs/multi_gpu_train.json")


#: the changelog entry of a reship that was not told what changed (``--changelog``)
GENERIC_CHANGELOG = "retrained afresh (new weights and gate); see the model card"


def carry_over(out: Path, files: dict[str, bytes], old_metadata: dict, changelog: str = "") -> None:
    """Put back what a reship keeps from the bundle it replaces.

    The files of :data:`CARRIED_ON_RETRAIN` are written back as they were, and
    ``configs/metadata.json`` keeps the old version history: the version becomes the old
    one with its minor number raised, with a changelog entry for the retraining above the
    old entries.

    Args:
        out: the retrained bundle folder.
        files: relative path -> content, read before the folder was cleared.
        old_metadata: the old ``configs/metadata.json`` (``{}`` when there was none).
        changelog: what changed, for the new version's entry (default
            :data:`GENERIC_CHANGELOG`; the ship scripts' ``--changelog``).
    """
    for name, content in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
    if not old_metadata.get("version"):
        return
    major, minor, *_ = (str(old_metadata["version"]).split(".") + ["0", "0"])[:3]
    version = f"{major}.{int(minor) + 1}.0"
    path = out / "configs/metadata.json"
    metadata = json.loads(path.read_text())
    metadata["version"] = version
    metadata["changelog"] = {version: changelog or GENERIC_CHANGELOG, **old_metadata.get("changelog", {})}
    path.write_text(json.dumps(metadata, indent=2) + "\n")


def retrain(out: Path, train_cmd: list[str], threads: int, keep: Path, moved: Iterable[str], clear: Sequence[str] = (), changelog: str = "") -> dict:
    """Train the bundle afresh: clear it, keep the inherited gate settings, train, move the training outputs out.

    What training does not write is carried over (:func:`carry_over`): the configs of
    :data:`CARRIED_ON_RETRAIN` and the version history.

    Args:
        out: the bundle folder.
        train_cmd: the training command (:func:`train_command`).
        threads: the child process's threads (:func:`sh`).
        keep: where the training outputs go (:func:`keep_training_outputs`).
        moved: the training outputs to move there, where present.
        clear: the subfolders of ``out`` to remove before training; empty: the whole folder.
        changelog: what changed, for the new version's changelog entry (:func:`carry_over`).

    Returns:
        The old ``configs/gate.json`` (:func:`old_gate`), for :func:`refit_gate`.
    """
    old = old_gate(out)
    carried = {name: (out / name).read_bytes() for name in CARRIED_ON_RETRAIN if (out / name).is_file()}
    metadata_path = out / "configs/metadata.json"
    old_metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    if clear:
        for child in clear:
            shutil.rmtree(out / child, ignore_errors=True)
    elif out.exists():
        shutil.rmtree(out)
    seed_gate(out, old)
    sh(train_cmd, threads)
    keep_training_outputs(out, keep, moved)
    carry_over(out, carried, old_metadata, changelog)
    return old


def gate_fit_command(bundle: str, data: Path, train_sets: list, test_sets: dict, method: str, task: str, threads: int) -> list[str]:
    """The ``scintipipe gate fit`` command a reship runs after training.

    The folders are the shipped gate's (its ``configs/gate.json`` ``command``): every
    training set as ``--train``, the :data:`GATE_HELD_OUT` test sets as ``--held-out``
    and the :data:`GATE_EXTERNAL` ones as ``--external``; the simulate commands that make
    them are recorded (``--data-command``) for the card's reproduce block.

    Args:
        bundle: the bundle's registered name (or folder) as ``--bundle``.
        data: the data folder.
        train_sets: ``[(folder, n, seed, centre, extra), ...]`` (the script's TRAIN_SETS).
        test_sets: ``{key: (folder, n, seed, centre, extra, text)}`` (the script's TEST_SETS).
        method: the learned score.
        task: the simulator task.
        threads: ``--threads``.
    """

    def rel(folder):
        return repo_relative(data / folder)

    cmd = ["scintipipe", "gate", "fit", "--bundle", bundle]
    cmd += [x for name, *_ in train_sets for x in ("--train", rel(name))]
    cmd += [x for key in GATE_HELD_OUT for x in ("--held-out", rel(test_sets[key][0]))]
    cmd += [x for key in GATE_EXTERNAL for x in ("--external", rel(test_sets[key][0]))]
    cmd += ["--method", method]
    made = [simulate_command(data / name, n, seed, center, extra, task) for name, n, seed, center, extra in train_sets]
    gated = [test_sets[key] for key in (*GATE_HELD_OUT, *GATE_EXTERNAL)]
    made += [simulate_command(data / name, n, seed, center, extra, task) for name, n, seed, center, extra, _ in gated]
    cmd += [x for c in made for x in ("--data-command", " ".join(c))]
    return cmd + ["--cache", "data/gate-cache", "--threads", str(threads), "--no-progress"]


def refit_gate(bundle: str, old: dict, data: Path, train_sets: list, test_sets: dict, task: str, threads: int) -> None:
    """Run :func:`gate_fit_command` with the learned score the old gate used (:data:`DEFAULT_GATE_METHOD` without one).

    Args:
        bundle: the bundle's registered name (or folder).
        old: the old ``configs/gate.json`` (:func:`old_gate`).
        data: the data folder.
        train_sets: the script's TRAIN_SETS.
        test_sets: the script's TEST_SETS.
        task: the simulator task.
        threads: ``--threads``.
    """
    method = (old.get("ood") or {}).get("method", DEFAULT_GATE_METHOD)
    sh(gate_fit_command(bundle, data, train_sets, test_sets, method, task, threads), threads)


def evaluate_sets(out: Path, tests: Tests, dest: str, threads: int) -> dict[str, dict]:
    """``scintipipe evaluate`` the bundle on every test set.

    The per-scan ``predictions.csv`` is deleted (regenerate it, don't commit it).

    Args:
        out: the bundle folder, inside the repository.
        tests: the test sets (:data:`Tests`).
        dest: the report folder relative to the repository root, with ``{key}`` for the test set.
        threads: the child processes' threads (:func:`sh`).

    Returns:
        ``{key: the evaluation's metrics.json}``.
    """
    reports = {}
    for key, (folder, _, _) in tests.items():
        target = ROOT / dest.format(key=key)
        sh(
            [
                "scintipipe",
                "evaluate",
                "--bundle",
                repo_relative(out),
                "--labels",
                repo_relative(folder / "labels.csv"),
                "--out",
                repo_relative(target),
                repo_relative(folder),
                "--no-progress",
            ],
            threads,
        )
        reports[key] = json.loads((target / "metrics.json").read_text())
        (target / "predictions.csv").unlink(missing_ok=True)
    return reports


def record_eval_metrics(out: Path, reports: dict[str, dict], tests: Tests) -> None:
    """Add every test set's accuracy, size and description to the bundle's ``configs/metadata.json`` (``eval_metrics``).

    Args:
        out: the bundle folder.
        reports: :func:`evaluate_sets`'s reports.
        tests: the test sets (:data:`Tests`).
    """
    metadata_path = out / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata.setdefault("eval_metrics", {}).update(
        {key: {"accuracy": r["overall"]["accuracy"]["value"], "n": r["n"], "data": tests[key][2]} for key, r in reports.items()}
    )
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")


# ---- scoring ---------------------------------------------------------------------------


def score_predictions(predicted: Sequence[str | None], truth: Sequence[tuple[str, ...]], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy (Wilson 95 %) and recall per class of predicted labels.

    Args:
        predicted: one label per case; ``None`` (refused, failed, not run) counts as wrong.
        truth: per case the accepted labels, the case's own class first (a second entry
            where either answer counts, e.g. nodular goitre as focal or heterogeneous).
        labels: the classes to report recall for, in order (those with cases).

    Returns:
        ``correct`` (a boolean array, one per case), ``k``, ``n``, ``accuracy``,
        ``wilson95`` and ``recall`` (``{label: {"k", "n", "sensitivity"}}``).
    """
    from scintipipe.evaluation.intervals import wilson_interval

    correct = np.array([p is not None and p in accepted for p, accepted in zip(predicted, truth, strict=True)], dtype=bool)
    n, k = len(truth), int(correct.sum())
    interval = wilson_interval(k, n) if n else None
    recall = {}
    for label in labels:
        index = [i for i, accepted in enumerate(truth) if accepted[0] == label]
        if index:
            hits = int(correct[index].sum())
            recall[label] = {"k": hits, "n": len(index), "sensitivity": hits / len(index)}
    return {"correct": correct, "k": k, "n": n, "accuracy": k / n if n else None, "wilson95": list(interval) if interval else None, "recall": recall}


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, Any]:
    """Exact (binomial) McNemar test on paired correctness: the test the ship rules name.

    Unlike :func:`scintipipe.evaluation.paired.mcnemar_test` it never switches to the
    chi-square approximation, so a rule's p-value does not depend on the number of
    discordant cases.
    """
    from scipy.stats import binomtest

    only_a = int(np.sum(a_correct & ~b_correct))
    only_b = int(np.sum(~a_correct & b_correct))
    p = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return {"only_first_correct": only_a, "only_second_correct": only_b, "p_value": p}


def pct(entry: dict | None) -> str:
    """A report entry's ``value`` as a percentage with two decimals (``-`` when there is none)."""
    if not entry or entry.get("value") is None:
        return "-"
    return f"{100 * entry['value']:.2f}"


def split_card(card_path: Path) -> tuple[str, str]:
    """The card's title line and the training card ``scintipipe train`` wrote below :data:`MARKER`.

    The gate section (:func:`gate_section`) is left out of the training part: the ship
    scripts place it themselves.

    Args:
        card_path: the bundle's ``docs/README.md``.
    """
    from scintipipe.docs_markers import remove_marked

    title, _, rest = card_path.read_text().partition("\n")
    if MARKER in rest:  # a card a ship script wrote before (--skip-train): keep only the training part
        rest = rest.split(MARKER, 1)[1]
    return title, remove_marked(rest, GATE_MARKER)


def gate_section(card_path: Path) -> list[str]:
    """The card's generated gate section, with its markers, as card lines (``[]`` when there is none).

    Args:
        card_path: the bundle's ``docs/README.md``.
    """
    from scintipipe.docs_markers import marked_block, marked_content

    content = marked_content(card_path.read_text(), GATE_MARKER) if card_path.is_file() else None
    return [marked_block(GATE_MARKER, content), ""] if content else []


def write_card_text(card_path: Path, parts: list[str], rest: str) -> None:
    """Write the card: ``parts`` (the script's sections), then :data:`MARKER` and the training card.

    Args:
        card_path: the bundle's ``docs/README.md``.
        parts: the card's lines above the training card.
        rest: the training card (:func:`split_card`).
    """
    card_path.write_text("\n".join([*parts, "", MARKER, rest.lstrip("\n")]))


def glance_lines(reports: dict, tests: dict, labels: list[str]) -> list[str]:
    """One bullet per evaluated set: accuracy with its Wilson interval and per-class sensitivity.

    Args:
        reports: :func:`evaluate_sets`'s reports.
        tests: the test sets (:data:`Tests`).
        labels: the classes, in the card's order.
    """
    return [
        f"- {key.capitalize()} ({tests[key][2]}, {r['n']} scans): overall accuracy **{pct(r['overall']['accuracy'])} %** "
        f"(95 % CI {100 * r['overall']['accuracy']['lower']:.1f}-{100 * r['overall']['accuracy']['upper']:.1f}); sensitivity "
        + ", ".join(f"{label.replace('_', ' ')} {pct(r['per_class'][label]['sensitivity'])} %" for label in labels)
        + "."
        for key, r in reports.items()
    ]


def write_model_card(out: Path, body: list[str], how_it_was_made: str) -> None:
    """Write the bundle's model card: title, ``body``, the gate section, "How it was made", then the training card.

    The title, the gate section and the training card are the card's own (:func:`split_card`,
    :func:`gate_section`), so a ``--skip-train`` rerun keeps them.

    Args:
        out: the bundle folder.
        body: the card's lines between the title and the gate section.
        how_it_was_made: the paragraph under "How it was made".
    """
    card_path = out / "docs/README.md"
    gate = gate_section(card_path)
    title, rest = split_card(card_path)
    write_card_text(card_path, [title, "", *body, *gate, "## How it was made", "", how_it_was_made], rest)
