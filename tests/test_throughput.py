"""Issue 15's speed-ups change nothing but the time: each fast path against the slow one it replaces.

- DICOM pixels: :func:`~scintipipe.loaders.dicom_pixels.native_pixels` against pydicom's
  ``pixel_array`` (dtype, shape, values; unused high bits, signed data, frames, padding),
  and whole loaded scans against the loader with the fast path switched off;
- the file-kind sniff: remembered per file, asked again when the file changes;
- the transforms: a ``MetaTensor`` unwrapped before ``.float()`` against the old order, and
  the uptake4 bundle's preprocessing with each against the other (values and metadata);
- the content gate: its hook's answer against :func:`content_refusal` on the indexed
  ``MetaTensor``, on syringe, flood and thyroid images.

Predictions, refusals and ``errors.csv`` on ``data/speed-b-200`` and the gate's test sets
were compared with those of the code before the change by running both (see the issue).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless

from dicom_factory import nm_dataset, thyroid_pattern, write_nm_dicom
from scintipipe.builtin.gate_content import gate_scan
from scintipipe.gate.content import content_refusal
from scintipipe.loaders import dicom_pixels, sniff
from scintipipe.loaders.dicom import load_dicom
from scintipipe.loaders.dicom_pixels import native_pixels
from scintipipe.scan import make_scan
from scintipipe.simulate import CENTERS
from scintipipe.simulate.syringe import simulate_syringes
from scintipipe.transforms import scintigram
from scintipipe.transforms.scintigram import CropNeckRegion, NormalizeCounts, ResampleToSpacing, _plain_float


def reread(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` written to bytes and read back, as the loader sees a file."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def with_pixels(pixels: np.ndarray, allocated: int, stored: int, signed: bool, syntax=None) -> pydicom.Dataset:
    frames = pixels if pixels.ndim == 3 else pixels[None]
    ds = nm_dataset(np.zeros(frames.shape, np.uint16), views=(None,))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = allocated, stored, stored - 1, int(signed)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes() + (b"\0" if pixels.nbytes % 2 else b"")
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    return reread(ds)


def assert_same_array(fast: np.ndarray | None, reference: np.ndarray) -> None:
    assert fast is not None
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize(
    ("dtype", "allocated", "stored", "signed", "shape"),
    [
        (np.uint16, 16, 16, False, (64, 48)),
        (np.uint16, 16, 12, False, (64, 64)),  # garbage in the unused high bits is cleared
        (np.int16, 16, 12, True, (64, 64)),  # ... or sign-extended
        (np.int16, 16, 16, True, (2, 32, 32)),
        (np.uint8, 8, 8, False, (33, 31)),  # odd length, padded to even
        (np.uint32, 32, 32, False, (3, 16, 16)),
        (np.int32, 32, 20, True, (16, 16)),
    ],
)
def test_native_pixels_equal_pydicoms_pixel_array(dtype, allocated, stored, signed, shape) -> None:
    rng = np.random.default_rng(allocated + stored)
    info = np.iinfo(dtype)
    pixels = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    ds = with_pixels(pixels, allocated, stored, signed)
    if len(shape) == 3:
        ds.NumberOfFrames = shape[0]
        ds = reread(ds)
    assert_same_array(native_pixels(ds), ds.pixel_array)


def test_native_pixels_leave_other_encodings_to_pydicom() -> None:
    pixels = thyroid_pattern(32, 32)
    assert native_pixels(with_pixels(pixels, 16, 16, False, ImplicitVRLittleEndian)) is not None
    big_endian = nm_dataset(pixels, views=(None,))
    big_endian.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    compressed = nm_dataset(pixels, views=(None,))
    compressed.compress(RLELossless)
    colour = nm_dataset(pixels, views=(None,))
    colour.SamplesPerPixel, colour.PhotometricInterpretation = 3, "RGB"
    short = with_pixels(pixels, 16, 16, False)
    short.PixelData = short.PixelData[:-2]
    for ds in (reread(big_endian), reread(compressed), colour, short):
        assert native_pixels(ds) is None


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"rescale": (1.5, -2.0)},
        {"views": ("anterior", "posterior"), "frames": 2},
        {"compress": RLELossless},
        {"spacing": None, "radionuclide_meaning": None},
    ],
)
def test_loaded_scans_equal_those_of_pydicoms_decoder(options: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = dict(options)
    n_frames = options.pop("frames", 1)
    pixels = np.stack([thyroid_pattern(48, 40, seed=seed) for seed in range(n_frames)])
    path = write_nm_dicom(tmp_path / "scan.dcm", pixels if n_frames > 1 else pixels[0], **options)
    fast = load_dicom(path)
    monkeypatch.setattr(dicom_pixels, "native_pixels", lambda ds: None)
    slow = load_dicom(path)
    assert [scan["source"] for scan in fast] == [scan["source"] for scan in slow]
    for a, b in zip(fast, slow, strict=True):
        assert a["image"].dtype == b["image"].dtype
        assert torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
        meta_a, meta_b = dict(a["image"].meta), dict(b["image"].meta)
        assert torch.equal(meta_a.pop("affine"), meta_b.pop("affine"))
        assert meta_a == meta_b


def test_file_kind_is_sniffed_once_and_again_when_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    sniff_once = sniff._sniff
    monkeypatch.setattr(sniff, "_sniff", lambda path: calls.append(path) or sniff_once(path))
    path = write_nm_dicom(tmp_path / "scan.dcm", thyroid_pattern(32, 32))
    assert [sniff.file_kind(path) for _ in range(3)] == ["dicom"] * 3
    assert len(calls) == 1
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # another size, another time
    os.utime(path, ns=(1, 1))
    assert sniff.file_kind(path) == "raster"
    assert len(calls) == 2
    assert sniff.file_kind(tmp_path / "missing.dcm") is None


def old_plain_float(img):
    """How the transforms unwrapped their input before issue 15."""
    x = torch.as_tensor(img).float()
    if isinstance(x, MetaTensor):
        x = x.as_tensor()
    return x


@pytest.mark.parametrize("kind", ["metatensor", "tensor", "float64", "uint16"])
def test_plain_float_equals_the_old_unwrapping(kind: str) -> None:
    pixels = thyroid_pattern(32, 32).astype(np.float32)[None]
    img = {
        "metatensor": make_scan(pixels[0], "a.dcm", spacing=(2.0, 2.0))["image"],
        "tensor": torch.from_numpy(pixels),
        "float64": pixels.astype(np.float64),
        "uint16": pixels.astype(np.uint16),
    }[kind]
    new, old = _plain_float(img), old_plain_float(img)
    assert type(new) is type(old) is torch.Tensor
    assert new.dtype == old.dtype and torch.equal(new, old)


def simulated_scans(n: int) -> list[dict]:
    """Thyroid-like scans of several sizes and spacings (resampled up and down)."""
    scans = []
    for index in range(n):
        side = (64, 128, 256)[index % 3]
        pixels = thyroid_pattern(side, side, peak=50 + 40 * index, seed=index).astype(np.float32)
        scans.append(make_scan(pixels, f"scan{index}.dcm", spacing=(3.2 * 64 / side,) * 2, is_counts=True))
    return scans


def preprocess(scans: list[dict]) -> list[MetaTensor]:
    steps = (ResampleToSpacing(2.2), CropNeckRegion((96, 96)), NormalizeCounts())  # the uptake4 bundle's
    outputs = []
    for scan in scans:
        image = scan["image"]
        for step in steps:
            image = step(image)
        outputs.append(image)
    return outputs


def test_preprocessing_equals_that_with_the_old_unwrapping(monkeypatch: pytest.MonkeyPatch) -> None:
    scans = simulated_scans(6)
    new = preprocess(scans)
    monkeypatch.setattr(scintigram, "_plain_float", old_plain_float)
    old = preprocess(scans)
    for a, b in zip(new, old, strict=True):
        assert isinstance(a, MetaTensor) and a.dtype == b.dtype and torch.equal(a.as_tensor(), b.as_tensor())
        meta_a, meta_b = dict(a.meta), dict(b.meta)
        assert torch.equal(meta_a.pop("affine"), meta_b.pop("affine"))
        assert meta_a == meta_b and meta_a["spacing"] == (2.2, 2.2)


def test_content_gate_hook_answers_as_the_layer_on_the_indexed_metatensor() -> None:
    rng = np.random.default_rng(3)
    images = [image.counts for image in simulate_syringes(rng, CENTERS["siemens"], 185.0).values()]
    images.append(rng.poisson(200.0, (128, 128)).astype(np.float32))  # a flood
    scans = [make_scan(counts, f"s{i}.dcm", spacing=(2.4, 2.4), is_counts=True) for i, counts in enumerate(images)]
    scans += simulated_scans(3)
    answers = []
    for scan in scans:
        image = scan["image"]
        expected = content_refusal(image[0].numpy(), dict(image.meta))
        answers.append(gate_scan(scan, bundle=None))
        assert answers[-1] == expected
    assert {answer.kind for answer in answers if answer is not None} == {"syringe", "flood"}
    assert answers[-1] is None
