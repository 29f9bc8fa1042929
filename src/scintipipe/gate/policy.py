"""A bundle's gate settings: ``configs/gate.json`` (and the statistics it points to).

The file is optional; a bundle without it is gated by the metadata and content layers
only, with no radionuclide check, no learned score and no temperature::

    {
      "radionuclides": ["Tc-99m", "I-123"],
      "temperature": 1.43,
      "calibration": {"ece_before": 0.031, "ece_after": 0.012, "data": "..."},
      "ood": {
        "method": "mahalanobis",
        "statistics": "models/ood.pt",
        "threshold": 412.7,
        "fitted_on": "...",
        "threshold_rule": "99.5th percentile of held-out in-distribution scores",
        "acceptance": {"held_out": 0.992, "n": 500}
      }
    }

``scintipipe gate fit`` writes it; a plugin author ships it in the bundle and gets the
gate with no code of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scintipipe.errors import BundleError

GATE_CONFIG = "configs/gate.json"

#: default threshold quantile of the calibration half's in-distribution scores (``scintipipe gate fit``)
DEFAULT_QUANTILE = 0.995


@dataclass
class GatePolicy:
    """What a bundle's gate checks.

    Attributes:
        root: the bundle folder (statistics paths are relative to it).
        radionuclides: radionuclides an NM view may carry (``None``: any).
        temperature: logits are divided by it before the softmax (1.0: uncalibrated).
        ood: the learned score's settings (``None``: no learned score).
        calibration: how the temperature was fitted and the calibration error before/after.
    """

    root: Path
    radionuclides: tuple[str, ...] | None = None
    temperature: float = 1.0
    ood: dict[str, Any] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bundle_root(cls, root: Path) -> GatePolicy:
        """Read ``configs/gate.json`` under ``root`` (defaults when it is absent).

        Raises:
            BundleError: the file is not valid JSON or a value is malformed.
        """
        path = Path(root) / GATE_CONFIG
        if not path.is_file():
            return cls(Path(root))
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{path} is not valid JSON: {exc}") from exc
        nuclides = data.get("radionuclides")
        temperature = float(data.get("temperature", 1.0))
        if not temperature > 0:
            raise BundleError(f"{path}: temperature must be positive, not {temperature}")
        ood = data.get("ood")
        if ood is not None and not {"method", "statistics", "threshold"} <= set(ood):
            raise BundleError(f"{path}: 'ood' needs 'method', 'statistics' and 'threshold'")
        return cls(Path(root), tuple(nuclides) if nuclides else None, temperature, ood, dict(data.get("calibration") or {}))

    @property
    def threshold(self) -> float | None:
        """Scores above this are out of distribution (``None`` without a learned score)."""
        return float(self.ood["threshold"]) if self.ood else None

    @cached_property
    def scorer(self) -> Any:
        """The fitted learned score (:class:`scintipipe.gate.ood.OODScorer`), loaded once; ``None`` without one."""
        if not self.ood:
            return None
        from scintipipe.gate.ood import load_scorer

        path = self.root / self.ood["statistics"]
        try:
            return load_scorer(path, self.ood["method"])
        except FileNotFoundError as exc:
            raise BundleError(f"bundle gate statistics {path} are missing") from exc
