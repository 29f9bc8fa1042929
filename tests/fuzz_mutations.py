"""Seed files and their mutations, for fuzzing the loaders (tests and benchmarks).

A *mutation* is a list of operations, each a plain tuple so that Hypothesis can shrink it
and a failure can be printed and replayed:

``("truncate", keep)``               keep the first ``keep`` bytes (modulo the length)
``("flip", position, bit)``          flip one bit
``("insert", position, chunk)``      insert bytes
``("overwrite", position, chunk)``   overwrite bytes
``("dicom", keyword, vr, raw)``      set a DICOM attribute to raw bytes (``None`` deletes it)
``("png", field, value)``            set an IHDR field (CRC fixed, so the lie is believable)
``("nifti", field, value)``          set a NIfTI-1 header field
``("nrrd", field, value)``           set a NRRD header line

Positions wrap around the data's length, so any integer is a valid position.

Used by ``tests/test_fuzz_inputs.py`` (Hypothesis) and ``benchmarks/fuzz_inputs.py``
(``random.Random``), from the same lists of absurd values.

Example:
    >>> apply_mutation("a.png", b"0123456789", [("truncate", 4), ("flip", 0, 0)])
    b'1123'
"""

from __future__ import annotations

import io
import random
import signal
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dicom_factory import thyroid_pattern, write_nm_dicom

Operation = tuple[Any, ...]

#: absurd DICOM header values: (keyword, VR, raw value or None to delete the attribute)
DICOM_EDITS: list[tuple[str, str, bytes | None]] = [
    *(("Rows", "US", struct.pack("<H", v)) for v in (0, 1, 15, 65535)),
    *(("Columns", "US", struct.pack("<H", v)) for v in (0, 1, 65535)),
    *(("NumberOfFrames", "IS", v) for v in (b"0", b"-1", b"3", b"1000000", b"abc", b"2.5", b"")),
    *(("PixelSpacing", "DS", v) for v in (b"-1\\-1", b"0\\0", b"NaN\\NaN", b"inf\\1", b"1", b"x\\y")),
    *(("RescaleSlope", "DS", v) for v in (b"NaN", b"inf", b"0", b"-1e308", b"1e308", b"abc")),
    *(("RescaleIntercept", "DS", v) for v in (b"NaN", b"1e308", b"-inf")),
    *(("BitsAllocated", "US", struct.pack("<H", v)) for v in (0, 1, 7, 8, 12, 32, 64, 65535)),
    *(("BitsStored", "US", struct.pack("<H", v)) for v in (0, 1, 33)),
    *(("HighBit", "US", struct.pack("<H", v)) for v in (0, 99)),
    *(("PixelRepresentation", "US", struct.pack("<H", v)) for v in (1, 7)),
    *(("SamplesPerPixel", "US", struct.pack("<H", v)) for v in (0, 2, 3, 65535)),
    *(("PlanarConfiguration", "US", struct.pack("<H", v)) for v in (1, 9)),
    *(("PhotometricInterpretation", "CS", v) for v in (b"MONOCHROME1", b"RGB", b"PALETTE COLOR", b"YBR_FULL", b"XYZ", b"")),
    *(("DetectorVector", "US", v) for v in (struct.pack("<2H", 9, 9), struct.pack("<H", 0), b"")),
    *(("EnergyWindowVector", "US", v) for v in (struct.pack("<2H", 5, 5), struct.pack("<H", 0))),
    *(("ImageType", "CS", v) for v in (b"ORIGINAL\\PRIMARY\\TOMO", b"", b"\\\\\\\\")),
    *(("SOPClassUID", "UI", v) for v in (b"1.2.840.10008.5.1.4.1.1.88.22", b"1.2.840.10008.5.1.4.1.1.7", b"not.a.uid", b"")),
    *(("Modality", "CS", v) for v in (b"CT", b"PT", b"")),
    *(("NumberOfSlices", "US", struct.pack("<H", v)) for v in (0, 40)),
    *(("ActualFrameDuration", "IS", v) for v in (b"-5", b"abc", b"99999999999999")),
    *(("AcquisitionDate", "DA", v) for v in (b"20241399", b"abcd")),
    *(("AcquisitionTime", "TM", v) for v in (b"996199", b"x")),
    *(("PixelData", "OW", v) for v in (b"", b"\x00\x01\x02\x03")),
    *((keyword, "US", None) for keyword in ("Rows", "Columns", "BitsAllocated", "PixelData", "SamplesPerPixel", "PhotometricInterpretation")),
    ("TransferSyntaxUID", "UI", b"1.2.840.10008.1.2.4.50"),  # claims JPEG, holds raw pixels
    ("TransferSyntaxUID", "UI", b"1.2.840.10008.1.2.5"),  # claims RLE
    ("TransferSyntaxUID", "UI", b"1.2.840.10008.1.2.1.99"),  # claims deflate
    ("TransferSyntaxUID", "UI", b"1.2.840.10008.1.2.2"),  # claims big endian
    ("TransferSyntaxUID", "UI", b"1.2.3.4"),
]

#: absurd PNG IHDR values: (field, value)
PNG_EDITS: list[tuple[str, int]] = [
    *(("width", v) for v in (0, 1, 15, 4097, 100_000, 2**31 - 1, 2**32 - 1)),
    *(("height", v) for v in (0, 1, 100_000, 2**31 - 1)),
    *(("bit_depth", v) for v in (0, 1, 2, 3, 16, 255)),
    *(("colour_type", v) for v in (1, 2, 3, 4, 6, 7, 255)),
    *(("interlace", v) for v in (1, 2)),
    ("compression", 1),
    ("filter", 1),
]
#: both PNG sides claim 100000 pixels (10^10 pixels over a few kilobytes)
PNG_BOMB: list[Operation] = [("png", "width", 100_000), ("png", "height", 100_000)]

#: NIfTI-1 header fields: name -> (byte offset, struct format)
NIFTI_FIELDS = {
    "sizeof_hdr": (0, "<i"),
    "dim0": (40, "<h"),
    "dim1": (42, "<h"),
    "dim2": (44, "<h"),
    "dim3": (46, "<h"),
    "dim4": (48, "<h"),
    "intent_code": (68, "<h"),
    "datatype": (70, "<h"),
    "bitpix": (72, "<h"),
    "pixdim0": (76, "<f"),
    "pixdim1": (80, "<f"),
    "pixdim2": (84, "<f"),
    "vox_offset": (108, "<f"),
    "scl_slope": (112, "<f"),
    "scl_inter": (116, "<f"),
}
NAN, INF = float("nan"), float("inf")
#: absurd NIfTI-1 header values: (field, value)
NIFTI_EDITS: list[tuple[str, float]] = [
    *(("sizeof_hdr", v) for v in (0, 540, -1)),
    *(("dim0", v) for v in (0, -1, 1, 3, 7, 8, 100)),
    *(("dim1", v) for v in (0, -5, 1, 32767)),
    *(("dim2", v) for v in (0, -5, 32767)),
    *(("dim3", v) for v in (0, 2, 32767)),
    *(("dim4", v) for v in (32767,)),
    ("intent_code", 1002),
    *(("datatype", v) for v in (0, 1, 2, 16, 128, 1536, 2304, 9999, -1)),
    *(("bitpix", v) for v in (0, 3, 64)),
    *(("pixdim0", v) for v in (NAN, 2.0)),
    *(("pixdim1", v) for v in (-1.0, 0.0, NAN, INF)),
    *(("pixdim2", v) for v in (-2.0, NAN)),
    *(("vox_offset", v) for v in (0.0, -1.0, 1e10, NAN, 353.0)),
    *(("scl_slope", v) for v in (NAN, INF, 0.0, -1.0, 1e38)),
    *(("scl_inter", v) for v in (NAN, -INF)),
]

#: absurd NRRD header lines: (field, value)
NRRD_EDITS: list[tuple[str, str]] = [
    *(("sizes", v) for v in ("100000 100000 1", "0 64 1", "-5 64 1", "64 64 1000000", "64", "64 64 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "a b c")),
    *(("type", v) for v in ("double", "int64", "block", "nonsense")),
    *(("dimension", v) for v in ("0", "1", "17", "x")),
    *(("encoding", v) for v in ("gzip", "bzip2", "hex", "ascii", "nonsense")),
    *(("endian", v) for v in ("big", "middle")),
    *(("space directions", v) for v in ("(-2,0,0) (0,0,0) (0,0,1)", "(nan,0,0) (0,nan,0) (0,0,1)", "none none none")),
    *(("data file", v) for v in ("missing.raw", "/dev/zero", "LIST")),
]

#: the seed files: name -> how its header is mutated (``None``: bytes only)
SEED_HEADERS = {
    "nm.dcm": "dicom",
    "export.png": "png",
    "hot.png": "png",
    "export.jpg": None,
    "export.tif": None,
    "planar.nii": "nifti",
    "planar.nrrd": "nrrd",
}


def write_seeds(folder: str | Path) -> dict[str, bytes]:
    """Write one valid file of each seed kind into ``folder``; return ``{name: bytes}``.

    The seeds are small (64x64) so that each mutation loads in milliseconds: a two-view
    NM DICOM, an 8-bit grey PNG, an RGB PNG on the ``hot`` colour table, a JPEG, a TIFF, an
    uncompressed NIfTI-1 and an inline NRRD.
    """
    from PIL import Image

    from scintipipe.loaders.grey import lookup_table

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = np.stack([thyroid_pattern(seed=0), thyroid_pattern(seed=1)])
    write_nm_dicom(folder / "nm.dcm", counts, views=("anterior", "posterior"))
    grey = np.clip(counts[0].astype(float) * 255 / counts[0].max(), 0, 255).astype(np.uint8)
    Image.fromarray(grey).save(folder / "export.png")
    Image.fromarray(lookup_table("hot")[grey]).save(folder / "hot.png")
    Image.fromarray(grey).save(folder / "export.jpg", quality=90)
    Image.fromarray(grey).save(folder / "export.tif")
    _write_nifti(folder / "planar.nii", counts[0])
    _write_nrrd(folder / "planar.nrrd", counts[0])
    return {name: (folder / name).read_bytes() for name in SEED_HEADERS}


def _write_nifti(path: Path, pixels: np.ndarray) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(pixels.T[:, :, None].astype(np.int16), np.diag([2.0, 2.0, 1.0, 1.0]))
    nib.save(image, path)


def _write_nrrd(path: Path, pixels: np.ndarray) -> None:
    rows, columns = pixels.shape
    header = (
        "NRRD0004\n"
        "type: unsigned short\n"
        "dimension: 3\n"
        f"sizes: {columns} {rows} 1\n"
        "space: left-posterior-superior\n"
        "space directions: (2,0,0) (0,2,0) (0,0,1)\n"
        "endian: little\n"
        "encoding: raw\n"
        "\n"
    )
    path.write_bytes(header.encode() + pixels.astype("<u2").tobytes())


def apply_mutation(name: str, data: bytes, operations: list[Operation]) -> bytes:
    """Apply ``operations`` in turn to the bytes of seed ``name``.

    Args:
        name: the seed's file name (its header kind is :data:`SEED_HEADERS` ``[name]``).
        data: its bytes.
        operations: the mutation (see the module documentation).

    Returns:
        The mutated bytes; a header edit that no longer applies (the header was destroyed
        by an earlier operation) leaves the bytes as they were.
    """
    out = bytes(data)
    for operation in operations:
        out = _apply_one(name, out, operation)
    return out


def _apply_one(name: str, data: bytes, operation: Operation) -> bytes:
    kind = operation[0]
    if kind == "truncate":
        return data[: operation[1] % (len(data) + 1)]
    if not data:
        return data
    if kind == "flip":
        position = operation[1] % len(data)
        return data[:position] + bytes([data[position] ^ (1 << (operation[2] % 8))]) + data[position + 1 :]
    if kind == "insert":
        position = operation[1] % (len(data) + 1)
        return data[:position] + bytes(operation[2]) + data[position:]
    if kind == "overwrite":
        position = operation[1] % len(data)
        chunk = bytes(operation[2])
        return data[:position] + chunk + data[position + len(chunk) :]
    editors = {"dicom": _edit_dicom, "png": _edit_png, "nifti": _edit_nifti, "nrrd": _edit_nrrd}
    if kind in editors:
        try:
            return editors[kind](data, *operation[1:])
        except Exception:  # noqa: BLE001  (the header is already too broken to edit)
            return data
    raise ValueError(f"unknown mutation operation {operation!r}")


def _edit_dicom(data: bytes, keyword: str, vr: str, raw: bytes | None) -> bytes:
    import pydicom
    from pydicom import config
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    reading, writing = config.settings.reading_validation_mode, config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.settings.writing_validation_mode = config.IGNORE
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if keyword == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = raw.decode()
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=False, implicit_vr=False, little_endian=True)
            return buffer.getvalue()
        tag = Tag(tag_for_keyword(keyword))
        if raw is None:
            if tag in ds:
                del ds[tag]
        else:
            value = raw + (b" " if len(raw) % 2 and vr not in ("UI",) else b"\x00" if len(raw) % 2 else b"")
            ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
        return buffer.getvalue()
    finally:
        config.settings.reading_validation_mode, config.settings.writing_validation_mode = reading, writing


_IHDR_FIELDS = {
    "width": (16, ">I"),
    "height": (20, ">I"),
    "bit_depth": (24, ">B"),
    "colour_type": (25, ">B"),
    "compression": (26, ">B"),
    "filter": (27, ">B"),
    "interlace": (28, ">B"),
}


def _edit_png(data: bytes, field: str, value: int) -> bytes:
    if data[12:16] != b"IHDR":
        return data
    offset, form = _IHDR_FIELDS[field]
    out = bytearray(data)
    out[offset : offset + struct.calcsize(form)] = struct.pack(form, value)
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])) & 0xFFFFFFFF)
    return bytes(out)


def _edit_nifti(data: bytes, field: str, value: float) -> bytes:
    offset, form = NIFTI_FIELDS[field]
    if len(data) < offset + struct.calcsize(form):
        return data
    packed = struct.pack(form, int(value) if form.endswith(("h", "i")) else value)
    return data[:offset] + packed + data[offset + len(packed) :]


def _edit_nrrd(data: bytes, field: str, value: str) -> bytes:
    end = data.find(b"\n\n")
    if end < 0:
        return data
    lines = data[:end].decode("latin-1").split("\n")
    replaced = [f"{field}: {value}" if line.split(":", 1)[0].strip() == field else line for line in lines]
    if replaced == lines:
        replaced.append(f"{field}: {value}")
    return "\n".join(replaced).encode("latin-1") + data[end:]


def random_mutation(rng: random.Random, name: str, data_length: int) -> list[Operation]:
    """A random mutation of seed ``name`` (for the benchmark; the tests use Hypothesis).

    One to three operations; about a third are header edits from the lists above, the
    rest byte operations, half of them within the first 2 KiB (where headers are).
    """
    operations: list[Operation] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        header = SEED_HEADERS[name]
        if header and rng.random() < 0.35:
            operations.append(_random_header_edit(rng, header))
            continue
        position = rng.randrange(2048) if rng.random() < 0.5 else rng.randrange(max(1, data_length))
        kind = rng.choice(("truncate", "flip", "flip", "insert", "overwrite"))
        if kind == "truncate":
            operations.append(("truncate", position))
        elif kind == "flip":
            operations.append(("flip", position, rng.randrange(8)))
        else:
            chunk = rng.choice(
                (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
            )
            operations.append((kind, position, chunk))
    if name.endswith(".png") and rng.random() < 0.02:
        operations = list(PNG_BOMB)
    return operations


def _random_header_edit(rng: random.Random, header: str) -> Operation:
    edits = {"dicom": DICOM_EDITS, "png": PNG_EDITS, "nifti": NIFTI_EDITS, "nrrd": NRRD_EDITS}[header]
    return (header, *rng.choice(edits))


class ExampleTimeout(Exception):
    """An example ran past its time limit (raised by :func:`time_limit`)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ExampleTimeout` in the main thread after ``seconds`` (SIGALRM).

    Python code is interrupted at the next bytecode; a C call that never returns is not,
    which is why the benchmark runs each input in a worker process it can kill.
    """

    def expire(signum: int, frame: Any) -> None:
        raise ExampleTimeout(f"ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
