"""Built-in ``preprocess`` stage: apply the bundle's own ``scan_transforms``.

Registered ``trylast`` so a task plugin can take over preprocessing for its bundles.
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl
def add_options(register: Any) -> None:
    """``--scale-averaging/--no-scale-averaging``."""
    register.option(
        "scale_averaging",
        type=bool,
        default=True,
        help="Average the network over the scales the bundle declares (assumed fields of view for pictures without pixel spacing, "
        "zoom factors for scans with one); --no-scale-averaging classifies each view once (about 1.7x the rate on DICOM with uptake4 0.3.2).",
    )


@hookimpl(trylast=True)
def preprocess_scan(scan: dict[str, Any], bundle: Any, context: Any) -> dict[str, Any]:
    """Run ``bundle.scan_transform`` on the scan's image and store it as ``"input"``.

    For a picture without pixel spacing and a bundle with ``unknown_scale_fovs_mm``, or a
    scan with a spacing and a bundle with ``zoom_factors``, also store one input per assumed
    scale as ``"scale_inputs"`` (the classify stage averages over them) and say so in the
    image's notes; unless the run says ``--no-scale-averaging``. A bundle with
    ``zoom_averaging_below`` has the zooms deferred instead (``"zoom_pending"``): the
    classify stage makes them only for the scans it is not confident about.
    """
    from scintipipe.transforms.unknown_scale import DEFAULT_FOV_MM, defer_zoom_inputs, scale_inputs, scale_note, zoom_inputs, zoom_note

    transformed = bundle.scan_transform({"image": scan["image"]})
    case = {**scan, "input": transformed["image"]}
    if not (getattr(context, "options", None) or {}).get("scale_averaging", True):
        return case
    fovs, factors = getattr(bundle, "unknown_scale_fovs_mm", ()), getattr(bundle, "zoom_factors", ())
    pending = defer_zoom_inputs(scan["image"], factors, getattr(bundle, "zoom_averaging_below", None))
    if pending is not None:
        case["zoom_pending"] = pending
        return case
    main = case["input"]
    extra, note, same = scale_inputs(scan["image"], bundle.scan_transform, fovs, main), scale_note(fovs), [float(f) == DEFAULT_FOV_MM for f in fovs]
    if extra is None:
        extra, note, same = zoom_inputs(scan["image"], bundle.scan_transform, factors, main), zoom_note(factors), [float(f) == 1.0 for f in factors]
    if extra is not None:
        case["scale_inputs"] = extra
        case["scale_input_is_input"] = same  # which of them is "input" itself: its probabilities are already computed
        meta = getattr(scan["image"], "meta", None)
        if meta is not None:
            meta["notes"] = [*(n for n in meta.get("notes") or [] if n != note), note]  # once, if several bundles read this scan
    return case
