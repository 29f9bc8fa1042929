"""Saliency maps and where they fall on the scan.

:mod:`~scintipipe.explain.methods` wraps ``monai.visualize`` (Grad-CAM, Grad-CAM++,
occlusion sensitivity); :mod:`~scintipipe.explain.geometry` maps a map from the network
input grid back onto the original scan for overlays.
"""

from scintipipe.explain.geometry import heatmap_on_scan
from scintipipe.explain.methods import METHODS, class_activation_maps, occlusion_maps

__all__ = ["METHODS", "class_activation_maps", "heatmap_on_scan", "occlusion_maps"]
