"""The storage SCP: receive studies by C-STORE, process them when they have gone quiet, send the results.

Three threads besides pynetdicom's:

- pynetdicom's server stores each instance durably (:meth:`StudyStore.receive`) before it
  answers the C-STORE, and notes when the instance's study last received one;
- the **processing** thread takes every study none of whose instances arrived for
  ``idle_seconds`` (at most ``max_batch``, oldest first) and processes them together: claim
  each, one pipeline pass over all their files (views classified in batches, each study's
  results in its own folder), then for each study as soon as its results are complete:
  results, outbox entries, journal (:mod:`scintipipe.dicomnet.store` for why a crash at any
  step loses and doubles nothing). Studies that became ready during a pass form the next;
- the **sending** thread delivers the outbox entries that are due, with back-off: all those
  of one destination over one association (one STOW-RS request), each entry marked sent or
  failed on its own.

At start the store is recovered: half-written files are removed, and the studies received
but not processed (or interrupted) are processed after the idle time.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from scintipipe.dicomnet.outbox import Backoff, Outbox, OutboxEntry
from scintipipe.dicomnet.processing import Processor
from scintipipe.dicomnet.sender import Destination, parse_destination
from scintipipe.dicomnet.store import StudyRun, StudyStore, valid_uid

LOG = logging.getLogger("scintipipe.dicomnet")

#: storage SOP classes accepted: nuclear medicine and the secondary captures display exports arrive as
STORAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.20": "Nuclear Medicine Image Storage",
    "1.2.840.10008.5.1.4.1.1.5": "Nuclear Medicine Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

#: transfer syntaxes pydicom reads without plugins: implicit, explicit, deflated explicit little endian, explicit big endian
UNCOMPRESSED_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")
#: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE: accepted only with the dicom-codecs extra, which decodes them
COMPRESSED_SYNTAXES = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
)

#: the Manufacturer of scintipipe's own SR and Secondary Capture (report/dicom_sr.py, report/secondary_capture.py):
#: a PACS that routes them back is answered "stored" and they are dropped, not classified
OWN_MANUFACTURER = "scintipipe developers"

#: C-STORE failure statuses
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


def accepted_transfer_syntaxes() -> list[str]:
    """The uncompressed syntaxes, and the compressed ones when the dicom-codecs extra can decode them."""
    from scintipipe.extras import missing_packages

    return [*UNCOMPRESSED_SYNTAXES, *(COMPRESSED_SYNTAXES if not missing_packages("dicom-codecs") else ())]


class StopPass(Exception):
    """Raised between two studies of a pass when the listener stops: the rest stay claimed for the next start."""


class Listener:
    """A storage SCP that processes the studies ready together with the pipeline and sends their results.

    Args:
        out_dir: the listener's folder (:mod:`scintipipe.dicomnet.store`).
        process: runs the pipeline once over several studies' files, each into its folder
            (:func:`~scintipipe.dicomnet.processing.pipeline_processor`).
        ae_title: our AE title.
        host: the address to listen on.
        port: the DICOM port (``0``: any free one; see :attr:`port` after :meth:`start`).
        allowed_aes: calling AE titles let in (empty: any).
        idle_seconds: a study is processed when none of its instances arrived for this long.
        destinations: ``AE@host:port`` and STOW-RS URLs the results are sent to.
        backoff: delays between send attempts.
        warm_up: called in the processing thread before the first study (load the model).
        max_batch: most studies processed in one pipeline pass.
    """

    def __init__(
        self,
        out_dir: Path,
        process: Processor,
        *,
        ae_title: str = "SCINTIPIPE",
        host: str = "127.0.0.1",
        port: int = 11112,
        allowed_aes: Iterable[str] = (),
        idle_seconds: float = 30.0,
        destinations: Iterable[str] = (),
        backoff: Backoff | None = None,
        warm_up: Callable[[], None] | None = None,
        max_batch: int = 64,
    ):
        self.store = StudyStore(Path(out_dir))
        self.outbox = Outbox(self.store.root / "outbox", backoff)
        self.process = process
        self.ae_title = ae_title
        self.host = host
        self.port = port
        self.allowed_aes = [title.strip() for title in allowed_aes]
        self.idle_seconds = float(idle_seconds)
        self.destinations = list(destinations)
        for spec in self.destinations:
            parse_destination(spec)  # a ValueError now, not at the first send
        self.warm_up = warm_up
        self.max_batch = max(1, int(max_batch))
        self.tick = max(0.05, min(self.idle_seconds / 4, 0.5))
        self._arrivals: dict[str, float] = {}  # study -> monotonic time of its last instance
        self._associations: dict[int, dict[str, Any]] = {}
        self._failed: set[str] = set()  # studies whose run raised: tried again at the next start
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self.error: BaseException | None = None
        self.processed = 0

    # ---- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Recover the store, start the SCP and the processing and sending threads (returns at once).

        Raises:
            OSError: the port cannot be bound.
        """
        from pynetdicom import AE, evt

        self.store.clear_tmp()
        now = time.monotonic()
        waiting = self.store.waiting()
        for study in waiting:
            self._arrivals[study] = now
        if waiting:
            LOG.info("recovered %d studies received but not processed: %s", len(waiting), ", ".join(waiting))
        pending = self.outbox.pending()
        if pending:
            LOG.info("outbox: %d entries waiting to be sent", len(pending))
        ae = AE(ae_title=self.ae_title)
        syntaxes = accepted_transfer_syntaxes()
        for sop_class in STORAGE_SOP_CLASSES:
            ae.add_supported_context(sop_class, syntaxes)
        ae.add_supported_context(VERIFICATION_SOP_CLASS, list(UNCOMPRESSED_SYNTAXES))
        ae.require_calling_aet = self.allowed_aes
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_closed),
            (evt.EVT_ABORTED, self._on_closed),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        for name, target in (("scintipipe-process", self._process_loop), ("scintipipe-send", self._send_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        allowed = ", ".join(self.allowed_aes) or "any"
        LOG.info(
            "listening as %s on %s:%d (calling AE titles: %s; idle %.3g s; results to %s)",
            self.ae_title,
            self.host,
            self.port,
            allowed,
            self.idle_seconds,
            ", ".join(self.destinations) or "disk only",
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop receiving, let the study being reported and the send under way finish, then return (the rest of a pass waits for the next start)."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        LOG.info("stopped")

    @property
    def running(self) -> bool:
        """Whether the threads run (``False`` after :meth:`stop`, or when warm-up failed: see :attr:`error`)."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no study waits and the outbox holds nothing due (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.store.lock:
                quiet = not self._arrivals
            if quiet and not self.store.waiting() and not self.outbox.due():
                return True
            time.sleep(0.05)
        return False

    # ---- pynetdicom event handlers -----------------------------------------------------

    def _association(self, event: Any) -> dict[str, Any]:
        return self._associations.setdefault(id(event.assoc), {"stored": 0, "refused": 0, "dropped": 0, "studies": set()})

    def _on_accepted(self, event: Any) -> None:
        self._association(event)

    def _on_rejected(self, event: Any) -> None:
        requestor = event.assoc.requestor
        LOG.info("association from %s at %s:%s rejected (calling AE title not allowed)", requestor.ae_title, requestor.address, requestor.port)

    def _on_closed(self, event: Any) -> None:
        counts = self._associations.pop(id(event.assoc), None)
        if counts is None:
            return
        requestor = event.assoc.requestor
        how = "released" if event.event.name == "EVT_RELEASED" else "aborted"
        studies = ", ".join(sorted(counts["studies"])) or "none"
        LOG.info(
            "association from %s at %s:%s %s: %d instances stored, %d refused, %d own results dropped; studies: %s",
            requestor.ae_title,
            requestor.address,
            requestor.port,
            how,
            counts["stored"],
            counts["refused"],
            counts["dropped"],
            studies,
        )

    def _on_echo(self, event: Any) -> int:
        return 0x0000

    def _arrived(self, study: str) -> None:  # under the store's lock
        self._arrivals[study] = time.monotonic()

    def _on_store(self, event: Any) -> int:
        counts = self._association(event)
        try:
            dataset = event.dataset
            study = str(dataset.get("StudyInstanceUID", ""))
            instance = str(event.request.AffectedSOPInstanceUID)
            manufacturer = str(dataset.get("Manufacturer", ""))
        except Exception as exc:  # noqa: BLE001  (a data set pydicom cannot decode is refused, not fatal)
            LOG.warning("C-STORE from %s: cannot decode the data set: %s", event.assoc.requestor.ae_title, exc)
            counts["refused"] += 1
            return STATUS_CANNOT_UNDERSTAND
        if not (valid_uid(study) and valid_uid(instance)):
            counts["refused"] += 1
            return STATUS_CANNOT_UNDERSTAND
        if manufacturer == OWN_MANUFACTURER:
            counts["dropped"] += 1
            return 0x0000
        try:
            self.store.receive(study, instance, event.encoded_dataset(), on_stored=self._arrived)
        except OSError as exc:
            LOG.error("cannot store instance %s of study %s: %s", instance, study, exc)
            counts["refused"] += 1
            return STATUS_OUT_OF_RESOURCES
        counts["stored"] += 1
        counts["studies"].add(study)
        return 0x0000

    # ---- processing --------------------------------------------------------------------

    def _due_studies(self) -> list[str]:
        now = time.monotonic()
        with self.store.lock:
            due = [(when, study) for study, when in self._arrivals.items() if now - when >= self.idle_seconds and study not in self._failed]
        return [study for _, study in sorted(due)][: self.max_batch]

    def _process_loop(self) -> None:
        if self.warm_up is not None:
            began = time.perf_counter()
            try:
                self.warm_up()
            except BaseException as exc:  # noqa: BLE001  (reported by the command, which then stops)
                self.error = exc
                LOG.error("cannot load the bundle: %s", exc)
                return
            LOG.info("ready to process: bundle loaded in %.1f s", time.perf_counter() - began)
        while not self._stop.is_set():
            studies = self._due_studies()
            if studies:
                with self.store.lock:
                    claimed_at = {study: self._arrivals.get(study, 0.0) for study in studies}
                self.process_studies(studies)
                with self.store.lock:
                    for study, when in claimed_at.items():
                        if self._arrivals.get(study) == when:  # nothing new arrived while it ran
                            del self._arrivals[study]
                continue  # studies that became due meanwhile form the next batch at once
            self._stop.wait(self.tick)

    def process_studies(self, studies: list[str]) -> dict[str, StudyRun]:
        """Process the waiting instances of ``studies`` in one pipeline pass: the steps of :mod:`~scintipipe.dicomnet.store` for each.

        Every study is claimed first; the pipeline then runs once over all their files,
        each study into its own partial results folder, and each study is published,
        queued for sending and journaled as soon as its own results are complete, so that
        a crash in the middle of the batch leaves the finished studies finished and the
        others claimed (processed again, whole, at the next start). :meth:`stop` ends the
        pass the same way, after the study being reported. A study whose processing fails
        is kept for the next start; the others go on.

        Returns:
            The runs finished, by study (a study with nothing new to process has none).
        """
        runs: list[StudyRun] = []
        for study in studies:
            try:
                run = self.store.begin(study)
            except Exception as exc:  # noqa: BLE001  (one study's failure must not stop the listener; it stays claimed for the next start)
                self._failed_study(study, exc)
                continue
            if run is None:
                LOG.info("study %s: no new instances (all were processed before); nothing to do", study)
            else:
                runs.append(run)
        finished: dict[str, StudyRun] = {}
        for run in [run for run in runs if run.results_ready]:  # a crash came after its results were written
            self._finish(run, finished)
        todo = [run for run in runs if not run.results_ready]
        if not todo:
            return finished
        for run in todo:
            shutil.rmtree(run.partial_dir, ignore_errors=True)
        began = time.perf_counter()

        def done(index: int, summary: dict[str, Any]) -> None:
            run = todo[index]
            run.summary = summary
            try:
                self.store.publish(run)
            except Exception as exc:  # noqa: BLE001  (kept for the next start; the batch goes on)
                self._failed_study(run.study, exc)
                return
            self._finish(run, finished)
            if self._stop.is_set() and index < len(todo) - 1:
                raise StopPass

        try:
            self.process([(run.inputs, run.partial_dir) for run in todo], done)
        except StopPass:
            LOG.info("stopping: %d studies of the pass left claimed for the next start", len(todo) - len(finished))
        except Exception as exc:  # noqa: BLE001  (the pass failed: the studies it had not finished stay claimed for the next start)
            for run in todo:
                if run.study not in finished:
                    self._failed_study(run.study, exc)
        if len(todo) > 1:
            LOG.info("batch of %d studies processed in %.1f s (%d finished)", len(todo), time.perf_counter() - began, len(finished))
        return finished

    def _failed_study(self, study: str, exc: BaseException) -> None:
        LOG.error("study %s: processing failed, kept for the next start: %s", study, exc, exc_info=exc)
        self._failed.add(study)

    def _finish(self, run: StudyRun, finished: dict[str, StudyRun]) -> None:
        """Queue the run's results and journal it (the run's results are in place)."""
        try:
            entries = self.enqueue_results(run)
            self.store.finish(run, entries)
        except Exception as exc:  # noqa: BLE001  (kept for the next start, which finds its results and only queues them)
            self._failed_study(run.study, exc)
            return
        finished[run.study] = run
        self.processed += 1
        self._wake.set()
        summary = run.summary
        LOG.info(
            "study %s run %d: %d instances (%d new), %s views classified, %s failed, %s skipped; done %.1f s into a pass of %s studies; results %s; %s",
            run.study,
            run.run,
            len(run.inputs),
            len(run.new_instances),
            summary.get("classified", "?"),
            summary.get("failures", "?"),
            summary.get("skipped", "?"),
            summary.get("seconds", 0.0),
            summary.get("batch", "?"),
            run.results_dir,
            f"queued for {', '.join(self.destinations)}" if entries else "nothing to send",
        )

    def enqueue_results(self, run: StudyRun) -> list[str]:
        """Queue the run's DICOM results (SR, Secondary Capture, any other ``*.dcm``) for every destination."""
        files = sorted(run.results_dir.rglob("*.dcm"))
        if not files:
            return []
        return [self.outbox.enqueue(run.study, run.run, spec, files, calling_ae=self.ae_title) for spec in self.destinations]

    # ---- sending -----------------------------------------------------------------------

    def send_entries(self, entries: list[OutboxEntry]) -> list[BaseException | None]:
        """Deliver entries of one destination over one association (or request); each one's failure, or ``None``."""
        return deliver_batch(entries)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            for (destination, _), entries in by_destination(self.outbox.due()).items():
                if self._stop.is_set():
                    break
                outcomes = self.outbox.attempt_batch(entries, self.send_entries)
                sent = [entry for entry in entries if outcomes.get(entry.id) is True]
                if sent:
                    LOG.info(
                        "sent %d files of %d study runs to %s in one %s: %s",
                        sum(len(entry.data["files"]) for entry in sent),
                        len(sent),
                        destination,
                        "request" if destination.startswith(("http://", "https://")) else "association",
                        ", ".join(f"{entry.data['study']} run {entry.data['run']}" for entry in sent),
                    )
                for entry in entries:
                    if outcomes.get(entry.id) is False:
                        LOG.warning(
                            "sending study %s run %s to %s failed (attempt %d, next in %.0f s): %s",
                            entry.data["study"],
                            entry.data["run"],
                            destination,
                            entry.data["attempts"],
                            max(0.0, entry.data["next_attempt"] - time.time()),
                            entry.data["last_error"],
                        )
            self._wake.wait(self.tick)
            self._wake.clear()


def by_destination(entries: list[OutboxEntry]) -> dict[tuple[str, str], list[OutboxEntry]]:
    """Entries grouped by destination and calling AE title (one association each), in their order within each."""
    groups: dict[tuple[str, str], list[OutboxEntry]] = {}
    for entry in entries:
        groups.setdefault((entry.data["destination"], entry.data.get("calling_ae") or "SCINTIPIPE"), []).append(entry)
    return groups


def deliver_batch(entries: list[OutboxEntry]) -> list[BaseException | None]:
    """Send the files of entries that share a destination, over one association (C-STORE) or in one request (STOW-RS).

    Returns:
        For each entry, the :class:`~scintipipe.dicomnet.sender.SendError` that kept it
        from being stored, or ``None`` when all its files were.
    """
    if not entries:
        return []
    first = entries[0].data
    destination: Destination = parse_destination(first["destination"], calling_ae=first.get("calling_ae") or "SCINTIPIPE")
    return destination.send_groups([entry.files for entry in entries])
