"""Classifies batches with the bundle's network."""

from scintipipe import hookimpl  # noqa: F401
