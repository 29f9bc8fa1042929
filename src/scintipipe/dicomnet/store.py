"""The listener's folder: received instances, the per-study journal and the results.

Layout of ``OUT`` (``scintipipe listen --out OUT``)::

    incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm   received, not yet processed
    claimed/<StudyInstanceUID>/                        the instances of the run in progress
    studies/<StudyInstanceUID>/                        instances already processed (kept for later runs)
    results/<StudyInstanceUID>/                        the study's first run (as `scintipipe run --out`)
    results/<StudyInstanceUID>.run2/                   a later run (instances that came after the first)
    journal/<StudyInstanceUID>.json                    the runs done: their instances and results
    outbox/                                            results waiting to be sent (scintipipe.dicomnet.outbox)
    tmp/                                               instances being written (cleared at start)

Every step is one atomic rename, after the data it publishes has been fsync'ed, so a crash
at any point leaves a state the next start completes without losing or doubling anything:

1. **receive**: write ``tmp/...part``, fsync, rename into ``incoming/<study>/``; only then is
   the C-STORE acknowledged. A crash before the rename loses an instance the sender was
   never told was stored, so it sends it again.
2. **claim**: rename ``incoming/<study>`` to ``claimed/<study>`` (the whole folder at once,
   under the lock the receiver holds, so an instance is either in this run or the next).
   A ``claimed/<study>`` found at start is a run a crash interrupted; it is finished with
   exactly those instances.
3. **results**: the pipeline writes ``results/.<name>.partial``, renamed to its final name
   when it is done; a final results folder is never written again.
4. **journal**: the run (its instances, results folder, counts) is appended to
   ``journal/<study>.json``, written atomically. A study is processed when its journal says so.
5. **archive**: the claimed instances move to ``studies/<study>/``.

A study whose instances arrive after it was processed gets a new run, on all its instances
(those processed before and the new ones), so that a late syringe image still gives the
uptake; its results go to ``results/<study>.run<N>/``. Instances whose SOP Instance UID
was already processed (a PACS sending a study again) start no run; they replace the
archived copy of the same instance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a DICOM UID: digits and dots, at most 64 characters (also keeps folder names safe)
UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def valid_uid(value: Any) -> bool:
    """Whether ``value`` is a well-formed DICOM UID (and so a safe file or folder name).

    Example:
        >>> valid_uid("1.2.840.10008.1.1"), valid_uid("../etc"), valid_uid(None)
        (True, False, False)
    """
    return isinstance(value, str) and len(value) <= 64 and bool(UID_PATTERN.match(value))


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader or a crash sees the old file or the new one, never part of it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, value: Any) -> None:
    """:func:`atomic_write_bytes` of ``value`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    """``path``'s JSON, or ``default`` when the file does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


@dataclass
class StudyRun:
    """One processing run of a study.

    Attributes:
        study: the StudyInstanceUID.
        run: 1 for the first run, 2 for the next...
        inputs: every instance file the pipeline reads (earlier runs' and the new ones).
        new_instances: SOP Instance UIDs first processed in this run.
        results_dir: the final results folder.
        partial_dir: where the pipeline writes before the results are renamed into place.
    """

    study: str
    run: int
    inputs: list[Path]
    new_instances: list[str]
    results_dir: Path
    partial_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def results_ready(self) -> bool:
        """Whether the results are complete (an interrupted run that got this far is not processed again)."""
        return self.results_dir.is_dir()


class StudyStore:
    """The listener's folder (see the module docstring for the layout and the crash-safety steps).

    Args:
        root: the ``--out`` folder (created).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.incoming = self.root / "incoming"
        self.claimed = self.root / "claimed"
        self.studies = self.root / "studies"
        self.results = self.root / "results"
        self.journal_dir = self.root / "journal"
        self.tmp = self.root / "tmp"
        for folder in (self.incoming, self.claimed, self.studies, self.results, self.journal_dir, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def clear_tmp(self) -> None:
        """Remove what a crashed process half wrote: instances (never acknowledged, so their senders send them again) and partial results."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(exist_ok=True)
        for partial in self.results.glob(".*.partial"):  # results of a run a crash interrupted
            shutil.rmtree(partial, ignore_errors=True)

    # ---- receiving ---------------------------------------------------------------------

    def receive(self, study: str, instance: str, data: bytes, on_stored: Callable[[str], None] | None = None) -> Path:
        """Store one received instance durably, before it is acknowledged.

        Args:
            study: its StudyInstanceUID (checked with :func:`valid_uid`).
            instance: its SOP Instance UID (the file name; the same instance sent twice is one file).
            data: the DICOM file (preamble, file meta and data set) as received.
            on_stored: called with the study under the store's lock once the file is in
                place (so a claim sees the instance and its arrival together).

        Returns:
            The stored file.

        Raises:
            ValueError: a UID is not well formed.
            OSError: the disk refused (the C-STORE then fails, and the sender keeps the instance).
        """
        if not (valid_uid(study) and valid_uid(instance)):
            raise ValueError(f"not a DICOM UID: study {study!r}, instance {instance!r}")
        part = self.tmp / f"{instance}.{uuid.uuid4().hex}.part"
        with part.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with self.lock:
            folder = self.incoming / study
            if not folder.is_dir():
                folder.mkdir()
                fsync_dir(self.incoming)
            target = folder / f"{instance}.dcm"
            os.replace(part, target)
            fsync_dir(folder)
            if on_stored is not None:
                on_stored(study)
        return target

    def waiting(self) -> list[str]:
        """Studies with instances not yet processed: an interrupted run's first, then received ones."""
        claimed = sorted(path.name for path in self.claimed.iterdir() if path.is_dir())
        incoming = sorted(path.name for path in self.incoming.iterdir() if path.is_dir() and path.name not in claimed)
        return claimed + incoming

    # ---- processing --------------------------------------------------------------------

    def journal(self, study: str) -> dict[str, Any]:
        """The study's journal: ``{"study": uid, "runs": [...]}`` (no runs when never processed)."""
        return read_json(self.journal_dir / f"{study}.json", {"study": study, "runs": []})

    def processed_instances(self, study: str) -> set[str]:
        """SOP Instance UIDs of the study that some run has processed."""
        return {uid for run in self.journal(study)["runs"] for uid in run["instances"]}

    def results_name(self, study: str, run: int) -> str:
        """``<study>`` for the first run, ``<study>.run<N>`` after."""
        return study if run == 1 else f"{study}.run{run}"

    def claim(self, study: str) -> list[Path]:
        """Move the study's received instances into ``claimed/`` (all at once) and list them.

        An existing ``claimed/<study>`` (a run a crash interrupted) is kept as it is: that
        run is finished with its own instances, and those received since wait for the next.
        """
        target = self.claimed / study
        with self.lock:
            if not target.is_dir():
                source = self.incoming / study
                if not source.is_dir():
                    return []
                os.replace(source, target)
                fsync_dir(self.incoming)
                fsync_dir(self.claimed)
        return sorted(target.glob("*.dcm"))

    def begin(self, study: str) -> StudyRun | None:
        """Claim the study's instances and describe the run that processes them.

        Returns:
            The run, or ``None`` when there is nothing new to process (every claimed
            instance was processed before; they are dropped).
        """
        if not valid_uid(study):
            raise ValueError(f"not a DICOM UID: {study!r}")
        claimed = self.claim(study)
        done = self.processed_instances(study)
        new = [path.stem for path in claimed if path.stem not in done]
        if not new:
            self.archive(study)  # a copy sent again, or a crash after the journal was written
            return None
        run = len(self.journal(study)["runs"]) + 1
        earlier = [path for path in sorted((self.studies / study).glob("*.dcm")) if path.stem not in {p.stem for p in claimed}]
        name = self.results_name(study, run)
        return StudyRun(study, run, [*earlier, *claimed], new, self.results / name, self.results / f".{name}.partial")

    def publish(self, run: StudyRun) -> None:
        """Rename the run's finished partial results into place."""
        os.replace(run.partial_dir, run.results_dir)
        fsync_dir(self.results)

    def finish(self, run: StudyRun, outbox_entries: list[str]) -> None:
        """Record the run in the journal (atomically), then archive its instances."""
        journal = self.journal(run.study)
        journal["runs"].append(
            {
                "run": run.run,
                "instances": run.new_instances,
                "results": str(run.results_dir.relative_to(self.root)),
                "processed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "summary": run.summary,
                "outbox": outbox_entries,
            }
        )
        atomic_write_json(self.journal_dir / f"{run.study}.json", journal)
        self.archive(run.study)

    def archive(self, study: str) -> None:
        """Move the claimed instances to ``studies/<study>/`` (a copy sent again replaces the same instance), then remove ``claimed/<study>``."""
        source = self.claimed / study
        if not source.is_dir():
            return
        target = self.studies / study
        target.mkdir(exist_ok=True)
        for path in source.glob("*.dcm"):
            os.replace(path, target / path.name)
        fsync_dir(target)
        shutil.rmtree(source, ignore_errors=True)
        fsync_dir(self.claimed)
