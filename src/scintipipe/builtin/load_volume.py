"""NIfTI (nibabel) and MetaImage/NRRD (ITK) loader plugin."""

from scintipipe import hookimpl  # noqa: F401
