"""scintipipe: thyroid scintigraphy pipeline built from pluggy hooks and MONAI bundles.

A plugin needs only ``from scintipipe import hookimpl``.
"""

from scintipipe.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
