"""The loaders' element reads (:func:`~scintipipe.loaders.dicom_fast.element_value`) against pydicom's ``ds.get``.

Every element of pydicom's test files is read both ways from two fresh copies of the
dataset, and so is every element of NM files written in other transfer syntaxes and
character sets or with corrupt values. The values (and their types), the warnings, the
errors and the element each read leaves in the dataset must be the same. Whole scans are
compared with those loaded while a pass-through conversion hook sends every read through
pydicom's own path.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.datadict import DicomDictionary, dictionary_keyword, keyword_dict
from pydicom.dataelem import RawDataElement
from pydicom.dataelem import convert_raw_data_element as convert
from pydicom.dataset import Dataset
from pydicom.hooks import hooks, raw_element_value
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from dicom_factory import nm_dataset, thyroid_pattern
from fuzz_mutations import apply_mutation
from scintipipe.errors import ScintipipeError
from scintipipe.loaders import dicom_fast
from scintipipe.loaders.dicom import load_dicom
from scintipipe.loaders.dicom_fast import element_value

#: Specific Character Set values, each with a description and a patient name that need it
CHARSETS = [
    ("ISO_IR 100", "Thyroïde antérieure", "Müller^Jürgen"),
    ("ISO_IR 144", "Щитовидная POST", "Иванов^Иван"),
    ("ISO_IR 192", "甲状腺 ANT", "Müller^Jürgen"),
    (["", "ISO 2022 IR 87"], "甲状腺", "Yamada^Tarou=山田^太郎"),
]

#: corrupt or unusual raw values: (keyword, VR, bytes)
ODD_VALUES = [
    ("PixelSpacing", "DS", b"abc\\1"),
    ("PixelSpacing", "DS", b" 2.0 \\ 2"),
    ("ActualFrameDuration", "IS", b"1.5"),
    ("ActualFrameDuration", "IS", b"x"),
    ("NumberOfFrames", "IS", b" 2 "),
    ("Modality", "CS", b"N\xe9"),
    ("Modality", "UN", b"NM"),
    ("StudyInstanceUID", "UI", b"1.2.\xff"),
    ("StudyDate", "DA", b"2024-01-02"),
    ("AcquisitionTime", "TM", b"25xx"),
    ("Manufacturer", "LO", b"\xff\xfe" + b"x" * 80),
    ("SeriesDescription", "SH", b"ANT\\POST"),
    ("CountsAccumulated", "DS", b"12"),
    ("CountsAccumulated", "UL", b"\x01\x00"),
    ("Rows", "US", b"\x40\x00\x40"),
    ("Rows", "XX", b"\x40\x00"),
    ("DetectorVector", "US", b""),
]


def nm_files() -> dict[str, bytes]:
    """Two-view NM files in five transfer syntaxes, four character sets, and with odd values."""
    base = nm_dataset(np.stack([thyroid_pattern(seed=1), thyroid_pattern(seed=2)]), views=("anterior", "posterior"))
    files = {}
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, RLELossless):
        ds = copy.deepcopy(base)
        if syntax == RLELossless:
            ds.compress(RLELossless)
        ds.file_meta.TransferSyntaxUID = syntax
        files[syntax.name] = _bytes(ds)
    for charset, text, name in CHARSETS:
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ds = copy.deepcopy(base)
            ds.file_meta.TransferSyntaxUID = syntax
            ds.SpecificCharacterSet = charset
            ds.SeriesDescription = ds.StudyDescription = ds.Manufacturer = text
            ds.PatientName = name
            files[f"{charset} {syntax.name}"] = _bytes(ds)
    for keyword, vr, raw in ODD_VALUES:
        files[f"{keyword} {vr} {raw!r}"] = apply_mutation("nm.dcm", files[ExplicitVRLittleEndian.name], [("dicom", keyword, vr, raw)])
    return files


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def pydicom_files() -> list[str]:
    """pydicom's DICOM test files and character set examples that are installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # files pydicom would download are left out
        return sorted(get_testdata_files("*.dcm")) + sorted(get_charset_files("*.dcm"))


NM_FILES = nm_files()


def typed(value: Any) -> Any:
    """``value`` with its type, recursively; a sequence by its length (its items are compared apart)."""
    if isinstance(value, Sequence):
        return Sequence, len(value)
    if isinstance(value, MultiValue | list):
        return type(value), [typed(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return type(value), value
    return type(value), repr(value)


def read(reader: Callable[[Dataset, str], Any], ds: Dataset, keyword: str) -> tuple[Any, list[str]]:
    """What reading ``keyword`` gives: the typed value or the error, and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: Any = ("value", typed(reader(ds, keyword)))
        except Exception as exc:  # noqa: BLE001  (the error is what is compared)
            result = ("error", type(exc), str(exc))
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


def stored(ds: Dataset, tag: int) -> Any:
    """The element that ``ds`` holds for ``tag``: raw, or converted with its value typed."""
    element = ds._dict[tag]
    if isinstance(element, RawDataElement):
        return element
    return type(element), element.VR, typed(element.value), element.file_tell, element.is_undefined_length, element.validation_mode


def assert_same_reads(fast: Dataset, slow: Dataset, where: str) -> int:
    """Read every standard element of ``fast`` with :func:`element_value` and of ``slow`` with ``get``; return how many."""
    count = 0
    for tag in list(slow.keys()):
        keyword = dictionary_keyword(tag) if tag in DicomDictionary else ""
        if keyword_dict.get(keyword) != tag:
            continue
        got, expected = read(element_value, fast, keyword), read(lambda ds, kw: ds.get(kw), slow, keyword)
        assert got == expected, f"{where} {keyword}"
        assert stored(fast, tag) == stored(slow, tag), f"{where} {keyword}"
        count += 1
        if expected[0][0] == "value" and isinstance(slow[tag].value, Sequence):
            for index, (fast_item, slow_item) in enumerate(zip(fast[tag].value, slow[tag].value, strict=True)):
                count += assert_same_reads(fast_item, slow_item, f"{where} {keyword}[{index}]")
    return count


@pytest.mark.parametrize("name", sorted(NM_FILES))
def test_element_values_equal_pydicoms_on_nm_files(name: str) -> None:
    fast, slow = (pydicom.dcmread(io.BytesIO(NM_FILES[name])) for _ in range(2))
    assert assert_same_reads(fast, slow, name) > 40


@pytest.mark.parametrize("path", pydicom_files(), ids=lambda path: Path(path).name)
def test_element_values_equal_pydicoms_on_pydicoms_test_files(path: str) -> None:
    try:
        pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001  (a file pydicom itself cannot read is not for this test)
        pytest.skip(f"pydicom cannot read {path}: {exc}")
    assert_same_reads(pydicom.dcmread(path, force=True), pydicom.dcmread(path, force=True), Path(path).name)


def test_plain_elements_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = pydicom.dcmread(io.BytesIO(NM_FILES[ExplicitVRLittleEndian.name]))
    monkeypatch.setattr(pydicom.dataset, "convert_raw_data_element", lambda *args, **kwargs: pytest.fail("pydicom's path was taken"))
    assert (element_value(ds, "Modality"), element_value(ds, "Rows"), element_value(ds, "PixelSpacing")) == ("NM", 64, [2.0, 2.0])
    assert element_value(ds, "PatientName") is None


def test_without_pydicoms_internals_every_read_goes_through_ds_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dicom_fast, "FAST_PATH_AVAILABLE", False)
    fast, slow = (pydicom.dcmread(io.BytesIO(NM_FILES[ExplicitVRLittleEndian.name])) for _ in range(2))
    calls = []
    monkeypatch.setattr(pydicom.dataset, "convert_raw_data_element", lambda *args, **kwargs: calls.append(1) or convert(*args, **kwargs))
    assert element_value(fast, "Modality") == slow.get("Modality") == "NM" and calls


def test_customised_conversion_takes_pydicoms_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = pydicom.dcmread(io.BytesIO(NM_FILES[ExplicitVRLittleEndian.name]))
    converted = []
    monkeypatch.setattr(hooks, "raw_element_value", lambda raw, data, **kwargs: converted.append(raw.tag) or raw_element_value(raw, data, **kwargs))
    assert not dicom_fast._default_conversion()
    assert element_value(ds, "Modality") == "NM"
    assert converted == [0x00080060]


def outcome(path: Path) -> Any:
    """The scans loaded from ``path`` (sources, pixels, metadata), or the error."""
    try:
        scans = load_dicom(path)
    except ScintipipeError as exc:
        return type(exc), str(exc)
    return [(scan["source"], scan["image"].as_tensor(), dict(scan["image"].meta)) for scan in scans]


@pytest.mark.parametrize("name", sorted(NM_FILES))
def test_loaded_scans_equal_those_read_through_pydicoms_path(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scan.dcm"
    path.write_bytes(NM_FILES[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fast = outcome(path)
        monkeypatch.setattr(hooks, "raw_element_value", lambda raw, data, **kwargs: raw_element_value(raw, data, **kwargs))
        slow = outcome(path)
    if not isinstance(slow, list):
        assert fast == slow
        return
    assert [scan[0] for scan in fast] == [scan[0] for scan in slow]
    for (_, image, meta), (_, slow_image, slow_meta) in zip(fast, slow, strict=True):
        assert torch.equal(image, slow_image)
        assert torch.equal(meta.pop("affine"), slow_meta.pop("affine"))
        assert {key: typed(value) for key, value in meta.items()} == {key: typed(value) for key, value in slow_meta.items()}
