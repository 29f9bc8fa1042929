"""Decode a DICOM dataset's pixel data into grey frames with the rescale applied."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit

from scintipipe.errors import ScanError
from scintipipe.loaders.dicom_fast import element_value
from scintipipe.loaders.grey import to_grey
from scintipipe.loaders.limits import check_frame_size

#: refuse to decode more than this many bytes (a planar scan is a few MB)
MAX_DECODED_BYTES = 1 << 30

_SEQUENTIAL_JPEG = (JPEGBaseline8Bit, JPEGExtended12Bit)


def decode_frames(ds: Dataset, source: str) -> np.ndarray:
    """Return the frames of ``ds`` as ``(frames, rows, columns)`` grey values.

    Applies the Modality LUT or Rescale Slope/Intercept, converts colour (RGB, YBR,
    palette) to luminance and inverts MONOCHROME1 so that bright means more.

    Args:
        ds: a dataset with Pixel Data.
        source: the file name for error messages.

    Raises:
        ScanError: the pixel data cannot be decoded (truncated, corrupt, no decoder), its
            header holds invalid sizes, or it is over an input limit
            (:mod:`scintipipe.loaders.limits`) or absurdly large.
    """
    n_frames = number_of_frames(ds)
    rows, columns = header_int(ds, "Rows", source), header_int(ds, "Columns", source)
    samples, bits = header_int(ds, "SamplesPerPixel", source, 1), header_int(ds, "BitsAllocated", source, 8)
    check_frame_size(source, rows, columns, n_frames)
    size = n_frames * rows * columns * samples * max(1, bits // 8)
    if size > MAX_DECODED_BYTES:
        raise ScanError(source, f"pixel data of {n_frames} frame(s) of {rows}x{columns} would need {size / 2**30:.1f} GiB: absurd for a planar scan")
    pixels = _pixel_array(ds, source)
    if n_frames == 1 or pixels.ndim == (3 if samples > 1 else 2):
        pixels = pixels[None]
    photometric = str(element_value(ds, "PhotometricInterpretation") or "").upper()
    if photometric == "PALETTE COLOR":
        return to_grey(_apply_lut(apply_color_lut, pixels, ds, source, "Palette Color Lookup Table"))
    if samples > 1:
        return to_grey(pixels)
    values = _apply_lut(apply_modality_lut, pixels, ds, source, "Modality LUT or Rescale Slope/Intercept").astype(np.float32, copy=False)
    if photometric == "MONOCHROME1":
        values = values.max() + values.min() - values
    return values


def _apply_lut(apply: Callable[[np.ndarray, Dataset], np.ndarray], pixels: np.ndarray, ds: Dataset, source: str, what: str) -> np.ndarray:
    """``apply(pixels, ds)``, a missing or corrupt lookup table reported as a :class:`ScanError`."""
    try:
        return apply(pixels, ds)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise ScanError(source, f"the {what} cannot be applied, the header is missing it or corrupt: {exc}") from exc


def header_int(ds: Dataset, keyword: str, source: str, default: int = 0) -> int:
    """A whole-number header attribute (``Rows``, ``BitsAllocated``...), ``default`` when absent.

    Raises:
        ScanError: the value is not one non-negative whole number (a corrupt header).
    """
    try:
        value = element_value(ds, keyword)
    except Exception as exc:
        raise ScanError(source, f"unreadable {keyword} in the DICOM header: {exc}") from exc
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise ScanError(source, f"invalid {keyword} {value!r} in the DICOM header: the file is corrupt")
    return number


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames, 1 when absent or unreadable (the decoder then says what is wrong)."""
    try:
        return max(1, int(element_value(ds, "NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


#: uncompressed transfer syntaxes whose pixel data :func:`native_pixels` reads itself
_NATIVE_LITTLE_ENDIAN = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def native_pixels(ds: Dataset) -> np.ndarray | None:
    """The pixel array of uncompressed little-endian greyscale data, read without pydicom's decoder.

    Gives what ``ds.pixel_array`` gives (dtype, shape, values, the unused high bits
    cleared or sign-extended) for the common planar NM file, at a fraction of the cost:
    pydicom's pixel machinery costs more than the copy for a 128x128 frame. Anything
    unusual (compressed, big-endian, colour, 1-bit, odd lengths or header values) is
    left to pydicom, whose messages and warnings then stay as they were.

    Returns:
        The array (``(rows, columns)`` for one frame, ``(frames, rows, columns)`` else),
        or ``None`` when ``ds`` is not such data.
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax not in _NATIVE_LITTLE_ENDIAN or not ds.is_little_endian or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return None
    try:
        header = {key: element_value(ds, key) for key in ("SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation", "Rows", "Columns")}
        frames = element_value(ds, "NumberOfFrames") if "NumberOfFrames" in ds else 1
        photometric = element_value(ds, "PhotometricInterpretation")
        data = element_value(ds, "PixelData")
    except Exception:  # noqa: BLE001  (a corrupt element: pydicom's decoder says what is wrong)
        return None
    values = list(header.values())
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in [*values, frames]):
        return None
    samples, allocated, stored, representation, rows, columns = (int(value) for value in values)
    frames = int(frames)
    if (
        samples != 1
        or allocated not in (8, 16, 32)
        or not 1 <= stored <= allocated
        or representation not in (0, 1)
        or not (0 < rows < 2**16 and 0 < columns < 2**16 and frames >= 1)
        or photometric not in ("MONOCHROME1", "MONOCHROME2")
        or not isinstance(data, bytes)
    ):
        return None
    expected = frames * rows * columns * allocated // 8
    if len(data) not in (expected, expected + expected % 2):
        return None
    dtype = np.dtype(f"<{'i' if representation else 'u'}{allocated // 8}")
    array = (
        np.frombuffer(data, dtype=dtype, count=frames * rows * columns).reshape((rows, columns) if frames == 1 else (frames, rows, columns)).copy()
    )
    if stored < allocated:  # as pydicom: clear the unused high bits, or extend the sign
        shift = allocated - stored
        np.left_shift(array, shift, out=array)
        np.right_shift(array, shift, out=array)
    return array


def _pixel_array(ds: Dataset, source: str) -> np.ndarray:
    native = native_pixels(ds)
    if native is not None:
        return native
    try:
        return ds.pixel_array
    except Exception as first_error:
        repaired = _with_repaired_jpeg_scan_headers(ds)
        if repaired is not None:
            try:
                return repaired.pixel_array
            except Exception:  # noqa: BLE001
                pass
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = syntax.name if syntax else "unknown transfer syntax"
        reason = str(first_error).strip().splitlines()
        raise ScanError(
            source, f"pixel data ({name}) cannot be decoded, the file may be truncated or corrupt: {' '.join(reason)[:300]}{_codec_hint(syntax)}"
        ) from first_error


def _codec_hint(syntax: Any) -> str:
    """Name the ``dicom-codecs`` extra when a compressed syntax failed and its decoders are not all installed."""
    from scintipipe.extras import install_hint, missing_packages

    try:
        compressed = syntax is not None and syntax.is_transfer_syntax and syntax.is_compressed
    except (AttributeError, ValueError):  # not a UID, or an unknown one
        compressed = False
    if not compressed:
        return ""
    missing = missing_packages("dicom-codecs")
    return f" (decoders not installed: {', '.join(missing)}; {install_hint('dicom-codecs')})" if missing else ""


def _with_repaired_jpeg_scan_headers(ds: Dataset) -> Dataset | None:
    """A copy of ``ds`` whose sequential-JPEG frames have a valid scan header, or ``None``.

    Some NM workstations write baseline/extended JPEG with a Start of Scan header whose
    spectral selection end is 0 instead of 63 (e.g. NEMA's WG04 ``NM1_JPLY``); the scan
    data are fine, so correcting the header decodes the image as intended.
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax not in _SEQUENTIAL_JPEG:
        return None
    frames = [repair_sequential_jpeg_scan_header(frame) for frame in generate_frames(ds.PixelData, number_of_frames=number_of_frames(ds))]
    if all(frame is None for frame in frames):
        return None
    original = list(generate_frames(ds.PixelData, number_of_frames=number_of_frames(ds)))
    fixed = copy.copy(ds)
    fixed.PixelData = encapsulate([new or old for new, old in zip(frames, original, strict=True)])
    return fixed


def repair_sequential_jpeg_scan_header(data: bytes) -> bytes | None:
    """Set Ss=0, Se=63, Ah=Al=0 in the scan headers of a sequential (SOF0/SOF1) JPEG.

    Args:
        data: one JPEG codestream.

    Returns:
        The corrected codestream, or ``None`` when it is not sequential DCT or needs no fix.
    """
    out = bytearray(data)
    pos, sequential, changed = 2, False, False
    while pos + 4 <= len(out) and out[pos] == 0xFF:
        marker = out[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(out[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1):
            sequential = True
        elif marker == 0xDA:
            if not sequential:
                return None
            components = out[pos + 4]
            tail = pos + 5 + 2 * components
            if tail + 3 > len(out):
                return None
            if bytes(out[tail : tail + 3]) != b"\x00\x3f\x00":
                out[tail : tail + 3] = b"\x00\x3f\x00"
                changed = True
            break
        pos += 2 + length
    return bytes(out) if changed else None
