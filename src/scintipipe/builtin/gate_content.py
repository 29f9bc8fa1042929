"""Built-in ``gate`` layer ``content``: syringe, point-source and flood images, photographs, text."""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl
from scintipipe.gate.refusal import Refusal


@hookimpl
def gate_scan(scan: dict[str, Any], bundle: Any) -> Refusal | None:
    """Skip syringe, point-source and flood images; refuse photographs and text images."""
    from scintipipe.gate.content import content_refusal

    image = scan["image"]
    pixels = image.as_tensor() if hasattr(image, "as_tensor") else image  # indexing a MetaTensor copies its metadata
    return content_refusal(pixels[0].numpy(), dict(image.meta))
