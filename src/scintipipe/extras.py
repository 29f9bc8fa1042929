"""The optional parts of scintipipe and the pip extras that install them.

The core install classifies, simulates, trains and writes JSON and HTML reports. Code that
needs an extra imports its packages where it uses them and, when they are missing, says
which extra to install (``pip install "scintipipe[server]"``) instead of failing with a
bare ``ModuleNotFoundError``. Checking imports nothing, so it is cheap at start-up.

Keep :data:`EXTRAS` in step with ``[project.optional-dependencies]`` in ``pyproject.toml``
(``tests/test_packaging.py`` checks).
"""

from __future__ import annotations

from importlib import metadata
from importlib.util import find_spec

from scintipipe.errors import ScintipipeError

#: extra -> (distribution, import name) of each package it installs
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "server": (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("python-multipart", "python_multipart")),
    "dicom-codecs": (
        ("pylibjpeg", "pylibjpeg"),
        ("pylibjpeg-libjpeg", "libjpeg"),
        ("pylibjpeg-openjpeg", "openjpeg"),
        ("pylibjpeg-rle", "rle"),
        ("python-gdcm", "gdcm"),
    ),
    "reports": (("highdicom", "highdicom"),),
    "monai-bundle": (("fire", "fire"), ("pytorch-ignite", "ignite"), ("jsonschema", "jsonschema")),
    "dicom-network": (("pynetdicom", "pynetdicom"), ("dicomweb-client", "dicomweb_client")),
    "scale": (("dask", "dask"), ("dask-jobqueue", "dask_jobqueue")),  # dask[distributed]; dask-jobqueue needs distributed too
}


class MissingExtra(ScintipipeError, ImportError):
    """A feature needs packages of an extra that is not installed.

    Args:
        extra: the extra's name (``server``).
        feature: what needed it, in words (``scintipipe serve``).
        missing: the distributions not installed.
    """

    def __init__(self, extra: str, feature: str, missing: list[str]):
        self.extra = extra
        self.missing = missing
        super().__init__(f"{feature} needs {', '.join(missing)}, not installed: {install_hint(extra)}")


def install_hint(extra: str) -> str:
    """The command that installs ``extra``.

    Example:
        >>> install_hint("server")
        'pip install "scintipipe[server]"'
    """
    return f'pip install "scintipipe[{extra}]"'


def _installed(distribution: str, module: str) -> bool:
    try:
        if find_spec(module) is not None:
            return True
    except (ImportError, ValueError):
        pass
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def missing_packages(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed (empty when it is complete)."""
    return [distribution for distribution, module in EXTRAS[extra] if not _installed(distribution, module)]


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` when a package of ``extra`` is missing.

    Args:
        extra: a key of :data:`EXTRAS`.
        feature: what needs it, for the message (``"scintipipe serve"``).
    """
    missing = missing_packages(extra)
    if missing:
        raise MissingExtra(extra, feature, missing)
