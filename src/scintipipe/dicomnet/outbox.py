"""Results waiting to be sent, kept on disk until they are delivered.

``OUT/outbox/<entry>/`` holds the DICOM files of one study run for one destination and
``entry.json`` (destination, attempts, next attempt, last error). An entry is created
whole (built in a hidden folder, then renamed) and, once delivered, renamed to
``OUT/outbox/sent/<entry>/`` with its files removed, so that it is never queued again:
:meth:`Outbox.enqueue` of an entry already pending or sent does nothing. A failed send is
tried again after ``base * 2**(attempts-1)`` seconds, at most ``maximum``.

Two processes (the listener and ``scintipipe outbox --retry``) never send one entry at the
same time: each holds a lock (``flock``) on the entry's folder while it sends.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scintipipe.dicomnet.store import atomic_write_json, fsync_dir, read_json, valid_uid
from scintipipe.errors import ScintipipeError


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``base`` seconds after the first failure, doubling, at most ``maximum``."""

    base: float = 5.0
    maximum: float = 600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts.

        Example:
            >>> [Backoff(5, 60).delay(n) for n in (1, 2, 3, 4, 5)]
            [5.0, 10.0, 20.0, 40.0, 60.0]
        """
        return float(min(self.base * 2 ** max(attempts - 1, 0), self.maximum))


@dataclass
class OutboxEntry:
    """One study run's results for one destination.

    Attributes:
        id: the folder name (``<study>.run<N>.<hash of the destination>``).
        path: the folder.
        data: ``entry.json``: ``destination``, ``calling_ae``, ``study``, ``run``, ``files``,
            ``created``, ``attempts``, ``next_attempt`` (epoch seconds), ``last_error``.
    """

    id: str
    path: Path
    data: dict[str, Any]

    @property
    def files(self) -> list[Path]:
        """The DICOM files to send."""
        return [self.path / name for name in self.data["files"]]

    def summary(self) -> dict[str, Any]:
        """The entry as a row for ``scintipipe outbox``."""
        return {
            "id": self.id,
            **{
                key: self.data.get(key)
                for key in ("study", "run", "destination", "files", "attempts", "next_attempt", "last_error", "created", "sent_at")
            },
        }


class Outbox:
    """The ``outbox`` folder of a listener's ``--out``.

    Args:
        root: ``OUT/outbox`` (created).
        backoff: delays between attempts.
    """

    def __init__(self, root: Path, backoff: Backoff | None = None):
        self.root = Path(root)
        self.sent_dir = self.root / "sent"
        self.sent_dir.mkdir(parents=True, exist_ok=True)
        self.backoff = backoff or Backoff()

    @staticmethod
    def entry_id(study: str, run: int, destination: str) -> str:
        """The entry name of one study run for one destination."""
        return f"{study}.run{run}.{hashlib.sha1(destination.encode()).hexdigest()[:10]}"

    def enqueue(self, study: str, run: int, destination: str, files: list[Path], calling_ae: str = "SCINTIPIPE") -> str:
        """Queue copies of ``files`` for ``destination``; nothing happens when that entry is pending or sent.

        Returns:
            The entry's id.
        """
        if not valid_uid(study):
            raise ValueError(f"not a DICOM UID: {study!r}")
        entry_id = self.entry_id(study, run, destination)
        final = self.root / entry_id
        if final.exists() or (self.sent_dir / entry_id).exists():
            return entry_id
        building = self.root / f".{entry_id}.building"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        names = []
        for index, path in enumerate(files):
            name = f"{index:03d}_{path.parent.name}_{path.name}"
            shutil.copyfile(path, building / name)
            with (building / name).open("rb+") as handle:
                os.fsync(handle.fileno())
            names.append(name)
        now = time.time()
        data = {
            "destination": destination,
            "calling_ae": calling_ae,
            "study": study,
            "run": run,
            "files": names,
            "created": now,
            "attempts": 0,
            "next_attempt": now,
            "last_error": None,
        }
        atomic_write_json(building / "entry.json", data)
        os.replace(building, final)
        fsync_dir(self.root)
        return entry_id

    def pending(self) -> list[OutboxEntry]:
        """Entries not yet delivered, oldest first."""
        entries = []
        for path in self.root.iterdir():
            if path.is_dir() and not path.name.startswith(".") and path != self.sent_dir:
                data = read_json(path / "entry.json")
                if data is not None:
                    entries.append(OutboxEntry(path.name, path, data))
        return sorted(entries, key=lambda entry: (entry.data["created"], entry.id))

    def sent(self) -> list[OutboxEntry]:
        """Entries delivered (their files removed), oldest first."""
        entries = [OutboxEntry(path.name, path, read_json(path / "entry.json", {})) for path in self.sent_dir.iterdir() if path.is_dir()]
        return sorted(entries, key=lambda entry: (entry.data.get("created", 0), entry.id))

    def due(self, now: float | None = None) -> list[OutboxEntry]:
        """Pending entries whose next attempt has come."""
        now = time.time() if now is None else now
        return [entry for entry in self.pending() if entry.data["next_attempt"] <= now]

    @contextmanager
    def _locked(self, entry: OutboxEntry) -> Iterator[bool]:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:  # sent meanwhile by another process
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield entry.path.is_dir() and not (self.sent_dir / entry.id).exists()
        finally:
            os.close(fd)

    def attempt(self, entry: OutboxEntry, send: Callable[[OutboxEntry], None]) -> bool | None:
        """Try to deliver ``entry`` with ``send`` (which raises on failure).

        Returns:
            ``True`` delivered (moved to ``sent/``), ``False`` failed (next attempt set by
            the back-off), ``None`` skipped (another process is sending it, or has sent it).
        """

        def send_one(entries: list[OutboxEntry]) -> list[BaseException | None]:
            send(entries[0])
            return [None]

        return self.attempt_batch([entry], send_one)[entry.id]

    def attempt_batch(self, entries: list[OutboxEntry], send: Callable[[list[OutboxEntry]], list[BaseException | None]]) -> dict[str, bool | None]:
        """Try to deliver several entries of one destination with one call of ``send`` (one association).

        Args:
            entries: the entries (one destination).
            send: delivers the entries it is given; returns, for each, the exception that
                kept it from being stored or ``None``; raising fails them all.

        Returns:
            By entry id, as :meth:`attempt`: ``True`` delivered, ``False`` failed, ``None``
            skipped (another process holds or has sent it).
        """
        outcomes: dict[str, bool | None] = {}
        with ExitStack() as stack:
            mine = []
            for entry in entries:
                if stack.enter_context(self._locked(entry)):
                    mine.append(entry)
                else:
                    outcomes[entry.id] = None
            if not mine:
                return outcomes
            try:
                errors = list(send(mine))
            except Exception as exc:  # noqa: BLE001  (any failure keeps the entries, with the reason, for the next attempt)
                errors = [exc] * len(mine)
            if len(errors) != len(mine):
                errors = [RuntimeError(f"the sender answered for {len(errors)} of {len(mine)} entries")] * len(mine)
            for entry, error in zip(mine, errors, strict=True):
                outcomes[entry.id] = self._failed(entry, error) if error is not None else self._sent(entry, len(mine))
        return outcomes

    def _failed(self, entry: OutboxEntry, exc: BaseException) -> bool:
        attempts = int(entry.data.get("attempts", 0)) + 1
        now = time.time()
        entry.data.update(
            attempts=attempts,
            last_attempt=now,
            next_attempt=now + self.backoff.delay(attempts),
            last_error=f"{type(exc).__name__}: {exc}"[:500],
        )
        atomic_write_json(entry.path / "entry.json", entry.data)
        return False

    def _sent(self, entry: OutboxEntry, together: int) -> bool:
        entry.data.update(attempts=int(entry.data.get("attempts", 0)) + 1, sent_at=time.time(), sent_with=together, last_error=None)
        atomic_write_json(entry.path / "entry.json", entry.data)
        target = self.sent_dir / entry.id
        os.replace(entry.path, target)
        fsync_dir(self.root)
        for name in entry.data["files"]:
            (target / name).unlink(missing_ok=True)
        entry.path = target
        return True


class OutboxError(ScintipipeError):
    """The outbox folder is missing or unreadable."""


def open_outbox(out_dir: Path, backoff: Backoff | None = None) -> Outbox:
    """The outbox of the listener folder ``out_dir`` (``OUT/outbox``).

    Raises:
        OutboxError: ``out_dir`` has no outbox.
    """
    root = Path(out_dir) / "outbox"
    if not root.is_dir():
        raise OutboxError(f"{out_dir} has no outbox/ folder: give the --out folder of `scintipipe listen`")
    return Outbox(root, backoff)
