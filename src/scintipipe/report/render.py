"""Pictures of a case for readers: the windowed scan, the regions, the heatmap overlay.

Display conventions (anterior view as acquired): the patient's right on the image left,
marked ``R``/``L``; a 50 mm scale bar when the spacing is known; linear grey scale from
zero to the hottest structure (the maximum of the lightly smoothed counts, so a single
noisy pixel does not set the window and a hot nodule is not clipped); images enlarged to
about 512 pixels with square pixels in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from scintipipe.previews import save_preview_png

DISPLAY_SIDE = 512
HEATMAP_FLOOR = 0.15
HEATMAP_ALPHA = 0.55

#: RGB colour of each region outline (legend in the HTML report)
ROI_COLOURS: dict[str, tuple[int, int, int]] = {
    "thyroid_right": (230, 60, 60),
    "thyroid_left": (60, 140, 255),
    "isthmus": (250, 220, 40),
    "nodules_hot": (255, 140, 0),
    "nodules_cold": (0, 220, 220),
    "salivary_right": (200, 90, 255),
    "salivary_left": (200, 90, 255),
    "background": (120, 220, 120),
}


@dataclass(frozen=True)
class Window:
    """Display window of a scan in counts per pixel."""

    low: float
    high: float


def display_window(counts: np.ndarray) -> Window:
    """Zero to the maximum of the counts smoothed by one pixel."""
    smooth = ndimage.gaussian_filter(np.asarray(counts, dtype=np.float32), 1.0)
    high = float(smooth.max())
    return Window(0.0, high if high > 0 else 1.0)


def display_size(shape: tuple[int, int], spacing: tuple[float, float] | None) -> tuple[int, int]:
    """``(width, height)`` of the enlarged picture, square in millimetres."""
    rows, cols = shape
    height_mm, width_mm = (rows * spacing[0], cols * spacing[1]) if spacing else (rows, cols)
    scale = DISPLAY_SIDE / max(height_mm, width_mm)
    return max(1, round(width_mm * scale)), max(1, round(height_mm * scale))


def grey_scan(counts: np.ndarray, spacing: tuple[float, float] | None, window: Window | None = None) -> np.ndarray:
    """The windowed scan as an enlarged RGB ``uint8`` picture with orientation marks."""
    window = window or display_window(counts)
    scaled = (np.asarray(counts, dtype=np.float32) - window.low) / (window.high - window.low)
    grey = np.clip(255.0 * scaled, 0, 255).astype(np.uint8)
    grey = cv2.resize(grey, display_size(grey.shape, spacing), interpolation=cv2.INTER_CUBIC)
    return annotate(cv2.merge([grey, grey, grey]), counts.shape, spacing)


def annotate(rgb: np.ndarray, shape: tuple[int, int], spacing: tuple[float, float] | None) -> np.ndarray:
    """Add ``R``/``L`` marks and a 50 mm scale bar (when the spacing is known)."""
    out = rgb.copy()
    height, width = out.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(out, "R", (10, 30), font, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(out, "L", (width - 30, 30), font, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    if spacing:
        bar = round(50.0 / (shape[1] * spacing[1]) * width)
        cv2.line(out, (width - 20 - bar, height - 20), (width - 20, height - 20), (255, 255, 255), 3)
        cv2.putText(out, "50 mm", (width - 20 - bar, height - 30), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def with_regions(scan_rgb: np.ndarray, rois: dict[str, np.ndarray]) -> np.ndarray:
    """Outline every region on the enlarged scan in its :data:`ROI_COLOURS` colour."""
    out = scan_rgb.copy()
    size = (out.shape[1], out.shape[0])
    for name, colour in ROI_COLOURS.items():
        mask = rois.get(name)
        if mask is None or not np.any(mask):
            continue
        big = cv2.resize(np.asarray(mask, np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, 2, cv2.LINE_AA)
    return out


def with_heatmap(scan_rgb: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """Blend a [0, 1] map (on the scan grid) over the enlarged scan with the jet colour
    scale; values below :data:`HEATMAP_FLOOR` leave the scan untouched."""
    size = (scan_rgb.shape[1], scan_rgb.shape[0])
    heat = np.clip(cv2.resize(np.asarray(heatmap, np.float32), size, interpolation=cv2.INTER_LINEAR), 0, 1)
    colours = cv2.cvtColor(cv2.applyColorMap((255 * heat).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    alpha = (HEATMAP_ALPHA * np.clip((heat - HEATMAP_FLOOR) / (1 - HEATMAP_FLOOR), 0, 1))[..., None]
    return (scan_rgb * (1 - alpha) + colours * alpha).astype(np.uint8)


def side_by_side(*pictures: np.ndarray, gap: int = 8) -> np.ndarray:
    """Pictures of the same height in one row with a black gap."""
    height = max(p.shape[0] for p in pictures)
    spacer = np.zeros((height, gap, 3), np.uint8)
    row = []
    for picture in pictures:
        padded = np.zeros((height, picture.shape[1], 3), np.uint8)
        padded[: picture.shape[0]] = picture
        row += [padded, spacer]
    return np.concatenate(row[:-1], axis=1)


def warning_strip(picture: np.ndarray, lines: list[str]) -> np.ndarray:
    """``picture`` under a red strip with ``lines`` of white text, wrapped to its width.

    For burned-in warnings (a view classified against the input gate's advice): the text
    is ASCII (OpenCV's fonts have no other glyphs).
    """
    font, scale, thickness, margin, step = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1, 8, 22
    width = picture.shape[1]
    wrapped: list[str] = []
    for line in lines:
        words = line.encode("ascii", "replace").decode().split()
        current = ""
        for word in words:
            candidate = f"{current} {word}".strip()
            if current and cv2.getTextSize(candidate, font, scale, thickness)[0][0] > width - 2 * margin:
                wrapped.append(current)
                current = word
            else:
                current = candidate
        if current:
            wrapped.append(current)
    strip = np.zeros((margin + step * len(wrapped) + margin // 2, width, 3), np.uint8)
    strip[:] = (176, 0, 32)
    for index, line in enumerate(wrapped):
        cv2.putText(strip, line, (margin, margin + step * index + 14), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return np.concatenate([strip, picture], axis=0)


#: legend names of the regions (salivary glands share a colour and one entry)
ROI_NAMES = {
    "thyroid_right": "right lobe",
    "thyroid_left": "left lobe",
    "isthmus": "isthmus",
    "nodules_hot": "hot nodule",
    "nodules_cold": "cold nodule",
    "salivary_right": "salivary glands",
    "salivary_left": "salivary glands",
    "background": "background",
}


def caption_strip(picture: np.ndarray, lines: list[str], legend: list[tuple[str, tuple[int, int, int]]], banner: str | None = None) -> np.ndarray:
    """``picture`` above a dark strip with burned-in text: a banner, caption lines and a legend.

    For the Secondary Capture, which PACS viewers show without the HTML report around it.
    Each legend item is a colour swatch with its name on the same line; items wrap as
    whole units, so a swatch never parts from its label. ASCII text only (OpenCV fonts).

    Args:
        picture: the RGB picture.
        lines: caption lines (e.g. the predicted class and its probability).
        legend: ``(name, RGB colour)`` per item.
        banner: a line in white on red above the caption (e.g. NOT FOR CLINICAL USE).
    """
    font, scale, thickness, margin, step, swatch = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1, 8, 22, 14
    width = picture.shape[1]
    rows: list[list[tuple[str, tuple[int, int, int]]]] = [[]]
    used = margin
    for name, colour in legend:
        item = swatch + 6 + cv2.getTextSize(name, font, scale, thickness)[0][0] + 18
        if rows[-1] and used + item > width - margin:
            rows.append([])
            used = margin
        rows[-1].append((name, colour))
        used += item
    rows = [row for row in rows if row]
    text_lines = [line.encode("ascii", "replace").decode() for line in lines]
    height = margin + step * (len(text_lines) + len(rows) + (1 if banner else 0)) + margin // 2
    strip = np.full((height, width, 3), 24, np.uint8)
    y = margin
    if banner:
        strip[y - 4 : y + step - 4] = (176, 0, 32)
        cv2.putText(strip, banner, (margin, y + 13), font, scale, (255, 255, 255), thickness + 1, cv2.LINE_AA)
        y += step
    for line in text_lines:
        cv2.putText(strip, line, (margin, y + 14), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
        y += step
    for row in rows:
        x = margin
        for name, colour in row:
            cv2.rectangle(strip, (x, y + 2), (x + swatch, y + 2 + swatch), colour, -1)
            cv2.putText(strip, name, (x + swatch + 6, y + 14), font, scale, (230, 230, 230), thickness, cv2.LINE_AA)
            x += swatch + 6 + cv2.getTextSize(name, font, scale, thickness)[0][0] + 18
        y += step
    return np.concatenate([picture, strip], axis=0)


def region_legend(rois: dict[str, np.ndarray] | None) -> list[tuple[str, tuple[int, int, int]]]:
    """Legend items of the outlined regions that are present (one item per name)."""
    items: dict[str, tuple[int, int, int]] = {}
    for key, colour in ROI_COLOURS.items():
        mask = (rois or {}).get(key)
        if mask is not None and np.any(mask):
            items.setdefault(ROI_NAMES.get(key, key.replace("_", " ")), colour)
    return list(items.items())


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB picture as PNG, tagged as a scintipipe preview (not a scan)."""
    return save_preview_png(rgb, path, "report image")


def scan_counts(case: dict[str, Any]) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The case's counts and spacing."""
    image = case["image"]
    spacing = (getattr(image, "meta", {}) or {}).get("spacing")
    return np.asarray(image[0], dtype=np.float32), (tuple(spacing) if spacing is not None else None)
