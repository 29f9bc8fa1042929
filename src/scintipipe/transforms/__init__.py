"""MONAI transforms shipped with scintipipe, usable from bundle configs by dotted path."""

from scintipipe.transforms.io import LoadScan, LoadScand
from scintipipe.transforms.predictions import SavePredictionsd

__all__ = ["LoadScan", "LoadScand", "SavePredictionsd"]
