"""Grad-CAM saliency with monai.visualize."""

from scintipipe import hookimpl  # noqa: F401
