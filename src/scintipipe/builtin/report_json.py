"""Writes report.json per case."""

from scintipipe import hookimpl  # noqa: F401
