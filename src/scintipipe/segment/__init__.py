"""Regions of interest and quantities of a planar neck scan.

:func:`segment_neck` finds the thyroid lobes, isthmus, nodules, salivary glands and a
background region without training (thresholds, connected components and OpenCV
GrabCut); :func:`quantify` turns them into counts, areas and ratios; the
:mod:`~scintipipe.segment.uptake` module computes the 99mTc uptake from syringe images.
``docs/segmentation.md`` describes the method and its measured accuracy.
"""

from scintipipe.segment.classical import ROI_NAMES, segment_neck
from scintipipe.segment.quantify import quantify
from scintipipe.segment.uptake import SyringeCount, decay_factor, thyroid_uptake_percent

__all__ = ["ROI_NAMES", "SyringeCount", "decay_factor", "quantify", "segment_neck", "thyroid_uptake_percent"]
