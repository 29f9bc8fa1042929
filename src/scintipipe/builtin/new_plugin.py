"""Built-in ``new-plugin`` command: write a task plugin package that passes its own tests.

Like datasette's cookiecutter template, but a command, because nothing can be fetched. The
files come from the package data in ``scintipipe/templates/plugin/`` (``string.Template``,
see its README); the bundle is written here with random weights from the core's
``uptake4`` recipe, relabelled for the new task.
"""

from __future__ import annotations

import keyword
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import click

from scintipipe import hookimpl

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "plugin"

#: a plugin name: lowercase letters and digits, words joined by single hyphens or underscores
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
#: a task or label name: a lowercase Python identifier (labels become ``prob_<label>`` columns and file names)
IDENTIFIER_PATTERN = re.compile(r"[a-z][a-z0-9_]*")

DEFAULT_LABELS = ("normal", "abnormal")

NEW_PLUGIN_EXAMPLES = """
\b
Examples:
  scintipipe new-plugin goitre --labels euthyroid,diffuse_goitre,nodular_goitre
  scintipipe new-plugin scintipipe-parathyroid --task parathyroid --labels absent,adenoma --out plugins/
  pip install -e scintipipe-goitre && pytest scintipipe-goitre/tests

\b
Writes OUT/scintipipe-NAME/:
  pyproject.toml                   the `scintipipe` entry point (TASK = "scintipipe_NAME.plugin")
  src/scintipipe_NAME/__init__.py  TASK, LABELS, BUNDLE_DIR
  src/scintipipe_NAME/plugin.py    register_tasks (task + bundle), register_simulators
  src/scintipipe_NAME/simulator.py an example simulator (labels differ in thyroid uptake only)
  src/scintipipe_NAME/bundle/      a MONAI bundle with random weights (train it: see README.md)
  tests/                           pytest, passing as written: installed, listed, simulate, run
  README.md, LICENSE               Apache-2.0, as scintipipe

The plugin imports from scintipipe.api only. An existing folder is never overwritten.
"""


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by.

    Attributes:
        dist: the distribution and folder name (``scintipipe-goitre``).
        package: the import name (``scintipipe_goitre``).
        task: the task, bundle and entry-point name (``goitre``).
        labels: the task's labels in network output order.
    """

    dist: str
    package: str
    task: str
    labels: tuple[str, ...]


def plugin_names(name: str, task: str | None = None, labels: str | None = None) -> PluginNames:
    """Check the command's arguments and derive the plugin's names.

    Args:
        name: ``NAME``, with or without the ``scintipipe-`` prefix.
        task: ``--task``; default ``NAME`` without the prefix, hyphens as underscores.
        labels: ``--labels``, comma-separated; default ``normal,abnormal``.

    Raises:
        click.BadParameter: naming the argument and what is wrong with it.

    Example:
        >>> plugin_names("scintipipe-goitre", labels="small,large")
        PluginNames(dist='scintipipe-goitre', package='scintipipe_goitre', task='goitre', labels=('small', 'large'))
    """
    short = name[len("scintipipe-") :] if name.startswith("scintipipe-") else name
    if not NAME_PATTERN.fullmatch(short):
        raise click.BadParameter(
            f"{name!r} is not a plugin name: use lowercase letters and digits, starting with a letter, words joined by single hyphens or underscores (e.g. goitre, bone-scan)",
            param_hint="NAME",
        )
    task = task if task is not None else short.replace("-", "_")
    if not IDENTIFIER_PATTERN.fullmatch(task) or keyword.iskeyword(task):
        raise click.BadParameter(
            f"{task!r} is not a task name: use lowercase letters, digits and underscores, starting with a letter", param_hint="--task"
        )
    label_list = tuple(part.strip() for part in labels.split(",")) if labels is not None else DEFAULT_LABELS
    bad = [label for label in label_list if not IDENTIFIER_PATTERN.fullmatch(label)]
    if bad:
        raise click.BadParameter(
            f"{', '.join(map(repr, bad))}: a label is lowercase letters, digits and underscores, starting with a letter", param_hint="--labels"
        )
    if len(label_list) < 2:
        raise click.BadParameter(f"a task needs two or more labels, got {len(label_list)}", param_hint="--labels")
    duplicates = sorted({label for label in label_list if label_list.count(label) > 1})
    if duplicates:
        raise click.BadParameter(f"label {', '.join(map(repr, duplicates))} given more than once", param_hint="--labels")
    return PluginNames(dist=f"scintipipe-{short}", package=f"scintipipe_{short.replace('-', '_')}", task=task, labels=label_list)


def template_values(names: PluginNames) -> dict[str, str]:
    """The ``${...}`` values the templates are filled with."""
    from scintipipe import __version__

    return {
        "dist": names.dist,
        "package": names.package,
        "task": names.task,
        "labels_tuple": "(" + ", ".join(repr(label) for label in names.labels) + ("," if len(names.labels) == 1 else "") + ")",
        "labels_text": ", ".join(names.labels),
        "labels_md": ", ".join(f"`{label}`" for label in names.labels),
        "scintipipe_version": __version__,
    }


def render_templates(folder: Path, names: PluginNames, template_dir: Path = TEMPLATE_DIR) -> list[Path]:
    """Write the template tree into ``folder`` (which must not exist yet).

    Returns:
        The files written, relative to ``folder``.
    """
    values = template_values(names)
    written = []
    for source in sorted(path for path in template_dir.rglob("*") if path.is_file()):
        if "__pycache__" in source.parts:
            continue
        relative = Path(*(names.package if part == "PACKAGE" else part for part in source.relative_to(template_dir).parts))
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".tmpl":
            target = target.with_suffix("")
            target.write_text(Template(source.read_text()).substitute(values))
        else:
            shutil.copyfile(source, target)
        written.append(target.relative_to(folder))
    return written


def write_random_bundle(bundle_dir: Path, names: PluginNames) -> Path:
    """Write the plugin's bundle: the core ``uptake4`` recipe for this task's labels, random weights."""
    import torch

    from scintipipe.training.recipe import load_recipe
    from scintipipe.training.train import build_network, write_recipe_bundle

    recipe = load_recipe("uptake4")
    recipe.update(
        name=names.task,
        task=names.task,
        labels=list(names.labels),
        description=f"{names.task}: {', '.join(names.labels)}. Written by scintipipe new-plugin with random weights; train it with scintipipe train.",
    )
    for key in ("trained_on", "source"):
        recipe.pop(key, None)
    torch.manual_seed(0)
    network = build_network(recipe)
    card = (
        f"# {names.task}\n\n"
        f"Labels, in output order: {', '.join(names.labels)}.\n\n"
        "**Random weights**: written by `scintipipe new-plugin`, never trained. Its predictions mean\n"
        "nothing. Train it with the recipe in `configs/recipe.json`:\n\n"
        f"    scintipipe simulate --task {names.task} --n 2000 --seed 1 --center randomised --class-mix balanced --out data/train\n"
        f"    scintipipe train --bundle {names.task} --labels data/train/labels.csv --out trained/\n\n"
        "Not for clinical use.\n"
    )
    return write_recipe_bundle(bundle_dir, recipe, network.state_dict(), card)


def registered_task_owner(ctx: click.Context, task: str) -> str | None:
    """The plugin that already registers ``task``, or ``None``."""
    from scintipipe.cli import plugin_manager
    from scintipipe.plugins import tasks_and_bundles

    register = tasks_and_bundles(plugin_manager(ctx))
    if task in register.tasks:
        return register.owner(task) or "another plugin"
    if task in register.bundles:
        return register.bundles[task].plugin or "another plugin"
    return None


@click.command("new-plugin", epilog=NEW_PLUGIN_EXAMPLES)
@click.argument("name")
@click.option("--task", "-t", default=None, help="Task (and bundle) name; default: NAME without 'scintipipe-', hyphens as underscores.")
@click.option(
    "--labels", "-l", default=None, metavar="A,B,...", help="The task's labels in network output order, comma-separated.  [default: normal,abnormal]"
)
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write scintipipe-NAME/ in.",
)
@click.pass_context
def new_plugin(ctx: click.Context, name: str, task: str | None, labels: str | None, out_dir: Path) -> None:
    """Write a task plugin package (entry point, task, simulator, bundle, tests) ready to install."""
    names = plugin_names(name, task, labels)
    folder = out_dir / names.dist
    if folder.exists():
        raise click.UsageError(f"{folder} already exists; new-plugin never overwrites (choose another NAME or --out)")
    owner = registered_task_owner(ctx, names.task)
    if owner is not None:
        raise click.BadParameter(
            f"task {names.task!r} is already registered by plugin {owner!r}; choose another", param_hint="--task" if task else "NAME"
        )
    try:
        files = render_templates(folder, names)
        write_random_bundle(folder / "src" / names.package / "bundle", names)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written plugin left behind
        raise
    click.echo(
        f"wrote {folder}/ ({len(files)} files and the bundle src/{names.package}/bundle/): task {names.task!r}, labels {', '.join(names.labels)}"
    )
    click.echo(f"next: pip install -e {folder} && pytest {folder / 'tests'}")


@hookimpl
def register_commands(register: Any) -> None:
    """Add ``scintipipe new-plugin``."""
    register.command(new_plugin)
