"""Registers the uptake4 task and its shipped bundle."""

from scintipipe import hookimpl  # noqa: F401
