"""Fuzzing the loaders and ``run`` with mutated DICOM, PNG, JPEG, TIFF, NIfTI and NRRD files.

Valid seed files (``tests/fuzz_mutations.py``) are truncated, bit-flipped, given inserted
or overwritten bytes, and given absurd header values (Rows 0 or 65535, NumberOfFrames
10^6, negative or NaN spacing, NaN Rescale Slope, wrong Bits Allocated, a PNG claiming
100000x100000 pixels...). The only allowed outcomes:

- the loaders return scans, or raise a :class:`ScintipipeError` naming the file;
- through ``run``, each file gives a ``predictions.csv`` row, an ``errors.csv`` row naming
  it, or a "skipped" line; never a wrapped crash (``plugin ... failed in stage``).

Never another exception type, an example past :data:`EXAMPLE_SECONDS`, or memory past
:data:`MAX_RSS_BYTES`. Hypothesis runs derandomised (the same examples on every run, no
example database); the profile comes from ``HYPOTHESIS_PROFILE``: ``ci`` (default, 200
examples) or ``fuzz`` (5000). ``benchmarks/fuzz_inputs.py`` runs 10,000 and more in
worker processes that it can kill.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_mutations import (
    DICOM_EDITS,
    NIFTI_EDITS,
    NRRD_EDITS,
    PNG_BOMB,
    PNG_EDITS,
    SEED_HEADERS,
    apply_mutation,
    random_mutation,
    time_limit,
    write_seeds,
)
from scintipipe.errors import ScanError, ScintipipeError
from scintipipe.loaders import read_scans
from scintipipe.loaders.limits import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, MAX_FILE_MB_ENV, MAX_FRAMES_ENV, MAX_PIXELS_ENV
from scintipipe.testing import run_cli

#: the longest one mutated file may take to load (a 64x64 seed loads in milliseconds)
EXAMPLE_SECONDS = 30.0
#: the most memory (peak RSS) the fuzzing may take the test process to
MAX_RSS_BYTES = 2 * 1024**3

_COMMON = {"derandomize": True, "database": None, "deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=200, **_COMMON)
settings.register_profile("fuzz", max_examples=5000, **_COMMON)
FUZZ_SETTINGS = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EDITS = {"dicom": DICOM_EDITS, "png": PNG_EDITS, "nifti": NIFTI_EDITS, "nrrd": NRRD_EDITS}
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The seed files' bytes; each seed loads (this also imports ITK and nibabel once)."""
    folder = tmp_path_factory.mktemp("seeds")
    found = write_seeds(folder)
    for name in found:
        assert read_scans(folder / name), name
    return found


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated")


def load_or_refuse(path: Path) -> str:
    """Load ``path``; return ``"loaded"`` or ``"refused"``, failing on any other outcome."""
    with time_limit(EXAMPLE_SECONDS):
        try:
            scans = read_scans(path)
        except ScanError as exc:
            assert exc.source.startswith(str(path)), f"the error names {exc.source!r}, not the file"
            return "refused"
        except ScintipipeError as exc:
            assert str(path) in str(exc), f"the error does not name the file: {exc}"
            return "refused"
    assert scans and all(scan["source"].startswith(str(path)) for scan in scans)
    return "loaded"


def write_case(folder: Path, name: str, data: bytes) -> Path:
    path = folder / f"{next(_COUNTER):05d}_{name}"
    path.write_bytes(data)
    return path


# ---- Hypothesis: mutated seeds through the loaders ----------------------------------------

_positions = st.one_of(st.integers(0, 2047), st.integers(0, 1 << 20))
_chunks = st.one_of(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]), st.binary(min_size=1, max_size=16))
_byte_operations = st.one_of(
    st.tuples(st.just("truncate"), _positions),
    st.tuples(st.just("flip"), _positions, st.integers(0, 7)),
    st.tuples(st.sampled_from(["insert", "overwrite"]), _positions, _chunks),
)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, list[tuple]]:
    """A seed name and one to four operations (byte operations and absurd header values)."""
    name = draw(st.sampled_from(sorted(SEED_HEADERS)))
    header = SEED_HEADERS[name]
    operation = _byte_operations if header is None else st.one_of(_byte_operations, st.sampled_from(EDITS[header]).map(lambda edit: (header, *edit)))
    return name, draw(st.lists(operation, min_size=1, max_size=4))


@FUZZ_SETTINGS
@given(mutation=mutations())
def test_mutated_files_load_or_are_refused_naming_the_file(seeds: dict[str, bytes], cases_dir: Path, mutation: tuple[str, list[tuple]]) -> None:
    name, operations = mutation
    path = write_case(cases_dir, name, apply_mutation(name, seeds[name], operations))
    try:
        load_or_refuse(path)
    finally:
        path.unlink()


def test_fuzzing_kept_memory_bounded(seeds: dict[str, bytes], cases_dir: Path) -> None:
    """A fixed sample of 300 random mutations never takes the process past 2 GiB."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rng = random.Random(16)
    outcomes = []
    for _ in range(300):
        name = rng.choice(sorted(seeds))
        path = write_case(cases_dir, name, apply_mutation(name, seeds[name], random_mutation(rng, name, len(seeds[name]))))
        outcomes.append(load_or_refuse(path))
        path.unlink()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert after <= max(before, MAX_RSS_BYTES), f"peak RSS rose from {before / 2**20:.0f} MiB to {after / 2**20:.0f} MiB"
    assert {"loaded", "refused"} <= set(outcomes)


# ---- every absurd header value, one by one ------------------------------------------------

HEADER_CASES = [(name, (header, *edit)) for name, header in SEED_HEADERS.items() if header for edit in EDITS[header]]


@pytest.mark.parametrize(("name", "edit"), HEADER_CASES, ids=[f"{name}-{edit[1]}={edit[-1]!r}"[:80] for name, edit in HEADER_CASES])
def test_each_absurd_header_value_loads_or_is_refused(seeds: dict[str, bytes], cases_dir: Path, name: str, edit: tuple) -> None:
    path = write_case(cases_dir, name, apply_mutation(name, seeds[name], [edit]))
    load_or_refuse(path)


# ---- the input limits -----------------------------------------------------------------------


def test_a_png_claiming_100000_by_100000_pixels_is_refused_before_decoding(seeds: dict[str, bytes], cases_dir: Path) -> None:
    path = write_case(cases_dir, "export.png", apply_mutation("export.png", seeds["export.png"], PNG_BOMB))
    with (
        time_limit(5),
        pytest.raises(
            ScanError,
            match=rf"image of .*10,000,000,000.* exceeds the limit of {DEFAULT_MAX_PIXELS:,} pixels per frame; set the environment variable {MAX_PIXELS_ENV}",
        ) as caught,
    ):
        read_scans(path)
    assert caught.value.source == str(path)


def test_a_dicom_claiming_a_million_frames_is_refused(seeds: dict[str, bytes], cases_dir: Path) -> None:
    path = write_case(cases_dir, "nm.dcm", apply_mutation("nm.dcm", seeds["nm.dcm"], [("dicom", "NumberOfFrames", "IS", b"1000000")]))
    with pytest.raises(ScanError, match=rf"1,000,000 frames exceed the limit of {DEFAULT_MAX_FRAMES} .*{MAX_FRAMES_ENV}"):
        read_scans(path)


@pytest.mark.parametrize("name", sorted(SEED_HEADERS))
def test_the_pixel_limit_is_read_from_the_environment_for_every_format(
    seeds: dict[str, bytes], cases_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = write_case(cases_dir, name, seeds[name])
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(
        ScanError, match=rf"64x64 pixels \(4,096\) exceeds the limit of 1,000 pixels per frame; set the environment variable {MAX_PIXELS_ENV}"
    ):
        read_scans(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "4096")
    assert read_scans(path)


def test_the_frame_limit_is_read_from_the_environment(seeds: dict[str, bytes], cases_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_case(cases_dir, "nm.dcm", seeds["nm.dcm"])
    monkeypatch.setenv(MAX_FRAMES_ENV, "1")
    with pytest.raises(ScanError, match=rf"2 frames exceed the limit of 1 frames per file; set the environment variable {MAX_FRAMES_ENV}"):
        read_scans(path)


def test_the_file_size_limit_is_checked_before_reading(cases_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = cases_dir / "sparse.png"
    with path.open("wb") as handle:  # 3 MiB of nothing (sparse): never read
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(3 * 1024 * 1024)
    monkeypatch.setenv(MAX_FILE_MB_ENV, "2")
    with pytest.raises(ScanError, match=rf"file of 3 MiB exceeds the limit of 2 MiB; set the environment variable {MAX_FILE_MB_ENV}"):
        read_scans(path)


@pytest.mark.parametrize("value", ["0", "-3", "lots", "1.5"])
def test_an_invalid_limit_names_the_variable(seeds: dict[str, bytes], cases_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    path = write_case(cases_dir, "export.png", seeds["export.png"])
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    with pytest.raises(ScintipipeError, match=rf"{MAX_PIXELS_ENV}='{value}' is not a positive whole number"):
        read_scans(path)


# ---- a sample through the whole run ---------------------------------------------------------


def run_sample(seeds: dict[str, bytes], folder: Path) -> list[Path]:
    """37 mutated files: 30 random mutations and the absurd values the issue names."""
    folder.mkdir()
    rng = random.Random(1600)
    named = [
        ("export.png", PNG_BOMB),
        ("nm.dcm", [("dicom", "NumberOfFrames", "IS", b"1000000")]),
        ("nm.dcm", [("dicom", "Rows", "US", b"\x00\x00")]),
        ("nm.dcm", [("dicom", "RescaleSlope", "DS", b"NaN")]),
        ("nm.dcm", [("dicom", "PixelSpacing", "DS", b"-1\\-1")]),
        ("planar.nii", [("nifti", "pixdim1", float("nan"))]),
        ("planar.nii", [("nifti", "scl_slope", 1e38)]),  # passed the loader, then crashed preprocessing as float32 infinity
    ]
    random_ones = [(name, random_mutation(rng, name, len(seeds[name]))) for name in (rng.choice(sorted(seeds)) for _ in range(30))]
    paths = []
    for index, (name, operations) in enumerate(named + random_ones):
        path = folder / f"{index:02d}_{name}"
        path.write_bytes(apply_mutation(name, seeds[name], operations))
        paths.append(path)
    return paths


def test_mutated_files_through_run_give_a_prediction_or_an_error_row(seeds: dict[str, bytes], tiny_bundle: Path, tmp_path: Path) -> None:
    paths = run_sample(seeds, tmp_path / "in")
    out = tmp_path / "out"
    result = run_cli("run", "--bundle", tiny_bundle, "--out", out, "--no-explain", *paths, expect_exit=None, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    with (out / "predictions.csv").open() as handle:
        predicted = [row["source"] for row in csv.DictReader(handle)]
    with (out / "errors.csv").open() as handle:
        errors = list(csv.DictReader(handle))
    crashes = [row for row in errors if "failed in stage" in row["error"]]
    assert not crashes, f"wrapped crashes: {crashes}"
    for path in paths:
        mine = [source for source in [*predicted, *(row["source"] for row in errors)] if source == str(path) or source.startswith(f"{path}#")]
        accounted = bool(mine) or f"skipped {path}" in result.output
        assert accounted, f"{path.name}: neither a prediction, an error row nor a skip\n{result.output}"
    assert predicted and errors, "the sample should hold both loadable and refused files"


def test_run_refuses_the_png_bomb_with_an_error_row(seeds: dict[str, bytes], tiny_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(apply_mutation("export.png", seeds["export.png"], PNG_BOMB))
    run_cli("run", "--bundle", tiny_bundle, "--out", tmp_path / "out", path, expect_exit=None)
    with (tmp_path / "out" / "errors.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["source"] for row in rows] == [str(path)]
    assert rows[0]["stage"] == "load" and MAX_PIXELS_ENV in rows[0]["error"]
