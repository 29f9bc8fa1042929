"""Built-in ``gate`` layer ``metadata``: modality, radionuclide, body part, our own results."""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl
from scintipipe.gate.metadata import metadata_refusal
from scintipipe.gate.refusal import Refusal


@hookimpl
def gate_scan(scan: dict[str, Any], bundle: Any) -> Refusal | None:
    """Refuse what the DICOM header says is not a planar thyroid view for this bundle."""
    return metadata_refusal(dict(scan["image"].meta), bundle.gate.radionuclides)
