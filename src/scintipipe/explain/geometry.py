"""Put a map made on the network input grid back onto the original scan.

The network input is the scan resampled to a fixed spacing
(:class:`~scintipipe.transforms.scintigram.ResampleToSpacing`), then cropped around the
neck (:class:`~scintipipe.transforms.scintigram.CropNeckRegion`, which records
``crop_centre`` in the input's metadata). So an input pixel ``(r, c)`` lies at
``(r + top, c + left)`` on the resampled grid (``top = crop_centre_row - H // 2``) and
that grid pixel's centre at ``(row + 0.5) * rows / resampled_rows - 0.5`` on the scan.
Inputs without ``crop_centre`` (a bundle that only resizes) are simply resized.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from scintipipe.transforms.unknown_scale import DEFAULT_FOV_MM  # what ResampleToSpacing assumes for images without spacing


def input_to_scan_affine(
    input_meta: dict[str, Any], input_shape: tuple[int, int], scan_meta: dict[str, Any], scan_shape: tuple[int, int]
) -> np.ndarray | None:
    """The 2x3 affine from input pixel ``(x=col, y=row)`` to scan pixel, or ``None`` when
    the input carries no crop (then the map covers the whole scan)."""
    centre = input_meta.get("crop_centre")
    input_spacing = input_meta.get("spacing")
    if centre is None or input_spacing is None:
        return None
    rows, cols = scan_shape
    spacing = scan_meta.get("spacing") or (DEFAULT_FOV_MM / rows, DEFAULT_FOV_MM / cols)
    resampled = (max(8, round(rows * spacing[0] / float(input_spacing[0]))), max(8, round(cols * spacing[1] / float(input_spacing[1]))))
    scale_y, scale_x = rows / resampled[0], cols / resampled[1]
    top, left = int(centre[0]) - input_shape[0] // 2, int(centre[1]) - input_shape[1] // 2
    return np.array([[scale_x, 0.0, (left + 0.5) * scale_x - 0.5], [0.0, scale_y, (top + 0.5) * scale_y - 0.5]], dtype=np.float64)


def heatmap_on_scan(heatmap: np.ndarray, input_meta: dict[str, Any] | None, scan_meta: dict[str, Any], scan_shape: tuple[int, int]) -> np.ndarray:
    """The heatmap resampled onto the scan's pixel grid (zero outside the crop).

    Args:
        heatmap: ``(H, W)`` map on the network input grid.
        input_meta: the input MetaTensor's metadata (``crop_centre``, ``spacing``).
        scan_meta: the scan image's metadata (``spacing``).
        scan_shape: ``(rows, columns)`` of the scan.
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    affine = input_to_scan_affine(input_meta or {}, heatmap.shape, scan_meta, scan_shape)
    size = (scan_shape[1], scan_shape[0])
    if affine is None:
        return cv2.resize(heatmap, size, interpolation=cv2.INTER_LINEAR)
    return cv2.warpAffine(heatmap, affine, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
