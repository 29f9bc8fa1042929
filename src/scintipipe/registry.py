"""Register objects handed to the registration hooks.

Plugins add tasks, bundles, commands and simulators by calling methods on these objects,
never by mutating module globals. A name registered twice is refused with both plugins
named. :func:`parse_class_mix` reads a simulator's ``--class-mix`` option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
    """A bundle folder made available under a name."""

    name: str
    path: Path
    task: str
    plugin: str = ""


class _Register:
    """Common bookkeeping: which plugin is registering, duplicate detection."""

    kind = "item"

    def __init__(self) -> None:
        self.current_plugin = ""
        self._items: dict[str, Any] = {}
        self._owners: dict[str, str] = {}

    def _add(self, name: str, item: Any) -> None:
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
            raise RegistrationError(
                f"bundle {name!r} is registered by both plugin {self._bundle_owners[name]!r} "
                f"and plugin {self.current_plugin!r}"
            )
        self.bundles[name] = BundleEntry(name, Path(path), task, self.current_plugin)
        self._bundle_owners[name] = self.current_plugin


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
            mix = dict(zip(labels, values))
    except ValueError as exc:
        raise click.BadParameter(f"cannot read {text!r}: {exc}", param_hint="--class-mix") from exc
    unknown = set(mix) - set(labels)
    if unknown:
        raise click.BadParameter(f"unknown labels {', '.join(sorted(unknown))}; labels: {', '.join(labels)}", param_hint="--class-mix")
    return mix


def collect(pm: Any, hook_name: str, register: _Register) -> _Register:
    """Call a registration hook once per plugin, tracking which plugin registers what.

    Args:
        pm: the plugin manager.
        hook_name: ``register_tasks``, ``register_commands`` or ``register_simulators``.
        register: the register object to fill.

    Returns:
        The filled register.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        register.current_plugin = impl.plugin_name
        try:
            impl.function(register=register)
        except RegistrationError:
            raise
        except Exception as exc:  # a broken plugin must say who it is
            raise RegistrationError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}") from exc
    register.current_plugin = ""
    return register
