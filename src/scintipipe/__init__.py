"""scintipipe: thyroid scintigraphy pipeline built from pluggy hooks and MONAI bundles.

A plugin imports from one module, :mod:`scintipipe.api` (``from scintipipe.api import
hookimpl, ScanError, make_scan``): the declared plugin API, cheap to import. ``hookimpl``
is also importable from here, as before.
"""

from scintipipe.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
