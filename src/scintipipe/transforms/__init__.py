"""MONAI transforms shipped with scintipipe, usable from bundle configs by dotted path."""

from scintipipe.transforms.dictionary import ArrayTransform, ArrayTransformd
from scintipipe.transforms.io import CollatableMetad, LoadScan, LoadScand, list_scans
from scintipipe.transforms.predictions import SavePredictionsd
from scintipipe.transforms.scintigram import (
    CropNeckRegion,
    CropNeckRegiond,
    NormalizeCounts,
    NormalizeCountsd,
    ResampleToSpacing,
    ResampleToSpacingd,
)

__all__ = [
    "ArrayTransform",
    "ArrayTransformd",
    "CollatableMetad",
    "LoadScan",
    "LoadScand",
    "list_scans",
    "SavePredictionsd",
    "ResampleToSpacing",
    "ResampleToSpacingd",
    "CropNeckRegion",
    "CropNeckRegiond",
    "NormalizeCounts",
    "NormalizeCountsd",
]
