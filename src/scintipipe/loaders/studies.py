"""Group input files by DICOM study, so that a study's thyroid and syringe images travel together.

The runner classifies a study's views after it has seen all of the study's files: a
syringe image found anywhere in the study is then offered for the thyroid uptake of
its views, whatever order the files come in. Only the header is read here
(``stop_before_pixels``); files that are not DICOM, or whose header cannot be read, are
groups of their own (the loader reports them later).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom

from scintipipe.loaders.sniff import file_kind


def study_uid(path: Path) -> str | None:
    """The StudyInstanceUID of a DICOM file from its header, or ``None``."""
    if file_kind(path) != "dicom":
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"], force=True)
    except Exception:  # noqa: BLE001  (the loader reports unreadable files)
        return None
    uid = ds.get("StudyInstanceUID")
    return str(uid) if uid else None


def study_groups(files: Sequence[Path]) -> list[list[Path]]:
    """Split ``files`` into groups, one per DICOM study, in order of first appearance.

    Args:
        files: input files, in the order they were given.

    Returns:
        Lists of files; a study's files are together, in their original order.

    Example:
        >>> study_groups([Path("notes.png")])
        [[PosixPath('notes.png')]]
    """
    groups: dict[Any, list[Path]] = {}
    for index, path in enumerate(files):
        key = study_uid(path) or ("file", index)
        groups.setdefault(key, []).append(path)
    return list(groups.values())


def choose_syringes(candidates: list[tuple[str, dict[str, Any]]]) -> dict[str, str] | None:
    """Pick the full and empty syringe images of a study.

    Args:
        candidates: ``(file, meta of its first frame)`` for every file the gate skipped as
            a syringe image.

    Returns:
        ``{"full": file, "empty": file}`` (``empty`` may be absent), or ``None`` when there
        is none. The series description decides when it says ``full``/``empty``
        (``SERINGUE PLEINE``); otherwise the highest count rate is the full syringe and a
        file counting at under half its rate is the empty one.
    """
    from scintipipe.gate.metadata import syringe_phase

    if not candidates:
        return None
    named = {syringe_phase(meta): path for path, meta in candidates if syringe_phase(meta)}
    if "full" in named:
        return {key: named[key] for key in ("full", "empty") if key in named}

    def rate(meta: dict[str, Any]) -> float:
        duration = float(meta.get("frame_duration_s") or 0.0)
        return float(meta.get("total_counts") or 0.0) / duration if duration > 0 else 0.0

    ranked = sorted(candidates, key=lambda item: -rate(item[1]))
    chosen = {"full": ranked[0][0]}
    if len(ranked) > 1 and rate(ranked[1][1]) < 0.5 * rate(ranked[0][1]):
        chosen["empty"] = ranked[1][0]
    return chosen
