"""The remnant study's preprocessing (section 2.2) as MONAI transforms, array ``X`` and dict ``Xd``.

1. :class:`EqualizeHistogram` maps counts to 8-bit grey levels and equalises the
   histogram (OpenCV ``equalizeHist``, or CLAHE with ``clahe=True``).
2. :class:`GrabCutThyroidBed` runs OpenCV GrabCut inside a box around the thyroid bed and
   zeroes everything it calls background (edge artefacts, body outline, star arms that
   reach out of the box). The box is where the paper's operator drew it: a fixed
   physical window (``box_mm``) at the neck, found from the image's pixel spacing. The
   mask and the box go into the image's metadata (``thyroid_bed_box``).
3. :class:`CropThyroidBed` cuts that box out.
4. MONAI's ``Resized`` makes it 224 x 224 (any size: it is a config value).
5. :class:`StandardizeChannels` subtracts a mean and divides by a standard deviation per
   channel (optionally repeating the grey channel three times for ImageNet weights).

Every class works on ``(C, H, W)`` tensors or MetaTensors and keeps the metadata; the
``d`` classes apply it to the given keys (the core's :class:`ArrayTransform` and
:class:`ArrayTransformd` bases, from :mod:`scintipipe.api`). Use them from a bundle config by dotted path:
``{"_target_": "scintipipe_remnant.transforms.GrabCutThyroidBedd", "keys": "image"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from monai.data import MetaTensor

from scintipipe.api import ArrayTransform, ArrayTransformd

#: field of view assumed for images without pixel spacing (display exports)
DEFAULT_FOV_MM = 614.4


def _array(img: Any) -> np.ndarray:
    tensor = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
    return tensor.detach().cpu().numpy().astype(np.float32)


def _like(array: np.ndarray, img: Any, **meta: Any) -> Any:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if isinstance(img, MetaTensor):
        return MetaTensor(tensor, meta={**img.meta, **meta})
    return tensor


def _spacing_mm(img: Any) -> tuple[float, float]:
    spacing = (getattr(img, "meta", None) or {}).get("spacing")
    if spacing is None:
        rows, cols = img.shape[-2:]
        return DEFAULT_FOV_MM / rows, DEFAULT_FOV_MM / cols
    return float(spacing[0]), float(spacing[1])


def to_uint8(channel: np.ndarray) -> np.ndarray:
    """Scale one channel linearly from its minimum to its maximum onto 0-255."""
    low, high = float(channel.min()), float(channel.max())
    if high <= low:
        return np.zeros(channel.shape, dtype=np.uint8)
    return np.round(255.0 * (channel - low) / (high - low)).astype(np.uint8)


class EqualizeHistogram(ArrayTransform):
    """Histogram equalisation of each channel, output in [0, 1].

    Args:
        clahe: contrast-limited adaptive equalisation instead of the global one.
        clip_limit: CLAHE clip limit.
        tile_grid: CLAHE tiles per side.
    """

    def __init__(self, clahe: bool = False, clip_limit: float = 2.0, tile_grid: int = 8):
        self.clahe = bool(clahe)
        self.clip_limit = float(clip_limit)
        self.tile_grid = int(tile_grid)

    def __call__(self, img: Any) -> Any:
        channels = _array(img)
        if self.clahe:
            equalise = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tile_grid, self.tile_grid)).apply
        else:
            equalise = cv2.equalizeHist
        out = np.stack([equalise(to_uint8(c)) for c in channels]).astype(np.float32) / 255.0
        return _like(out, img)


def thyroid_bed_box(
    shape: Sequence[int], spacing_mm: Sequence[float], box_mm: Sequence[float], centre_fraction: Sequence[float]
) -> tuple[int, int, int, int]:
    """``(row0, col0, rows, cols)`` of a ``box_mm`` window centred at ``centre_fraction``."""
    rows, cols = int(shape[-2]), int(shape[-1])
    height = min(rows, max(8, round(box_mm[0] / spacing_mm[0])))
    width = min(cols, max(8, round(box_mm[1] / spacing_mm[1])))
    row0 = int(np.clip(round(centre_fraction[0] * rows - height / 2), 0, rows - height))
    col0 = int(np.clip(round(centre_fraction[1] * cols - width / 2), 0, cols - width))
    return row0, col0, height, width


def grabcut_mask(
    grey: np.ndarray, box: tuple[int, int, int, int], core: tuple[int, int], iterations: int = 5, smooth_px: float = 2.0, margin_px: int = 12
) -> np.ndarray:
    """GrabCut foreground of an 8-bit image inside ``box`` (boolean, False outside it).

    The paper's operator drew a box around the thyroid bed; here the box is given and
    GrabCut is seeded the way an operator's strokes would seed it: outside the box is
    background, a ``core`` ellipse (rows, columns) at the box centre is the thyroid bed
    (foreground), the box's middle is probably foreground and its rim probably
    background. The image is smoothed (Poisson noise) and colour-mapped, since GrabCut
    models colours (the paper used RGB exports) and three equal channels make its
    Gaussian mixtures singular. Only the box and a ``margin_px`` ring are processed.
    """
    row0, col0, height, width = box
    r0, c0 = max(0, row0 - margin_px), max(0, col0 - margin_px)
    r1, c1 = min(grey.shape[0], row0 + height + margin_px), min(grey.shape[1], col0 + width + margin_px)
    smooth = cv2.GaussianBlur(grey[r0:r1, c0:c1], (0, 0), smooth_px) if smooth_px > 0 else grey[r0:r1, c0:c1]
    colour = cv2.applyColorMap(np.ascontiguousarray(smooth), cv2.COLORMAP_JET)
    seeds = np.full(smooth.shape, cv2.GC_BGD, np.uint8)
    top, left = row0 - r0, col0 - c0
    seeds[top : top + height, left : left + width] = cv2.GC_PR_BGD
    seeds[top + height // 5 : top + height - height // 5, left + width // 5 : left + width - width // 5] = cv2.GC_PR_FGD
    centre = (left + width // 2, top + height // 2)
    cv2.ellipse(seeds, centre, (max(1, core[1] // 2), max(1, core[0] // 2)), 0, 0, 360, int(cv2.GC_FGD), -1)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's global generator: same image, same mask
    try:
        cv2.grabCut(colour, seeds, None, background, foreground, int(iterations), cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a flat image: GrabCut cannot model it; keep the seeds' foreground
        pass
    out = np.zeros(grey.shape, bool)
    out[r0:r1, c0:c1] = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    inside = np.zeros(grey.shape, bool)
    inside[row0 : row0 + height, col0 : col0 + width] = True
    return out & inside


class GrabCutThyroidBed(ArrayTransform):
    """Zero everything GrabCut calls background around the thyroid bed.

    Args:
        box_mm: (height, width) of the thyroid-bed box in mm.
        core_mm: (height, width) of the ellipse at its centre taken as thyroid bed.
        centre_fraction: its centre as fractions of (rows, columns); the neck scans of
            the paper and of the simulator are centred on the thyroid bed.
        iterations: GrabCut iterations.
        smooth_px: Gaussian sigma applied before GrabCut.
    """

    def __init__(
        self,
        box_mm: Sequence[float] = (150.0, 200.0),
        core_mm: Sequence[float] = (50.0, 60.0),
        centre_fraction: Sequence[float] = (0.5, 0.5),
        iterations: int = 5,
        smooth_px: float = 2.0,
    ):
        self.box_mm = tuple(float(v) for v in box_mm)
        self.core_mm = tuple(float(v) for v in core_mm)
        self.centre_fraction = tuple(float(v) for v in centre_fraction)
        self.iterations = int(iterations)
        self.smooth_px = float(smooth_px)

    def __call__(self, img: Any) -> Any:
        channels = _array(img)
        spacing = _spacing_mm(img)
        box = thyroid_bed_box(channels.shape, spacing, self.box_mm, self.centre_fraction)
        core = (round(self.core_mm[0] / spacing[0]), round(self.core_mm[1] / spacing[1]))
        mask = grabcut_mask(to_uint8(channels.mean(0)), box, core, self.iterations, self.smooth_px)
        return _like(channels * mask[None], img, thyroid_bed_box=box, thyroid_bed_mask=mask)


class CropThyroidBed(ArrayTransform):
    """Cut out the thyroid-bed box that :class:`GrabCutThyroidBed` stored.

    Args:
        box_mm: the box to use when the image carries none (same meaning as there).
        centre_fraction: its centre, likewise.
    """

    def __init__(self, box_mm: Sequence[float] = (150.0, 200.0), centre_fraction: Sequence[float] = (0.5, 0.5)):
        self.box_mm = tuple(float(v) for v in box_mm)
        self.centre_fraction = tuple(float(v) for v in centre_fraction)

    def __call__(self, img: Any) -> Any:
        meta = getattr(img, "meta", None) or {}
        box = meta.get("thyroid_bed_box") or thyroid_bed_box(img.shape, _spacing_mm(img), self.box_mm, self.centre_fraction)
        row0, col0, height, width = (int(v) for v in box)
        crop = _array(img)[:, row0 : row0 + height, col0 : col0 + width]
        spacing = _spacing_mm(img)
        extra = {k: v for k, v in meta.items() if k != "thyroid_bed_mask"} if meta else {}
        out = _like(crop, img, spacing=spacing)
        if isinstance(out, MetaTensor):
            out.meta = {**extra, "spacing": spacing, "thyroid_bed_box": (row0, col0, height, width)}
        return out


class StandardizeChannels(ArrayTransform):
    """``(x - mean) / std`` per channel.

    Args:
        mean: one value per output channel (a single value is used for all).
        std: likewise.
        repeat: repeat a one-channel image this many times first (3 for ImageNet
            weights, with ImageNet's means and standard deviations).
    """

    def __init__(self, mean: Sequence[float] = (0.5,), std: Sequence[float] = (0.25,), repeat: int = 1):
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.repeat = int(repeat)

    def __call__(self, img: Any) -> Any:
        x = _array(img)
        if self.repeat > 1:
            x = np.repeat(x, self.repeat, axis=0)
        mean = np.resize(np.asarray(self.mean, np.float32), x.shape[0])[:, None, None]
        std = np.resize(np.asarray(self.std, np.float32), x.shape[0])[:, None, None]
        return _like((x - mean) / std, img)


class EqualizeHistogramd(ArrayTransformd):
    """Dictionary form of :class:`EqualizeHistogram`."""

    array_transform = EqualizeHistogram


class GrabCutThyroidBedd(ArrayTransformd):
    """Dictionary form of :class:`GrabCutThyroidBed`."""

    array_transform = GrabCutThyroidBed


class CropThyroidBedd(ArrayTransformd):
    """Dictionary form of :class:`CropThyroidBed`."""

    array_transform = CropThyroidBed


class StandardizeChannelsd(ArrayTransformd):
    """Dictionary form of :class:`StandardizeChannels`."""

    array_transform = StandardizeChannels
