"""Learned neck segmentation: a small MONAI ``UNet`` trained on the simulator's masks.

The network sees the same input as the uptake4 classifier (counts resampled to 2.2 mm,
a 96 x 96 crop around the neck's activity, square-root count normalisation) and predicts
one of :data:`CLASSES` per pixel. :class:`LearnedSegmenter` maps the labels back to the
scan's own grid (undo the crop with ``crop_centre``, nearest-neighbour back to the scan's
pixels) and returns the same region dict as :func:`scintipipe.segment.segment_neck`, so
:func:`scintipipe.segment.quantify` works unchanged:

- ``thyroid_right``, ``thyroid_left``, ``isthmus``: the predicted gland (thyroid and
  nodule pixels) split with the classical segmenter's :func:`split_lobes`;
- ``nodules_hot`` / ``nodules_cold``: predicted nodule components whose mean counts are
  above / below the median of the rest of the gland;
- ``salivary_right`` / ``salivary_left``: predicted salivary pixels either side of the
  body midline;
- ``background``: the classical ring beside and below the gland.

The shipped bundle is ``bundles/thyroid-seg`` (``benchmarks/train_segmentation.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

from scintipipe.segment.classical import background_region, prepare, split_lobes
from scintipipe.transforms.scintigram import CropNeckRegion, NormalizeCounts, ResampleToSpacing
from scintipipe.transforms.unknown_scale import DEFAULT_FOV_MM

#: output channels of the network, in order
CLASSES = ("background", "thyroid", "nodule", "salivary")
SPACING_MM = 2.2
SIZE_PX = (96, 96)
MIN_COMPONENT_PX = 3  # on the 2.2 mm grid: specks smaller than this are dropped

#: ``network_def`` of the shipped bundle
NETWORK_DEF: dict[str, Any] = {
    "_target_": "monai.networks.nets.UNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": len(CLASSES),
    "channels": [8, 16, 32, 64],
    "strides": [2, 2, 2],
    "num_res_units": 1,
}

#: the bundle's ``scan_transforms`` (the uptake4 preprocessing)
SCAN_TRANSFORMS = [
    {"_target_": "scintipipe.transforms.ResampleToSpacingd", "keys": "image", "spacing_mm": SPACING_MM},
    {"_target_": "scintipipe.transforms.CropNeckRegiond", "keys": "image", "size_px": list(SIZE_PX)},
    {"_target_": "scintipipe.transforms.NormalizeCountsd", "keys": "image"},
]


def _spacing(counts: np.ndarray, spacing: Any) -> tuple[float, float]:
    if spacing is None:
        return (DEFAULT_FOV_MM / counts.shape[0], DEFAULT_FOV_MM / counts.shape[1])
    return (float(spacing[0]), float(spacing[1]))


def prepare_input(counts: np.ndarray, spacing: Any) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Network input ``(1, 96, 96)``, the crop centre and the shape of the 2.2 mm grid."""
    image = MetaTensor(torch.as_tensor(np.asarray(counts, np.float32))[None], meta={"spacing": _spacing(counts, spacing)})
    resampled = ResampleToSpacing(SPACING_MM, DEFAULT_FOV_MM)(image)
    cropped = CropNeckRegion(SIZE_PX)(resampled)
    x = NormalizeCounts()(cropped)
    return torch.as_tensor(x).float(), tuple(cropped.meta["crop_centre"]), tuple(resampled.shape[-2:])


def crop(array: np.ndarray, centre: tuple[int, int], size: tuple[int, int] = SIZE_PX) -> np.ndarray:
    """``array``'s window of ``size`` around ``centre`` (zero outside), as :class:`CropNeckRegion` cuts it."""
    h, w = size
    top, left = centre[0] - h // 2, centre[1] - w // 2
    out = np.zeros((h, w), array.dtype)
    st, sl = max(top, 0), max(left, 0)
    sb, sr = min(top + h, array.shape[0]), min(left + w, array.shape[1])
    if sb > st and sr > sl:
        out[st - top : sb - top, sl - left : sr - left] = array[st:sb, sl:sr]
    return out


def uncrop(window: np.ndarray, centre: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Put a cropped window back on a zero grid of ``shape`` (the inverse of :func:`crop`)."""
    h, w = window.shape
    top, left = centre[0] - h // 2, centre[1] - w // 2
    out = np.zeros(shape, window.dtype)
    st, sl = max(top, 0), max(left, 0)
    sb, sr = min(top + h, shape[0]), min(left + w, shape[1])
    if sb > st and sr > sl:
        out[st:sb, sl:sr] = window[st - top : sb - top, sl - left : sr - left]
    return out


def resize_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label image (pixel centres mapped onto pixel centres)."""
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(int), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(int), labels.shape[1] - 1)
    return labels[rows[:, None], cols[None, :]]


def target_labels(masks: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Simulator masks to a label image: salivary 3, thyroid (lobes and isthmus) 1, nodules 2 on top."""
    empty = np.zeros(shape, bool)

    def get(*names: str) -> np.ndarray:
        out = empty.copy()
        for name in names:
            if name in masks:
                out |= np.asarray(masks[name], bool)
        return out

    labels = np.zeros(shape, np.int64)
    labels[get("salivary_glands", "parotid_right", "parotid_left", "submandibular_right", "submandibular_left")] = 3
    labels[get("thyroid", "thyroid_right", "thyroid_left", "isthmus")] = 1
    labels[get("nodules", "nodules_hot", "nodules_cold")] = 2
    return labels


def training_pair(counts: np.ndarray, masks: dict[str, np.ndarray], spacing: Any) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(1, 96, 96)`` and target labels ``(96, 96)`` for one simulated case.

    The labels are resampled to 2.2 mm by the majority (area-weighted) class per pixel
    and cut with the same crop centre as the input.
    """
    x, centre, grid = prepare_input(counts, spacing)
    labels = target_labels(masks, counts.shape)
    onehot = torch.from_numpy(np.stack([labels == c for c in range(len(CLASSES))]).astype(np.float32))
    small = torch.nn.functional.interpolate(onehot[None], size=grid, mode="area")[0].argmax(0).numpy()
    return x.numpy(), crop(small, centre)


def clean(labels: np.ndarray) -> np.ndarray:
    """Drop specks below :data:`MIN_COMPONENT_PX` of every foreground class."""
    out = labels.copy()
    for c in range(1, len(CLASSES)):
        parts, n = ndimage.label(labels == c)
        if n:
            sizes = ndimage.sum(np.ones_like(parts), parts, index=np.arange(1, n + 1))
            for i, size in enumerate(sizes, start=1):
                if size < MIN_COMPONENT_PX:
                    out[parts == i] = 0
    return out


def rois_from_labels(labels: np.ndarray, counts: np.ndarray, spacing: Any) -> dict[str, np.ndarray]:
    """The classical region dict from a label image on the scan grid."""
    image = prepare(np.asarray(counts, np.float32), None if spacing is None else (float(spacing[0]), float(spacing[1])))
    nodule = labels == 2
    gland = (labels == 1) | nodule
    right, left, isthmus = split_lobes(image, gland)
    hot, cold = np.zeros_like(gland), np.zeros_like(gland)
    rest = gland & ~nodule
    level = float(np.median(image.smooth[rest])) if rest.any() else 0.0
    parts, n = ndimage.label(nodule)
    for i in range(1, n + 1):
        part = parts == i
        if float(image.smooth[part].mean()) > level:
            hot |= part
        else:
            cold |= part
    salivary = labels == 3
    columns = np.arange(labels.shape[1])[None, :]
    salivary_right, salivary_left = salivary & (columns < image.midline), salivary & (columns >= image.midline)
    return {
        "thyroid_right": right,
        "thyroid_left": left,
        "isthmus": isthmus,
        "nodules_hot": hot,
        "nodules_cold": cold,
        "salivary_right": salivary_right,
        "salivary_left": salivary_left,
        "background": background_region(image, gland, salivary),
    }


class LearnedSegmenter:
    """A segmentation bundle, loaded once, applied to one scan at a time.

    Args:
        bundle: a :class:`scintipipe.bundle.Bundle` or a bundle folder.
    """

    def __init__(self, bundle: Any):
        from scintipipe.bundle import Bundle

        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(Path(bundle))
        self.network = self.bundle.network("cpu")

    def labels(self, counts: np.ndarray, spacing: Any) -> np.ndarray:
        """Label image (indices into :data:`CLASSES`) on the scan's own grid."""
        counts = np.asarray(counts, np.float32)
        x, centre, grid = prepare_input(counts, spacing)
        with torch.no_grad():
            window = self.network(x[None])[0].argmax(0).numpy()
        window = clean(window)
        return resize_nearest(uncrop(window, centre, grid), counts.shape)

    def segment(self, counts: np.ndarray, spacing: Any) -> dict[str, np.ndarray]:
        """``{name: bool mask}`` on the scan grid, the names :func:`segment_neck` returns."""
        return rois_from_labels(self.labels(counts, spacing), counts, spacing)


def shipped_segmenter_path() -> Path:
    """Folder of the shipped ``thyroid-seg`` bundle."""
    from scintipipe.bundle import shipped_bundle_path

    return shipped_bundle_path("thyroid-seg")
