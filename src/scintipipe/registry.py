"""Register objects handed to the registration hooks.

Plugins add tasks, bundles, commands, simulators, options, named alternatives (segmenters,
explain methods), served models and training sources by calling methods on these objects, never by mutating module globals. A
name registered twice is refused with both plugins named. :func:`parse_class_mix` reads a simulator's ``--class-mix`` option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from scintipipe.errors import RegistrationError


@dataclass(frozen=True)
class Task:
    """A classification task: an ordered label set.

    Attributes:
        name: task name, e.g. ``uptake4``.
        labels: class names in the order of the network's outputs.
        description: one line for ``scintipipe bundles``.
        plugin: name of the plugin that registered it.
    """

    name: str
    labels: tuple[str, ...]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class BundleEntry:
    """A bundle folder made available under a name.

    Attributes:
        name: the name ``--bundle`` finds it by.
        path: the bundle folder.
        task: the task it solves.
        plugin: name of the plugin that registered it.
        task_labels: the task's labels once every plugin has registered (empty when no
            plugin registers the task); the bundle's own labels must equal them.
    """

    name: str
    path: Path
    task: str
    plugin: str = ""
    task_labels: tuple[str, ...] = ()


class _Register:
    """Common bookkeeping: which plugin is registering, duplicate detection."""

    kind = "item"

    def __init__(self) -> None:
        self.current_plugin = ""
        self._items: dict[str, Any] = {}
        self._owners: dict[str, str] = {}

    def _add(self, name: str | None, item: Any) -> None:
        if not name or not isinstance(name, str):
            raise RegistrationError(f"plugin {self.current_plugin!r} registered a {self.kind} without a name")
        if name in self._items:
            raise RegistrationError(
                f"{self.kind} {name!r} is registered by both plugin {self._owners[name]!r} "
                f"and plugin {self.current_plugin!r}; disable one with SCINTIPIPE_DISABLE_PLUGINS"
            )
        self._items[name] = item
        self._owners[name] = self.current_plugin

    def owner(self, name: str) -> str:
        """Return the plugin that registered ``name``."""
        return self._owners[name]

    def finish(self) -> None:
        """Check what every plugin registered, once all have; :func:`collect` calls it."""


#: the register type :func:`collect` fills and returns
R = TypeVar("R", bound=_Register)


class TaskRegister(_Register):
    """Collects tasks and bundles from ``register_tasks`` hooks."""

    kind = "task"

    def __init__(self) -> None:
        super().__init__()
        self.bundles: dict[str, BundleEntry] = {}
        self._bundle_owners: dict[str, str] = {}

    @property
    def tasks(self) -> dict[str, Task]:
        """Registered tasks by name."""
        return dict(self._items)

    def task(self, name: str, labels: list[str] | tuple[str, ...], description: str = "") -> None:
        """Register a task.

        Args:
            name: unique task name.
            labels: class names in network output order (at least two, unique).
            description: one line describing the task.
        """
        labels = tuple(labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise RegistrationError(f"task {name!r} from plugin {self.current_plugin!r} needs two or more unique labels")
        self._add(name, Task(name, labels, description, self.current_plugin))

    def bundle(self, name: str, path: str | Path, task: str) -> None:
        """Register a bundle folder under a name usable with ``--bundle``.

        Args:
            name: unique bundle name.
            path: the bundle folder (with ``configs/metadata.json``).
            task: the task it solves.
        """
        if name in self.bundles:
            raise RegistrationError(f"bundle {name!r} is registered by both plugin {self._bundle_owners[name]!r} and plugin {self.current_plugin!r}")
        self.bundles[name] = BundleEntry(name, Path(path), task, self.current_plugin)
        self._bundle_owners[name] = self.current_plugin

    def finish(self) -> None:
        """Give each bundle its task's labels and refuse a bundle whose labels differ.

        Raises:
            RegistrationError: a registered bundle declares other labels than its task,
                naming the bundle, the plugin and both label lists.
        """
        from scintipipe.bundle import check_bundle_labels
        from scintipipe.errors import BundleError

        for name, entry in list(self.bundles.items()):
            task = self._items.get(entry.task)
            if task is None:
                continue
            entry = replace(entry, task_labels=task.labels)
            self.bundles[name] = entry
            try:
                check_bundle_labels(entry.name, entry.path, entry.task, task.labels)
            except BundleError as exc:
                raise RegistrationError(f"plugin {entry.plugin!r} registered a bundle that does not fit its task: {exc}") from exc


class CommandRegister(_Register):
    """Collects click commands from ``register_commands`` hooks."""

    kind = "command"

    @property
    def commands(self) -> dict[str, Any]:
        """Registered click commands by name."""
        return dict(self._items)

    def command(self, command: Any) -> None:
        """Add a :class:`click.Command` under its own name."""
        self._add(command.name, command)


SimulatorFactory = Callable[..., Any]


class SimulatorRegister(_Register):
    """Collects per-task simulators from ``register_simulators`` hooks."""

    kind = "simulator"

    @property
    def simulators(self) -> dict[str, SimulatorFactory]:
        """Registered simulators by task name."""
        return dict(self._items)

    def simulator(self, task: str, factory: SimulatorFactory) -> None:
        """Register the simulator for ``task``."""
        self._add(task, factory)


def network_key(name: str) -> str:
    """The registry key of a network name: case and dashes do not matter (``ResNet-18`` is ``resnet_18``)."""
    return name.lower().replace("-", "_")


class NetworkRegister(_Register):
    """Collects classifier networks from ``register_networks`` hooks."""

    kind = "network"

    @property
    def networks(self) -> dict[str, Any]:
        """Registered :class:`scintipipe.networks.NetworkSpec` objects by name."""
        return dict(self._items)

    def network(self, name: str, spec: Any) -> None:
        """Register a network that ``build_network(name, ...)`` and recipes can build.

        Args:
            name: unique network name (looked up ignoring case and dashes).
            spec: a :class:`scintipipe.api.NetworkSpec`: builder, Grad-CAM layer,
                classifier layer and minimum input size.
        """
        if not callable(getattr(spec, "builder", None)):
            raise RegistrationError(f"plugin {self.current_plugin!r} registered network {name!r} without a NetworkSpec (got {type(spec).__name__})")
        self._add(network_key(name) if isinstance(name, str) else name, spec)


class CenterRegister(_Register):
    """Collects simulator acquisition profiles (centres) from ``register_centers`` hooks."""

    kind = "centre"

    @property
    def centers(self) -> dict[str, Any]:
        """Registered :class:`scintipipe.api.CenterProfile` objects by name."""
        return dict(self._items)

    def center(self, profile: Any) -> None:
        """Register a centre under its own name, for ``scintipipe simulate --center NAME``.

        Args:
            profile: a :class:`scintipipe.api.CenterProfile`.
        """
        self._add(getattr(profile, "name", None), profile)


class RecipeRegister(_Register):
    """Collects training recipes (JSON files) from ``register_recipes`` hooks."""

    kind = "recipe"

    @property
    def recipes(self) -> dict[str, Path]:
        """Registered recipe files by name."""
        return dict(self._items)

    def recipe(self, name: str, path: str | Path) -> None:
        """Register a recipe file under a name usable with ``scintipipe train --recipe NAME``.

        Args:
            name: unique recipe name.
            path: the recipe's JSON file (inside your package, so it is installed with it).
        """
        path = Path(path)
        if not path.is_file():
            raise RegistrationError(f"plugin {self.current_plugin!r} registered recipe {name!r} at {path}, which is not a file")
        self._add(name, path)

    def recipe_folder(self, folder: str | Path) -> None:
        """Register every ``*.json`` file in ``folder`` under its file name without ``.json``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise RegistrationError(f"plugin {self.current_plugin!r} registered recipe folder {folder}, which is not a folder")
        for path in sorted(folder.glob("*.json")):
            self.recipe(path.stem, path)


@dataclass(frozen=True)
class TrainingSource:
    """Extra training data a plugin offers ``scintipipe train`` behind a repeatable option (``--augment-with``).

    Attributes:
        name: a Python identifier; the flag is ``--`` and the name with dashes.
        make: ``make(values, context)`` turns every value given for the flag (in order) and
            a :class:`TrainingSourceContext` into a list of
            :class:`scintipipe.api.ExtraTraining`; it raises ``ValueError`` for a value it
            refuses, which the command line answers as a usage error before training.
        help: one line for ``scintipipe train --help``.
        metavar: how ``--help`` shows the value (``GANDIR[:RATIO]``).
        plugin: the plugin that registered it.
    """

    name: str
    make: Callable[..., Any]
    help: str = ""
    metavar: str = "VALUE"
    plugin: str = ""

    @property
    def flag(self) -> str:
        """The command-line flag, ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class TrainingSourceContext:
    """What a training source's ``make`` gets besides the values.

    Attributes:
        out_dir: the new bundle folder; write generated files under it so they stay with
            the bundle (e.g. ``OUT/synthetic-training``).
        recipe: the completed recipe (``task``, ``labels``, ``seed``).
        pm: the plugin manager of the command.
        resume: ``scintipipe train --resume``: files written by the interrupted run may be reused.
    """

    out_dir: Path
    recipe: dict[str, Any]
    pm: Any = None
    resume: bool = False


class TrainingSourceRegister(_Register):
    """Collects the extra training data plugins offer ``scintipipe train`` from ``register_training_sources`` hooks."""

    kind = "training source"

    @property
    def sources(self) -> dict[str, TrainingSource]:
        """Registered training sources by name, in registration order."""
        return dict(self._items)

    def source(self, name: str, make: Callable[..., Any], help: str = "", metavar: str = "VALUE") -> None:  # noqa: A002  (the word click uses)
        """Offer a training source; see :class:`TrainingSource` for the arguments.

        Raises:
            RegistrationError: a name that is not an identifier, a ``make`` that is not
                callable, or a name registered twice.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise RegistrationError(
                f"plugin {self.current_plugin!r} registered training source {name!r}: a name must be a Python identifier (augment_with, not --augment-with)"
            )
        if not callable(make):
            raise RegistrationError(f"plugin {self.current_plugin!r} registered training source {name!r} whose make is not callable")
        self._add(name, TrainingSource(name, make, help, metavar, self.current_plugin))


@dataclass(frozen=True)
class PluginOption:
    """An option a plugin declares in ``add_options``: a ``scintipipe run`` flag and a server infer param.

    Attributes:
        name: the option's name, a Python identifier (``syringe_full``); the flag is the
            name with dashes (``--syringe-full``) and the key in ``RunContext.options``.
        type: ``str``, ``int``, ``float``, ``bool``, :class:`pathlib.Path` or a
            :class:`click.ParamType`; ``bool`` without ``is_flag`` gives an on/off pair
            (``--dicom/--no-dicom``).
        default: the value when the option is not given.
        help: one line for ``--help`` and the server's ``/info/``.
        choices: the allowed values, or ``None`` for any.
        is_flag: a lone flag (``--pdf``) that sets ``True``.
        choose_from: ``"segmenter"`` or ``"explainer"``: the choices are the names of that
            kind's registered alternatives (``--segmenter NAME``).
        served: offered as an infer param by ``scintipipe serve`` (``False`` for options
            that make no sense to a remote client, such as a path on the server's disk).
        plugin: the plugin that declared it.
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    is_flag: bool = False
    choose_from: str | None = None
    served: bool = True
    plugin: str = ""

    @property
    def flag(self) -> str:
        """The command-line flag, ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")


OptionCheck = Callable[[dict[str, Any]], None]


class OptionRegister(_Register):
    """Collects the options plugins declare in ``add_options`` (like pytest's ``pytest_addoption``)."""

    kind = "option"

    def __init__(self) -> None:
        super().__init__()
        self.checks: list[tuple[str, OptionCheck]] = []

    @property
    def options(self) -> dict[str, PluginOption]:
        """Declared options by name, in declaration order."""
        return dict(self._items)

    def option(
        self,
        name: str,
        type: Any = str,  # noqa: A002  (the word click and argparse use)
        default: Any = None,
        help: str = "",  # noqa: A002  (the word click and argparse use)
        choices: list[str] | tuple[str, ...] | None = None,
        is_flag: bool = False,
        choose_from: str | None = None,
        served: bool = True,
    ) -> None:
        """Declare an option; see :class:`PluginOption` for the arguments.

        Raises:
            RegistrationError: a name that is not an identifier, or one declared twice.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise RegistrationError(
                f"plugin {self.current_plugin!r} declared option {name!r}: a name must be a Python identifier (syringe_full, not --syringe-full)"
            )
        if choose_from not in (None, "segmenter", "explainer"):
            raise RegistrationError(
                f"plugin {self.current_plugin!r} declared option {name!r} choosing from {choose_from!r}; use 'segmenter' or 'explainer'"
            )
        self._add(
            name,
            PluginOption(
                name,
                bool if is_flag else type,
                False if is_flag and default is None else default,
                help,
                tuple(choices) if choices else None,
                is_flag,
                choose_from,
                served,
                self.current_plugin,
            ),
        )

    def check(self, check: OptionCheck) -> None:
        """Add a check of the options' values, run before any scan is read.

        Args:
            check: ``check(options)`` gets every option's value by name and raises
                ``ValueError(message)`` for a combination it refuses; the command line
                answers it as a usage error, the server with 400.
        """
        self.checks.append((self.current_plugin, check))

    def resolve(self, given: dict[str, Any] | None = None, alternatives: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Every option's value: ``given`` over the defaults, checked.

        Args:
            given: values by option name (missing ones take their default; ``None`` too).
            alternatives: ``{"segmenter": names, "explainer": names}`` to check the
                values of ``choose_from`` options against.

        Raises:
            ValueError: an unknown option name, a value not among its choices, or a
                plugin's check refused the combination.
        """
        given = dict(given or {})
        unknown = sorted(set(given) - set(self._items))
        if unknown:
            raise ValueError(f"unknown plugin options {unknown}; declared: {', '.join(self._items) or 'none'}")
        values = {name: option.default if given.get(name) is None else given[name] for name, option in self._items.items()}
        for name, option in self._items.items():
            allowed = option.choices
            if option.choose_from and alternatives is not None:
                allowed = tuple(sorted(alternatives.get(option.choose_from) or ()))
            if allowed is not None and values[name] is not None and values[name] not in allowed:
                raise ValueError(f"{option.flag}: {values[name]!r} is not one of {', '.join(map(str, allowed))}")
        for _plugin, check in self.checks:
            check(values)
        return values


@dataclass(frozen=True)
class Alternative:
    """A named alternative implementation of a stage, chosen by name (``--segmenter learned``).

    Attributes:
        name: what users choose it by.
        function: the implementation (see ``register_segmenters`` and ``register_explainers``).
        description: one line for ``--help``.
        plugin: the plugin that registered it.
    """

    name: str
    function: Callable[..., Any]
    description: str = ""
    plugin: str = ""


class SegmenterRegister(_Register):
    """Collects named segmenters from ``register_segmenters`` hooks."""

    kind = "segmenter"

    @property
    def segmenters(self) -> dict[str, Alternative]:
        """Registered segmenters by name."""
        return dict(self._items)

    def segmenter(self, name: str, segment: Callable[..., Any], description: str = "") -> None:
        """Register ``segment(scan, bundle, context) -> result or None`` under ``name``."""
        self._add(name, Alternative(name, segment, description, self.current_plugin))


class ExplainerRegister(_Register):
    """Collects named explain methods from ``register_explainers`` hooks."""

    kind = "explain method"

    @property
    def explainers(self) -> dict[str, Alternative]:
        """Registered explain methods by name."""
        return dict(self._items)

    def explainer(self, name: str, explain: Callable[..., Any], description: str = "") -> None:
        """Register ``explain(inputs, class_indices, bundle, device) -> maps or None`` under ``name``."""
        self._add(name, Alternative(name, explain, description, self.current_plugin))


class ServedModelRegister(_Register):
    """Collects the server's models (MONAI Label infer tasks) from ``register_served_models`` hooks.

    Args:
        bundles: the bundles the server serves, by name; plugins read them as
            ``register.bundles`` to offer a model per bundle.
    """

    kind = "served model"

    def __init__(self, bundles: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.bundles: dict[str, Any] = dict(bundles or {})

    @property
    def served_models(self) -> dict[str, Any]:
        """Registered :class:`scintipipe.api.ServedModel` objects by name, in registration order."""
        return dict(self._items)

    def served_model(self, model: Any) -> None:
        """Offer ``model`` under its own ``name`` at ``/info/`` and ``/infer/{name}``.

        Args:
            model: a :class:`scintipipe.api.ServedModel` (its ``type`` one of MONAI Label's).

        Raises:
            RegistrationError: not a served model, an unknown type, or a name registered twice.
        """
        from scintipipe.server.served import INFER_TYPES, ServedModel  # the server's module: imported when a server collects

        if not isinstance(model, ServedModel):
            raise RegistrationError(
                f"plugin {self.current_plugin!r} registered a served model that is not a scintipipe.api.ServedModel (got {type(model).__name__})"
            )
        if model.type not in INFER_TYPES:
            raise RegistrationError(
                f"plugin {self.current_plugin!r} registered served model {model.name!r} of type {model.type!r}; use one of {', '.join(INFER_TYPES)}"
            )
        self._add(model.name, model)


def parse_class_mix(text: str | None, labels: tuple[str, ...], default: dict[str, float]) -> dict[str, float]:
    """Parse ``--class-mix``: ``balanced``, ``label=weight,...`` or weights in label order.

    Used by ``scintipipe simulate`` and by the simulate commands of task plugins (public as
    :func:`scintipipe.api.parse_class_mix`). Labels left out of a ``label=weight`` list get
    weight zero.

    Args:
        text: the option's value; ``None`` or ``"default"`` gives ``default``.
        labels: the task's labels, in order.
        default: the mix to use when no text is given.

    Raises:
        click.BadParameter: unparsable text or unknown labels (a usage error on the command line).

    Example:
        >>> parse_class_mix("balanced", ("absent", "present"), {"absent": 0.2, "present": 0.8})
        {'absent': 1.0, 'present': 1.0}
        >>> parse_class_mix("present=3", ("absent", "present"), {})
        {'present': 3.0}
        >>> parse_class_mix("1,2", ("absent", "present"), {})
        {'absent': 1.0, 'present': 2.0}
    """
    import click

    if text is None or text == "default":
        return default
    if text == "balanced":
        return {label: 1.0 for label in labels}
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        if all("=" in part for part in parts):
            mix = {key.strip(): float(value) for key, value in (part.split("=", 1) for part in parts)}
        else:
            values = [float(part) for part in parts]
            if len(values) != len(labels):
                raise click.BadParameter(f"{len(values)} weights for {len(labels)} labels ({', '.join(labels)})", param_hint="--class-mix")
            mix = dict(zip(labels, values, strict=True))
    except ValueError as exc:
        raise click.BadParameter(f"cannot read {text!r}: {exc}", param_hint="--class-mix") from exc
    unknown = set(mix) - set(labels)
    if unknown:
        raise click.BadParameter(f"unknown labels {', '.join(sorted(unknown))}; labels: {', '.join(labels)}", param_hint="--class-mix")
    return mix


def collect(pm: Any, hook_name: str, register: R) -> R:
    """Call a registration hook through pluggy, once per plugin, tracking who registers what.

    Each plugin's implementation is called through its own subset of the hook
    (:meth:`pluggy.PluginManager.subset_hook_caller` without the other plugins'
    implementations), so the register knows which plugin is calling while tracing
    (``SCINTIPIPE_TRACE_HOOKS``) and ``wrapper=True`` implementations still see every call.
    Plugins are called in pluggy's order.

    Args:
        pm: the plugin manager.
        hook_name: a registration hook, e.g. ``register_tasks`` or ``register_networks``.
        register: the register object to fill.

    Returns:
        The filled register, checked by its :meth:`_Register.finish`.

    Raises:
        RegistrationError: a name registered twice, an invalid registration, or a plugin
            that failed in the hook (naming it).
    """
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    registering = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
    for impl in reversed(registering):
        others = [other.plugin for other in registering if other is not impl]
        register.current_plugin = impl.plugin_name
        try:
            pm.subset_hook_caller(hook_name, remove_plugins=others)(register=register)
        except RegistrationError:
            raise
        except Exception as exc:  # a broken plugin must say who it is
            raise RegistrationError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}") from exc
        finally:
            register.current_plugin = ""
    register.finish()
    return register
