"""MONAI bundles as scintipipe uses them: find, read, and load once per run.

A bundle is a folder laid out as the MONAI Bundle Specification says::

    uptake4/
      configs/metadata.json    # versions, labels (channel_def), scintipipe fields
      configs/inference.json   # network_def, scan_transforms, and a full evaluator
      models/model.pt          # state dict
      configs/gate.json        # optional: the input gate's radionuclides, OOD score, temperature
      docs/README.md           # model card
      LICENSE

``inference.json`` defines ``network_def`` and ``scan_transforms`` (transforms applied to
a loaded scan's ``"image"``), which the pipeline runner uses, plus a complete
``SupervisedEvaluator`` so ``python -m monai.bundle run --config_file
configs/inference.json`` works on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scintipipe.errors import BundleError

if TYPE_CHECKING:  # torch and MONAI are imported when a network or transform is first needed
    import torch
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

REQUIRED_FILES = ("configs/metadata.json", "configs/inference.json", "models/model.pt")
SCHEMA_PATH = Path(__file__).parent / "schemas" / "bundle_metadata.schema.json"


class Bundle:
    """A bundle folder, read lazily; the network is built and loaded once per device.

    Args:
        root: the bundle folder.
        name: the name it was registered under (defaults to the folder name).

    Raises:
        BundleError: a required file is missing or the metadata is malformed.
    """

    def __init__(self, root: str | Path, name: str | None = None):
        self.root = Path(root).resolve()
        missing = [rel for rel in REQUIRED_FILES if not (self.root / rel).is_file()]
        if missing:
            raise BundleError(f"{self.root} is not a complete bundle: missing {', '.join(missing)}")
        self.name = name or self.root.name
        try:
            self.metadata: dict[str, Any] = json.loads((self.root / "configs/metadata.json").read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{self.root}/configs/metadata.json is not valid JSON: {exc}") from exc
        self._networks: dict[str, torch.nn.Module] = {}
        if len(self.labels) < 2:
            raise BundleError(f"bundle {self.name!r} declares fewer than two labels")

    def __repr__(self) -> str:
        return f"Bundle({self.name!r}, {str(self.root)!r})"

    # ---- metadata -------------------------------------------------------------------

    @property
    def _fields(self) -> dict[str, Any]:
        return self.metadata.get("scintipipe", {})

    @property
    def version(self) -> str:
        """The bundle's version string."""
        return str(self.metadata.get("version", "0.0.0"))

    @property
    def task(self) -> str:
        """The task this bundle solves (``uptake4``, ``remnant``...)."""
        return self._fields.get("task", self.name)

    @property
    def labels(self) -> list[str]:
        """Class names in the order of the network's outputs."""
        if "labels" in self._fields:
            return list(self._fields["labels"])
        channels = self.metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {}).get("channel_def", {})
        return [channels[key] for key in sorted(channels, key=int)]

    @property
    def explain_layer(self) -> str | None:
        """Dotted name of the layer Grad-CAM should use, declared by the bundle."""
        return self._fields.get("explain_layer")

    @property
    def explain_method(self) -> str | None:
        """The explain method the bundle's faithfulness benchmark chose, if it declares one."""
        return self._fields.get("explain_method")

    @property
    def unknown_scale_fovs_mm(self) -> tuple[float, ...]:
        """Fields of view (mm) at which a picture without pixel spacing is classified and
        averaged (:mod:`scintipipe.transforms.unknown_scale`); empty: the single default.

        Raises:
            BundleError: the metadata's list holds something other than positive numbers.
        """
        return self._positive_numbers("unknown_scale_fovs_mm")

    @property
    def zoom_factors(self) -> tuple[float, ...]:
        """Factors of the pixel spacing at which a scan with a spacing is classified and
        averaged (:mod:`scintipipe.transforms.unknown_scale`); empty: the spacing as acquired.

        Raises:
            BundleError: the metadata's list holds something other than positive numbers.
        """
        return self._positive_numbers("zoom_factors")

    @property
    def zoom_averaging_below(self) -> float | None:
        """The top probability at the spacing as acquired from which a scan is classified
        once, without the ``zoom_factors`` averaging; ``None``: every scan is averaged.

        Raises:
            BundleError: the value is not a number in (0, 1].
        """
        value = self._fields.get("zoom_averaging_below")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise BundleError(f"{self.root}/configs/metadata.json: scintipipe.zoom_averaging_below must be a probability in (0, 1], not {value!r}")
        return float(value)

    def _positive_numbers(self, key: str) -> tuple[float, ...]:
        values = self._fields.get(key) or ()
        try:
            numbers = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            numbers = ()
        if not isinstance(values, list | tuple) or len(numbers) != len(values) or any(not n > 0 for n in numbers):
            raise BundleError(f"{self.root}/configs/metadata.json: scintipipe.{key} must be a list of positive numbers, not {values!r}")
        return numbers

    @property
    def clinical_use(self) -> bool:
        """``False`` for demonstration bundles (e.g. trained on simulated scans)."""
        return bool(self._fields.get("clinical_use", False))

    @property
    def training_in_progress(self) -> bool:
        """``True`` for the bundle ``scintipipe train`` writes before its first epoch (initial weights).

        A bundle stays so marked when its training stopped before the end.
        """
        return bool(self._fields.get("training_in_progress", False))

    def check_trained(self) -> None:
        """Refuse a bundle whose training has not finished (see :attr:`training_in_progress`).

        Raises:
            BundleError: naming the bundle, its folder and what to do.
        """
        if self.training_in_progress:
            raise BundleError(
                f"bundle {self.name!r} ({self.root}) is still being trained, or its training stopped before the end: "
                "models/model.pt holds the initial random weights. Wait for `scintipipe train` to finish, or train it again."
            )

    @property
    def description(self) -> str:
        """One-paragraph description from the metadata."""
        return str(self.metadata.get("description", ""))

    @property
    def input_shape(self) -> list[int]:
        """Spatial shape of the network input."""
        return list(self.metadata["network_data_format"]["inputs"]["image"]["spatial_shape"])

    @cached_property
    def gate(self) -> Any:
        """The bundle's gate settings (:class:`scintipipe.gate.policy.GatePolicy`) from ``configs/gate.json``."""
        from scintipipe.gate.policy import GatePolicy

        return GatePolicy.from_bundle_root(self.root)

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary for reports."""
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "labels": self.labels,
            "network": self._fields.get("network"),
            "clinical_use": self.clinical_use,
            "trained_on": self._fields.get("trained_on"),
            "path": str(self.root),
        }

    # ---- config ---------------------------------------------------------------------

    @cached_property
    def config(self) -> ConfigParser:
        """The parsed ``inference.json`` with ``bundle_root`` pointing at this folder."""
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        try:
            parser.read_config(str(self.root / "configs/inference.json"))
        except Exception as exc:
            raise BundleError(f"cannot read {self.root}/configs/inference.json: {exc}") from exc
        parser["bundle_root"] = str(self.root)
        return parser

    @cached_property
    def scan_transform(self) -> Compose:
        """The transforms that turn a loaded scan dict into the network input (``"image"`` key)."""
        from monai.transforms import Compose

        try:
            transforms = self.config.get_parsed_content("scan_transforms", instantiate=True)
        except Exception as exc:
            raise BundleError(f"bundle {self.name!r}: cannot build scan_transforms: {exc}") from exc
        return Compose(transforms)

    def network(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Return the network with its weights, in eval mode; built once per device.

        Args:
            device: ``"cpu"`` or ``"cuda"``.

        Raises:
            BundleError: the bundle is still being trained (:attr:`training_in_progress`),
                or its network or weights cannot be built or read.
        """
        import torch

        key = str(device)
        self.check_trained()
        if key not in self._networks:
            try:
                net = self.config.get_parsed_content("network_def", instantiate=True)
            except Exception as exc:
                raise BundleError(f"bundle {self.name!r}: cannot build network_def: {exc}") from exc
            weights = self.root / "models/model.pt"
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise BundleError(f"bundle {self.name!r}: cannot read weights {weights}: {exc}") from exc
            if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
                state = state["model"]
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise BundleError(f"bundle {self.name!r}: weights do not match network_def: {exc}") from exc
            self._networks[key] = net.to(device).eval()
        return self._networks[key]


def declared_labels(root: str | Path) -> dict[str, list[str]]:
    """Every label list a bundle folder declares, keyed by where it is declared.

    Looks at ``configs/metadata.json`` (``scintipipe.labels`` and the output's
    ``channel_def``) and ``configs/inference.json`` (``labels``); a file that is missing
    or not valid JSON is left out (opening the bundle reports it).

    Args:
        root: the bundle folder.
    """
    root = Path(root)
    found: dict[str, list[str]] = {}
    metadata = _read_json(root / "configs/metadata.json")
    if "labels" in metadata.get("scintipipe", {}):
        found["configs/metadata.json scintipipe.labels"] = [str(label) for label in metadata["scintipipe"]["labels"]]
    channels = metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {}).get("channel_def")
    if isinstance(channels, dict) and channels:
        found["configs/metadata.json channel_def"] = [str(channels[key]) for key in sorted(channels, key=int)]
    inference = _read_json(root / "configs/inference.json")
    if isinstance(inference.get("labels"), list):
        found["configs/inference.json labels"] = [str(label) for label in inference["labels"]]
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def check_bundle_labels(name: str, root: str | Path, task: str, task_labels: Sequence[str]) -> None:
    """Refuse a bundle whose declared labels are not its task's labels, in the task's order.

    Args:
        name: the bundle's name (for the message).
        root: the bundle folder.
        task: the task it is registered for or declares.
        task_labels: the labels the task was registered with.

    Raises:
        BundleError: naming the bundle, where it declares which labels, and the task's labels.
    """
    expected = list(task_labels)
    for where, labels in declared_labels(root).items():
        if labels != expected:
            raise BundleError(
                f"bundle {name!r} declares labels [{', '.join(labels)}] in {where}, but its task {task!r} "
                f"has labels [{', '.join(expected)}] (same labels, same order, needed: they name the network's outputs)"
            )


def resolve_bundle(name_or_path: str | Path, registered: Mapping[str, Any], tasks: Mapping[str, Sequence[str]] | None = None) -> Bundle:
    """Find a bundle by registered name or folder path, and check its labels against its task's.

    Args:
        name_or_path: a name registered by a plugin (``uptake4``) or a bundle folder.
        registered: ``{name: BundleEntry}`` from :func:`scintipipe.plugins.tasks_and_bundles`.
        tasks: ``{task: labels}`` for a bundle folder's task; default the labels of the
            tasks the registered bundles solve.

    Raises:
        BundleError: neither a registered name nor a bundle folder, with the known names;
            or the bundle's labels differ from its task's (see :func:`check_bundle_labels`).
    """
    text = str(name_or_path)
    if text in registered:
        entry = registered[text]
        bundle = Bundle(entry.path, name=text)
        task, task_labels = entry.task, tuple(getattr(entry, "task_labels", ()))
    else:
        path = Path(text).expanduser()
        if not path.is_dir():
            known = ", ".join(sorted(registered)) or "none"
            raise BundleError(f"no bundle named {text!r} and no bundle folder at that path (registered bundles: {known})")
        bundle = Bundle(path)
        known_tasks = {entry.task: tuple(entry.task_labels) for entry in registered.values() if getattr(entry, "task_labels", ())}
        task, task_labels = bundle.task, tuple((tasks or known_tasks).get(bundle.task, ()))
    if task_labels:
        check_bundle_labels(bundle.name, bundle.root, task, task_labels)
    return bundle


def shipped_bundle_path(name: str) -> Path:
    """Locate a bundle shipped with scintipipe (wheel data or the source checkout)."""
    packaged = Path(__file__).parent / "_shipped_bundles" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "bundles" / name
