"""Built-in ``preprocess`` stage: apply the bundle's own ``scan_transforms``.

Registered ``trylast`` so a task plugin can take over preprocessing for its bundles.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl(trylast=True)
def preprocess_scan(scan: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """Run ``bundle.scan_transform`` on the scan's image and store it as ``"input"``."""
    transformed = bundle.scan_transform({"image": scan["image"]})
    return {**scan, "input": transformed["image"]}
