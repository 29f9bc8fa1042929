"""The fast SR assembly (``comprehensive_sr``) writes the same file as highdicom's plain
``ComprehensiveSR`` constructor on the same content, element by element, apart from the
UIDs generated for it and its dates and times.

The case and the reference path come from ``benchmarks/sr_speed.py``, which times the two.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest

pytest.importorskip("highdicom")

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sr_speed", REPO / "benchmarks" / "sr_speed.py")
assert spec is not None and spec.loader is not None
sr_speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sr_speed)

DATE_TIME_VRS = {"DA", "TM", "DT"}
#: the byte count of the file meta elements after it: it follows the lengths of the UIDs
#: generated for each file (random ``2.25.`` UIDs vary in length), so it is checked by
#: :func:`uid_free_group_length`, not compared
GROUP_LENGTH = "FileMetaInformationGroupLength"


def uid_free_group_length(file_meta: pydicom.Dataset) -> int:
    """The file meta group length less the (even-padded) lengths of its UID values."""
    uids = sum(len(e.value) + len(e.value) % 2 for e in file_meta if e.VR == "UI")
    return int(file_meta[GROUP_LENGTH].value) - uids


def written(sr: pydicom.Dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def assert_same(expected: pydicom.Dataset, actual: pydicom.Dataset, fresh: dict[str, str], known: set[str], where: str = "") -> None:
    """Same elements in the same order with the same VRs and values, recursively.

    A UID may differ only if it is not one of the source's (``known``) and maps one to one
    (``fresh``), so that what refers to what is the same; dates and times may differ.
    """
    assert [e.tag for e in expected] == [e.tag for e in actual], where
    for a, b in zip(expected, actual, strict=True):
        path = f"{where}/{a.keyword or a.tag}"
        assert a.VR == b.VR, path
        if a.VR == "SQ":
            assert len(a.value) == len(b.value), path
            for index, (x, y) in enumerate(zip(a.value, b.value, strict=True)):
                assert_same(x, y, fresh, known, f"{path}[{index}]")
        elif a.VR == "UI" and a.value != b.value:
            assert a.value not in known and b.value not in known, path
            assert fresh.setdefault(a.value, b.value) == b.value, path
            assert list(fresh.values()).count(b.value) == 1, path
        elif a.VR not in DATE_TIME_VRS and a.keyword != GROUP_LENGTH:
            assert a.value == b.value, path


@pytest.fixture(scope="module")
def source_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sr_speed.simulated_source(tmp_path_factory.mktemp("sr-source"))


NO_GATE: dict[str, Any] = {}
PASSED = {"in_distribution": True, "ood_score": 3.0, "ood_threshold": 40.2, "overridden": [], "against_advice": False}


@pytest.mark.parametrize(
    ("spacing", "gate", "frames"),
    [((2.21, 2.21), None, 1), (None, NO_GATE, 1), ((2.21, 2.21), PASSED, 3)],
    ids=["against-advice", "no-spacing-no-gate", "passed-multiframe"],
)
def test_fast_sr_writes_what_highdicoms_constructor_writes(source_path: Path, spacing: Any, gate: Any, frames: int) -> None:
    from highdicom.sr import ComprehensiveSR

    from scintipipe.report.dicom_source import read_source_dataset
    from scintipipe.report.dicom_sr import comprehensive_sr

    case, bundle = sr_speed.sr_case(source_path, spacing=spacing, gate=gate)
    source = read_source_dataset(case)
    assert source is not None
    if frames > 1:  # a view of a multi-frame file: every reference names the frame
        source.NumberOfFrames = frames
    fast = comprehensive_sr(case, bundle, source)
    expected, actual = written(sr_speed.reference_sr(case, bundle, source)), written(fast)
    known = {e.value for e in source.iterall() if e.VR == "UI"} | {"1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.1.2.1"}
    fresh: dict[str, str] = {}
    assert_same(expected.file_meta, actual.file_meta, fresh, known, "file_meta")
    assert uid_free_group_length(expected.file_meta) == uid_free_group_length(actual.file_meta)
    assert_same(expected, actual, fresh, known)
    assert len(fresh) >= 3 + len(case["segmentation"]["rois"])  # series, instance, observer and tracking UIDs
    if frames > 1:
        assert any(e.keyword == "ReferencedFrameNumber" for e in actual.iterall())
    # `sr.content` is the whole tree, as highdicom's constructor (and from_dataset) give it
    assert fast.content[0].ContentSequence is fast.ContentSequence
    read_back = ComprehensiveSR.from_dataset(actual)
    groups = fast.content.get_planar_roi_measurement_groups()
    assert [str(g.tracking_identifier) for g in groups] == [str(g.tracking_identifier) for g in read_back.content.get_planar_roi_measurement_groups()]
