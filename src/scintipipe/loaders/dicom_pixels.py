"""Decode a DICOM dataset's pixel data into grey frames with the rescale applied."""

from __future__ import annotations

import copy

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit

from scintipipe.errors import ScanError
from scintipipe.loaders.grey import to_grey

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
        ScanError: the pixel data cannot be decoded (truncated, corrupt, no decoder) or
            would be absurdly large.
    """
    n_frames = _number_of_frames(ds)
    samples = int(ds.get("SamplesPerPixel") or 1)
    size = n_frames * int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * samples * max(1, int(ds.get("BitsAllocated") or 8) // 8)
    if size > MAX_DECODED_BYTES:
        raise ScanError(source, f"pixel data of {n_frames} frame(s) of {ds.get('Rows')}x{ds.get('Columns')} would need {size / 2**30:.1f} GiB: absurd for a planar scan")
    pixels = _pixel_array(ds, source)
    if n_frames == 1 or pixels.ndim == (3 if samples > 1 else 2):
        pixels = pixels[None]
    photometric = str(ds.get("PhotometricInterpretation") or "").upper()
    if photometric == "PALETTE COLOR":
        return to_grey(apply_color_lut(pixels, ds))
    if samples > 1:
        return to_grey(pixels)
    values = apply_modality_lut(pixels, ds).astype(np.float32, copy=False)
    if photometric == "MONOCHROME1":
        values = values.max() + values.min() - values
    return values


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _pixel_array(ds: Dataset, source: str) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as first_error:  # noqa: BLE001  (decoders raise many kinds)
        repaired = _with_repaired_jpeg_scan_headers(ds)
        if repaired is not None:
            try:
                return repaired.pixel_array
            except Exception:  # noqa: BLE001
                pass
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = syntax.name if syntax else "unknown transfer syntax"
        reason = str(first_error).strip().splitlines()
        raise ScanError(source, f"pixel data ({name}) cannot be decoded, the file may be truncated or corrupt: {' '.join(reason)[:300]}") from first_error


def _with_repaired_jpeg_scan_headers(ds: Dataset) -> Dataset | None:
    """A copy of ``ds`` whose sequential-JPEG frames have a valid scan header, or ``None``.

    Some NM workstations write baseline/extended JPEG with a Start of Scan header whose
    spectral selection end is 0 instead of 63 (e.g. NEMA's WG04 ``NM1_JPLY``); the scan
    data are fine, so correcting the header decodes the image as intended.
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax not in _SEQUENTIAL_JPEG:
        return None
    frames = [repair_sequential_jpeg_scan_header(frame) for frame in generate_frames(ds.PixelData, number_of_frames=_number_of_frames(ds))]
    if all(frame is None for frame in frames):
        return None
    original = list(generate_frames(ds.PixelData, number_of_frames=_number_of_frames(ds)))
    fixed = copy.copy(ds)
    fixed.PixelData = encapsulate([new or old for new, old in zip(frames, original)])
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
