"""What a gate layer answers when it will not let a view through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scintipipe.errors import ScanError

#: the columns the gate adds to ``predictions.csv``
GATE_COLUMNS = ("in_distribution", "ood_score")

#: layers whose refusals ``--accept-ood`` may override
OVERRIDABLE_LAYERS = ("content", "ood")


@dataclass(frozen=True)
class Refusal:
    """One gate layer's reason not to classify a view.

    Attributes:
        layer: ``metadata``, ``content``, ``ood`` or a plugin's own layer name.
        reason: the reason in words, e.g. ``"modality CT cannot hold a planar thyroid view"``.
        skip: ``True`` for inputs that are not wrong but are not for classification
            (syringe, point-source and flood images): they are listed as skipped, not as
            failures.
        kind: for skipped inputs, what they are (``"syringe"``, ``"flood"``); the runner
            offers ``"syringe"`` images for the thyroid uptake of their study.

    Example:
        >>> Refusal("metadata", "modality CT cannot hold a planar thyroid view").overridable
        False
    """

    layer: str
    reason: str
    skip: bool = False
    kind: str | None = None

    @property
    def overridable(self) -> bool:
        """Whether ``--accept-ood`` may classify the view anyway."""
        return self.layer in OVERRIDABLE_LAYERS and not self.skip

    def as_dict(self) -> dict[str, Any]:
        """Plain values for reports and server answers."""
        return {"layer": self.layer, "reason": self.reason}

    @classmethod
    def coerce(cls, value: Any) -> Refusal:
        """A :class:`Refusal` from a hook's answer (a Refusal or a dict with the same keys)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict) and "layer" in value and "reason" in value:
            return cls(str(value["layer"]), str(value["reason"]), bool(value.get("skip", False)), value.get("kind"))
        raise TypeError(f"a gate hook must return a Refusal, a dict with 'layer' and 'reason', or None; got {value!r}")


class GateRefused(ScanError):
    """The gate refused a view: it is not classified, and ``errors.csv`` names the layer.

    Args:
        source: the view (``file`` or ``file#view``).
        refusal: the layer and reason.
    """

    def __init__(self, source: object, refusal: Refusal):
        self.refusal = refusal
        super().__init__(source, f"refused by the {refusal.layer} gate: {refusal.reason}")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by the constructor's arguments (results of worker processes carry these errors)."""
        return (type(self), (self.source, self.refusal), self.__dict__)
