"""PNG/JPEG/TIFF export loader plugin."""

from scintipipe import hookimpl  # noqa: F401
