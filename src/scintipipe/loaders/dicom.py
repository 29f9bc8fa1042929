"""Load DICOM files (NM Image Storage, Secondary Capture and other images) into scans.

A multi-frame NM file gives one scan per frame, named by its view
(``"file.dcm#anterior"``, ``"file.dcm#posterior"``) or ``"file.dcm#frame2"`` when views
cannot be told apart. Files that are DICOM but hold no image to classify raise
:class:`scintipipe.errors.NotAnImage`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import NuclearMedicineImageStorage

from scintipipe.errors import NotAnImage, ScanError, ScintipipeError
from scintipipe.loaders.dicom_fast import element_value
from scintipipe.loaders.dicom_meta import dataset_metadata, frame_metadata, sop_class
from scintipipe.loaders.dicom_pixels import decode_frames, header_int, number_of_frames
from scintipipe.loaders.views import frame_names, frame_views
from scintipipe.scan import make_scan

#: SOP Class UID prefixes of DICOM objects that are not images to classify
NON_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.1.3.10": "a DICOMDIR (media directory)",
    "1.2.840.10008.5.1.4.1.1.481.": "a radiotherapy object",
    "1.2.840.10008.5.1.4.1.1.88.": "a structured report",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state",
    "1.2.840.10008.5.1.4.1.1.66": "raw data, a registration, a segmentation or fiducials",
    "1.2.840.10008.5.1.4.1.1.104.": "an encapsulated document",
    "1.2.840.10008.5.1.4.1.1.9.": "a waveform",
}

#: NM Image Type value 3 (and words anywhere) that mean tomographic data
TOMO_IMAGE_TYPES = ("TOMO", "GATED TOMO", "RECON TOMO", "RECON GATED TOMO")

#: modalities whose multi-frame images are volumes, not planar views
VOLUME_MODALITIES = ("CT", "MR", "PT")


def load_dicom(path: str | Path) -> list[dict[str, Any]]:
    """Read a DICOM file into scans, one per planar frame.

    Args:
        path: the file.

    Returns:
        Scans built with :func:`scintipipe.scan.make_scan`; a single-frame file's source
        is the path, a multi-frame file's ``"path#view"`` or ``"path#frameN"``.

    Raises:
        NotAnImage: DICOMDIR, SR, RT, presentation state, or no pixel data.
        ScanError: not DICOM, truncated or corrupt, a 3-D SPECT volume, or pixels that
            :func:`~scintipipe.scan.make_scan` rejects.
    """
    source = str(path)
    ds = read_dataset(path)
    try:
        return _scans_of(ds, source)
    except ScintipipeError:
        raise
    except CORRUPT_ELEMENT_ERRORS as exc:
        raise ScanError(path, f"corrupt DICOM header, an element cannot be read: {type(exc).__name__}: {exc}") from exc


#: what pydicom raises when it first converts a corrupt element (an unknown VR after a bit
#: flip, a value that does not parse); elements are converted when first read, so these
#: are caught around the whole reading of one file rather than by converting every element
#: up front, which took 58 % of the loader's time
CORRUPT_ELEMENT_ERRORS = (NotImplementedError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, UnicodeDecodeError)


def _scans_of(ds: Dataset, source: str) -> list[dict[str, Any]]:
    reject_non_images(ds, source)
    reject_volumes(ds, source)
    frames = decode_frames(ds, source)
    shared = dataset_metadata(ds)
    views = frame_views(ds, len(frames))
    names = frame_names(views)
    scans = []
    for index, (pixels, view, name) in enumerate(zip(frames, views, names, strict=True)):
        scan_source = source if len(frames) == 1 else f"{source}#{name}"
        scans.append(make_scan(pixels, scan_source, view=view, **shared, **frame_metadata(ds, index, len(frames))))
    return scans


def read_dataset(path: str | Path) -> Dataset:
    """Parse a DICOM file (with or without the 128-byte preamble).

    The file is read in one call and parsed from memory: pydicom reading a file element
    by element makes a system call per element (about 170 for a planar NM file).

    Raises:
        ScanError: the file is not DICOM or cannot be parsed.
    """
    ds: Dataset
    try:
        data = Path(path).read_bytes()
        ds = pydicom.dcmread(io.BytesIO(data))
    except pydicom.errors.InvalidDicomError:
        ds = _read_without_preamble(path, data)
    except Exception as exc:
        raise ScanError(path, f"corrupt or truncated DICOM file: {type(exc).__name__}: {exc}") from exc
    if getattr(ds, "file_meta", None) is None or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = _guess_transfer_syntax(ds)
    return ds


def _read_without_preamble(path: str | Path, data: bytes) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise ScanError(path, f"not a DICOM file (no 'DICM' marker and not parseable: {exc})") from exc
    if not any(key in ds for key in ("SOPClassUID", "Modality", "StudyInstanceUID", "PixelData")):
        raise ScanError(path, "not a DICOM file: no 'DICM' marker at byte 128 and no DICOM attributes could be read")
    return ds


def reject_non_images(ds: Dataset, source: str) -> None:
    """Raise :class:`NotAnImage` for DICOM objects that hold no image to classify.

    A file whose SOP class is an image class but that has no pixel data is truncated, not
    a non-image: that raises :class:`ScanError`.
    """
    if len(ds) == 0:
        raise ScanError(source, "no DICOM attributes after the file meta information: the file is truncated or corrupt")
    sop = sop_class(ds)
    uid = str(sop or "")
    if uid and not pydicom.uid.UID(uid).is_valid:
        raise ScanError(source, f"invalid SOP Class UID {uid!r}: the file is truncated or corrupt")
    name = getattr(sop, "name", uid) or "unknown SOP class"
    for prefix, what in NON_IMAGE_SOP_CLASSES.items():
        if uid == prefix or (prefix.endswith(".") and uid.startswith(prefix)) or uid.startswith(prefix + "."):
            raise NotAnImage(source, f"{what} ({name}), not an image")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if "Image Storage" in name:
            raise ScanError(source, f"{name} without pixel data: the file is truncated or corrupt")
        raise NotAnImage(source, f"DICOM without pixel data ({name}), not an image")


def reject_volumes(ds: Dataset, source: str) -> None:
    """Raise :class:`ScanError` for SPECT (tomographic) data and other 3-D volumes."""
    image_type = [str(v).strip().upper() for v in (element_value(ds, "ImageType") or [])]
    is_nm = element_value(ds, "Modality") == "NM" or sop_class(ds) == NuclearMedicineImageStorage
    if is_nm and (any(value in TOMO_IMAGE_TYPES for value in image_type[2:3]) or "RECON" in " ".join(image_type)):
        raise ScanError(source, f"a 3-D SPECT volume (ImageType {'/'.join(image_type)}) where a planar view is expected")
    slices = header_int(ds, "NumberOfSlices", source)
    if slices > 1:
        raise ScanError(source, f"a 3-D volume of {slices} slices (NumberOfSlices) where a planar view is expected")
    frames = number_of_frames(ds)
    if frames > 1 and str(element_value(ds, "Modality") or "") in VOLUME_MODALITIES:
        raise ScanError(source, f"a 3-D {ds.Modality} volume of {frames} frames where a planar view is expected")


def _guess_transfer_syntax(ds: Dataset) -> Any:
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if ds.is_little_endian is False:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if ds.is_implicit_VR else ExplicitVRLittleEndian
