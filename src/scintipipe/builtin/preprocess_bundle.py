"""Applies a bundle's scan_transforms."""

from scintipipe import hookimpl  # noqa: F401
