"""Registers the built-in simulators and the `simulate` command."""

from scintipipe import hookimpl  # noqa: F401
