"""Pictures of unknown scale: classify them at several assumed fields of view.

A display export (PNG, JPEG, a screen grab, a figure crop) carries no pixel spacing, so
:class:`~scintipipe.transforms.ResampleToSpacing` assumes a field of view of
:data:`DEFAULT_FOV_MM`. Real fields of view run from about 150 to 450 mm on parallel-hole
cameras, and a crop can have any scale. A bundle that declares
``unknown_scale_fovs_mm`` in ``configs/metadata.json`` (``scintipipe`` section) has every
such picture preprocessed once per assumed field of view, and the pipeline averages the
network's probabilities over them (the unknown scale integrated over a prior of a few
plausible values). The gate and the explanation keep the single input at
:data:`DEFAULT_FOV_MM`.

Scans with a spacing (DICOM, NIfTI) are classified at that spacing, unless the bundle also
declares ``zoom_factors``: then they are preprocessed as if their pixels were each factor
times their size, and the probabilities averaged (test-time averaging over apparent size,
which patient habitus and camera magnification move as much as the classes do). The gate
and the explanation keep the true spacing.

A bundle may also declare ``zoom_averaging_below`` (a probability): a scan whose top
probability at the spacing as acquired reaches it is classified once. The preprocess stage
then only records the factors (``case["zoom_pending"]``); the classify stage makes the other
zooms' inputs (:func:`make_pending_zoom_inputs`) for the scans below the threshold
(:func:`below_threshold`) and averages those, so a confident scan costs one preprocessing
and one network pass.

Example:
    >>> import torch
    >>> from monai.data import MetaTensor
    >>> picture = MetaTensor(torch.zeros(1, 100, 50))
    >>> with_assumed_fov(picture, 200.0).meta["spacing"]
    (2.0, 4.0)
    >>> has_spacing(picture), has_spacing(with_assumed_fov(picture, 200.0))
    (False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: the field of view (mm) assumed for a picture without pixel spacing when nothing else is known
DEFAULT_FOV_MM = 280.0


def has_spacing(image: Any) -> bool:
    """Whether the image carries a pixel spacing in its metadata."""
    return (getattr(image, "meta", None) or {}).get("spacing") is not None


def with_assumed_fov(image: Any, fov_mm: float) -> Any:
    """A shallow copy of ``image`` whose metadata says its picture spans ``fov_mm``.

    Args:
        image: a ``(C, H, W)`` MetaTensor without spacing.
        fov_mm: the assumed field of view along both axes.

    Returns:
        The same pixels with ``meta["spacing"] = (fov_mm / H, fov_mm / W)`` and
        ``meta["assumed_fov_mm"] = fov_mm``.
    """
    from monai.data import MetaTensor

    rows, cols = image.shape[-2:]
    meta = {**(getattr(image, "meta", None) or {}), "spacing": (fov_mm / rows, fov_mm / cols), "assumed_fov_mm": float(fov_mm)}
    return MetaTensor(torch.as_tensor(image).as_subclass(torch.Tensor), meta=meta)


def _stacked(inputs: Sequence[Any]) -> torch.Tensor:
    return torch.stack([torch.as_tensor(x).as_subclass(torch.Tensor).float() for x in inputs])


def scale_inputs(image: Any, transform: Any, fovs_mm: Sequence[float], main: Any = None) -> torch.Tensor | None:
    """The network inputs of a picture without spacing, one per assumed field of view.

    Args:
        image: the loaded ``(C, H, W)`` image.
        transform: the bundle's scan transform (a dict transform on ``"image"``).
        fovs_mm: the assumed fields of view; empty turns the averaging off.
        main: the input already made at :data:`DEFAULT_FOV_MM` (reused, not made again).

    Returns:
        ``(len(fovs_mm), C, h, w)`` inputs, or ``None`` when the image has a spacing or no
        field of view is given.
    """
    if not fovs_mm or has_spacing(image):
        return None
    return _stacked(
        [
            main if main is not None and float(fov) == DEFAULT_FOV_MM else transform({"image": with_assumed_fov(image, float(fov))})["image"]
            for fov in fovs_mm
        ]
    )


def with_zoom(image: Any, factor: float) -> Any:
    """A shallow copy of ``image`` (which has a spacing) whose pixels are ``factor`` times their size."""
    from monai.data import MetaTensor

    spacing = image.meta["spacing"]
    meta = {**image.meta, "spacing": (float(spacing[0]) * factor, float(spacing[1]) * factor), "zoom_factor": float(factor)}
    return MetaTensor(torch.as_tensor(image).as_subclass(torch.Tensor), meta=meta)


def zoom_inputs(image: Any, transform: Any, factors: Sequence[float], main: Any = None) -> torch.Tensor | None:
    """The network inputs of a scan with a spacing, one per zoom factor.

    Args:
        image: the loaded ``(C, H, W)`` image.
        transform: the bundle's scan transform (a dict transform on ``"image"``).
        factors: the zoom factors (1.0 is the scan as acquired); empty turns averaging off.
        main: the input already made at the spacing as acquired (reused for 1.0).

    Returns:
        ``(len(factors), C, h, w)`` inputs, or ``None`` when the image has no spacing or no
        factor is given.
    """
    if not factors or not has_spacing(image):
        return None
    return _stacked([main if main is not None and float(f) == 1.0 else transform({"image": with_zoom(image, float(f))})["image"] for f in factors])


def defer_zoom_inputs(image: Any, factors: Sequence[float], below: float | None) -> tuple[float, ...] | None:
    """The zoom factors to record as ``case["zoom_pending"]`` instead of making their inputs now.

    Returns:
        ``factors`` when the bundle has a ``zoom_averaging_below`` threshold and the scan a
        spacing (the classify stage decides whether to make them), else ``None`` (make them
        now, or not at all).
    """
    if below is None or not factors or not has_spacing(image):
        return None
    return tuple(float(f) for f in factors)


def below_threshold(probs: torch.Tensor, below: float) -> torch.Tensor:
    """Which rows of ``(n, classes)`` probabilities have a top probability under ``below`` (those are averaged)."""
    return probs.max(dim=1).values < below


def make_pending_zoom_inputs(case: dict[str, Any], transform: Any) -> None:
    """Turn ``case["zoom_pending"]`` into ``scale_inputs`` and ``scale_input_is_input`` (in place).

    Args:
        case: a case whose preprocessing deferred its zooms (:func:`defer_zoom_inputs`); it
            holds the loaded ``image`` and its ``input`` at the spacing as acquired.
        transform: the bundle's scan transform, the one that made ``input``.
    """
    factors = case.pop("zoom_pending")
    case["scale_inputs"] = zoom_inputs(case["image"], transform, factors, case["input"])
    case["scale_input_is_input"] = [f == 1.0 for f in factors]


def confident_note(probability: float, below: float) -> str:
    """The case note of a scan classified once because its top probability reached the bundle's threshold."""
    return f"classified once at its pixel spacing: top probability {probability:.3f} reached the bundle's zoom_averaging_below {below:g}, so no zoom averaging"


def zoom_failed_note(exc: BaseException) -> str:
    """The case note of a scan whose other zooms could not be made: it keeps its single pass."""
    return f"classified once at its pixel spacing: the other zooms could not be made ({type(exc).__name__}: {exc})"


def zoom_note(factors: Sequence[float]) -> str:
    """The case note saying what was done to a scan with a spacing."""
    listed = ", ".join(f"{float(f):g}" for f in factors)
    return f"classified at {listed} times its pixel spacing and the probabilities averaged (the gate and the explanation use the spacing as acquired)"


def scale_note(fovs_mm: Sequence[float]) -> str:
    """The case note saying what was done."""
    listed = ", ".join(f"{float(f):g}" for f in fovs_mm)
    return (
        f"no pixel spacing: classified at assumed fields of view of {listed} mm and the probabilities averaged "
        f"(the gate and the explanation use {DEFAULT_FOV_MM:g} mm)"
    )
