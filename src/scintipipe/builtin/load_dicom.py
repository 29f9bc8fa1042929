"""DICOM loader plugin (NM, Secondary Capture; compressed syntaxes)."""

from scintipipe import hookimpl  # noqa: F401
