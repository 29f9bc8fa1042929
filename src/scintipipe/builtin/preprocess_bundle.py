"""Built-in ``preprocess`` stage: apply the bundle's own ``scan_transforms``.

Registered ``trylast`` so a task plugin can take over preprocessing for its bundles.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl(trylast=True)
def preprocess_scan(scan: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """Run ``bundle.scan_transform`` on the scan's image and store it as ``"input"``.

    For a picture without pixel spacing and a bundle with ``unknown_scale_fovs_mm``, or a
    scan with a spacing and a bundle with ``zoom_factors``, also store one input per assumed
    scale as ``"scale_inputs"`` (the classify stage averages over them) and say so in the
    image's notes.
    """
    from scintipipe.transforms.unknown_scale import scale_inputs, scale_note, zoom_inputs, zoom_note

    transformed = bundle.scan_transform({"image": scan["image"]})
    case = {**scan, "input": transformed["image"]}
    fovs, factors = getattr(bundle, "unknown_scale_fovs_mm", ()), getattr(bundle, "zoom_factors", ())
    extra, note = scale_inputs(scan["image"], bundle.scan_transform, fovs), scale_note(fovs)
    if extra is None:
        extra, note = zoom_inputs(scan["image"], bundle.scan_transform, factors), zoom_note(factors)
    if extra is not None:
        case["scale_inputs"] = extra
        meta = getattr(scan["image"], "meta", None)
        if meta is not None:
            meta["notes"] = [*(n for n in meta.get("notes") or [] if n != note), note]  # once, if several bundles read this scan
    return case
