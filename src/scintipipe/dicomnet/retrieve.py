"""Pull a study from a DICOM node by C-GET or C-MOVE, for ``scintipipe run --from-pacs dicom://AE@host:port``.

- **C-GET** (the default): one association to the node, which sends the study's instances
  back over it; we propose the storage SOP classes with the SCP role (role selection).
- **C-MOVE** (``move_port`` given): a temporary storage SCP is started on ``move_port``
  under ``calling_ae``, which the node must know as a destination (Orthanc:
  ``DicomModalities``), and the node is asked to send the study there.

Either way, each instance is written atomically to the folder as ``<SOPInstanceUID>.dcm``
before it is acknowledged, and scintipipe's own results are left out, as for WADO-RS
(:mod:`scintipipe.dicomnet.fetch`). Errors name the node and the reason: unreachable,
association refused, the retrieve service not offered, or the node's failure status.
pynetdicom (the ``dicom-network`` extra) is imported only when a study is pulled.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scintipipe.dicomnet.listener import OWN_MANUFACTURER, STORAGE_SOP_CLASSES, accepted_transfer_syntaxes
from scintipipe.dicomnet.store import atomic_write_bytes, valid_uid
from scintipipe.errors import ScanError

LOG = logging.getLogger("scintipipe.dicomnet")

_DICOM_URL = re.compile(r"^dicom://(?P<ae>[^@/]{1,16})@(?P<host>\[[^\]]+\]|[^:@/\[\]]+):(?P<port>\d{1,5})/?$")

#: SOP classes retrieved besides the images: our own SR, Secondary Capture and encapsulated PDF
#: (received and dropped, so that a study holding them does not report failed sub-operations)
OWN_RESULT_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.104.1")

#: Study Root Query/Retrieve Information Model FIND, MOVE and GET
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

STATUS_PENDING = (0xFF00, 0xFF01)
STATUS_STORE_CANNOT_UNDERSTAND = 0xC000
STATUS_STORE_OUT_OF_RESOURCES = 0xA700


@dataclass(frozen=True)
class DicomNode:
    """A DICOM node to pull from, given as ``dicom://AE@host:port``.

    Attributes:
        url: the URL as given.
        called_ae: the node's AE title.
        host: its address.
        port: its DICOM port.
    """

    url: str
    called_ae: str
    host: str
    port: int

    @property
    def name(self) -> str:
        """``AE@host:port``, for messages."""
        return f"{self.called_ae}@{self.host}:{self.port}"


def is_dicom_url(url: str) -> bool:
    """Whether ``url`` names a DICOM node (``dicom://``) rather than a DICOMweb service."""
    return url.startswith("dicom://")


def parse_dicom_url(url: str) -> DicomNode:
    """The node of ``dicom://AE@host:port`` (an IPv6 host in brackets).

    Example:
        >>> parse_dicom_url("dicom://ORTHANC@pacs.example.org:4242").name
        'ORTHANC@pacs.example.org:4242'

    Raises:
        ValueError: not of that form, or the port is out of range.
    """
    match = _DICOM_URL.match(url)
    if match is None or not 0 < int(match["port"]) < 65536 or not match["ae"].strip() or "\\" in match["ae"]:
        raise ValueError(f"{url!r} is not dicom://AE_TITLE@host:port (the node's AE title, address and DICOM port)")
    return DicomNode(url, match["ae"].strip(), match["host"].strip("[]"), int(match["port"]))


def retrieve_study(
    node: DicomNode,
    study_uid: str,
    folder: Path,
    *,
    calling_ae: str = "SCINTIPIPE",
    move_port: int | None = None,
    move_host: str = "0.0.0.0",
    timeout: float = 60.0,
) -> list[Path]:
    """Retrieve every instance of ``study_uid`` from ``node`` into ``folder``, by C-GET or C-MOVE.

    Args:
        node: the DICOM node (:func:`parse_dicom_url`).
        study_uid: the Study Instance UID.
        folder: where the instances go, as ``<SOPInstanceUID>.dcm`` (created).
        calling_ae: our AE title; with C-MOVE also the destination the node sends to.
        move_port: C-MOVE to a storage SCP started on this port for the retrieval;
            ``None``: C-GET.
        move_host: the address that SCP listens on (the node must reach it).
        timeout: seconds for the connection, the association and each response.

    Returns:
        The files written, sorted.

    Raises:
        ScanError: naming the node and the study, when the UID is not valid, the node cannot
            be reached, refuses or aborts the association, does not offer the retrieve
            service, answers a failure status, or sends no instance of the study.
    """
    source = f"study {study_uid} at {node.url}"
    if not valid_uid(study_uid):
        raise ScanError(source, "not a valid Study Instance UID")
    receiver = _Receiver(folder, study_uid)
    if move_port is None:
        service, (status, counts) = "C-GET", _c_get(node, study_uid, receiver, calling_ae, timeout, source)
    else:
        service = f"C-MOVE to {calling_ae}"
        status, counts = _c_move(node, study_uid, receiver, calling_ae, move_host, move_port, timeout, source)
    if status not in (0x0000, 0xB000) and not receiver.written:
        if _study_found(node, study_uid, calling_ae, timeout) is False:
            raise ScanError(source, f"no such study on {node.name} (C-FIND matched nothing; the {service} answered 0x{status:04X})")
        raise ScanError(source, f"{node.name} answered the {service} with status 0x{status:04X} ({counts.comment})")
    if receiver.errors and not receiver.written:
        raise ScanError(source, f"instances could not be stored here: {receiver.errors[0]}")
    if not receiver.written:
        if counts.failed:
            raise ScanError(source, f"{node.name} could not send the study's {counts.failed} instances (status 0x{status:04X})")
        if receiver.dropped:
            raise ScanError(source, "the study has no instances (other than scintipipe's own results)")
        raise ScanError(source, f"no such study on {node.name} (no instance matched)")
    if counts.failed or receiver.errors:
        LOG.warning(
            "%s: %d instances retrieved, %d not (status 0x%04X)", source, len(receiver.written), counts.failed or len(receiver.errors), status
        )
    return sorted(set(receiver.written))


@dataclass
class _Outcome:
    """What a C-GET or C-MOVE's final response said besides its status."""

    failed: int = 0
    comment: str = ""


class _Receiver:
    """The C-STORE handler that writes a retrieved instance of one study before acknowledging it."""

    def __init__(self, folder: Path, study_uid: str):
        self.folder = folder
        self.study_uid = study_uid
        self.written: list[Path] = []
        self.dropped = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> int:
        try:
            dataset = event.dataset
            study = str(dataset.get("StudyInstanceUID", ""))
            instance = str(event.request.AffectedSOPInstanceUID)
            own = str(dataset.get("Manufacturer", "")) == OWN_MANUFACTURER
        except Exception as exc:  # noqa: BLE001  (a data set pydicom cannot decode is refused, not fatal)
            self.errors.append(f"cannot decode an instance: {exc}")
            return STATUS_STORE_CANNOT_UNDERSTAND
        if study != self.study_uid or not valid_uid(instance):
            self.errors.append(f"instance {instance!r} of study {study!r}, not the study asked for")
            return STATUS_STORE_CANNOT_UNDERSTAND
        if own:
            with self.lock:
                self.dropped += 1
            return 0x0000
        path = self.folder / f"{instance}.dcm"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, event.encoded_dataset())
        except OSError as exc:
            self.errors.append(f"{path}: {exc}")
            return STATUS_STORE_OUT_OF_RESOURCES
        with self.lock:
            self.written.append(path)
        return 0x0000


def _storage_classes() -> list[str]:
    return [*STORAGE_SOP_CLASSES, *OWN_RESULT_SOP_CLASSES]


def _query(study_uid: str) -> Any:
    from pydicom.dataset import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return query


def _application_entity(calling_ae: str, timeout: float) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _associate(ae: Any, node: DicomNode, source: str, **kwargs: Any) -> Any:
    """An established association to ``node``, or a :class:`ScanError` saying why not."""
    import socket

    try:  # tells an unreachable node from a refused association (pynetdicom reports both as "not established")
        with socket.create_connection((node.host, node.port), timeout=min(ae.connection_timeout or 10.0, 10.0)):
            pass
    except OSError as exc:
        raise ScanError(source, f"{node.name} cannot be reached: {exc}") from exc
    assoc = ae.associate(node.host, node.port, ae_title=node.called_ae, **kwargs)
    if assoc.is_rejected:
        raise ScanError(source, f"{node.name} refused the association (our AE title {ae.ae_title!r} may not be known to it)")
    if assoc.is_aborted:
        raise ScanError(source, f"{node.name} aborted the association")
    if not assoc.is_established:
        raise ScanError(source, f"no association with {node.name} (connection lost or timed out)")
    return assoc


def _responses(assoc: Any, responses: Any, node: DicomNode, service: str, source: str, status_names: dict[int, Any]) -> tuple[int, _Outcome]:
    """Read a C-GET or C-MOVE's responses: the final status, the failed sub-operations and what the status means."""
    final: tuple[int, _Outcome] | None = None
    try:
        for status, _identifier in responses:
            if "Status" not in status:  # pynetdicom's empty data set: the association ended or timed out
                how = "aborted the association" if assoc.is_aborted else "gave no answer in time"
                raise ScanError(
                    source,
                    f"{node.name} {how} at the {service} request (is our AE title {assoc.requestor.ae_title!r} allowed to retrieve? "
                    "On Orthanc, list it in DicomModalities)",
                )
            code = int(status.Status)
            if code in STATUS_PENDING:
                continue
            meaning = status_names.get(code, ("", "unknown status"))[1]
            comment = f"{meaning}: {status.ErrorComment}" if status.get("ErrorComment") else meaning
            final = (code, _Outcome(int(status.get("NumberOfFailedSuboperations", 0) or 0), comment))
    finally:
        if assoc.is_established:
            assoc.release()
    if final is None:
        raise ScanError(source, f"{node.name} ended the {service} without a final answer")
    return final


def _study_found(node: DicomNode, study_uid: str, calling_ae: str, timeout: float) -> bool | None:
    """Whether a C-FIND at study level matches ``study_uid``; ``None`` when the node cannot be asked."""

    ae = _application_entity(calling_ae, timeout)
    ae.add_requested_context(STUDY_ROOT_FIND)
    try:
        assoc = _associate(ae, node, "C-FIND")
    except ScanError:
        return None
    found, answered = False, False
    try:
        for status, identifier in assoc.send_c_find(_query(study_uid), STUDY_ROOT_FIND):
            code = int(status.Status) if "Status" in status else None
            if code in STATUS_PENDING and identifier is not None:
                found = True
            elif code == 0x0000:
                answered = True
    except (ValueError, RuntimeError):  # no accepted context for C-FIND
        return None
    finally:
        if assoc.is_established:
            assoc.release()
    return found if answered or found else None


def _c_get(node: DicomNode, study_uid: str, receiver: _Receiver, calling_ae: str, timeout: float, source: str) -> tuple[int, _Outcome]:
    from pynetdicom import build_role, evt
    from pynetdicom.status import QR_GET_SERVICE_CLASS_STATUS

    ae = _application_entity(calling_ae, timeout)
    ae.add_requested_context(STUDY_ROOT_GET)
    syntaxes = accepted_transfer_syntaxes()
    for sop_class in _storage_classes():
        ae.add_requested_context(sop_class, syntaxes)
    roles = [build_role(sop_class, scp_role=True) for sop_class in _storage_classes()]
    assoc = _associate(ae, node, source, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)])
    model = STUDY_ROOT_GET
    if not any(str(context.abstract_syntax) == model for context in assoc.accepted_contexts):
        assoc.release()
        raise ScanError(source, f"{node.name} does not offer C-GET (Study Root); try C-MOVE (--move-ae, --move-port)")
    responses = assoc.send_c_get(_query(study_uid), STUDY_ROOT_GET)
    return _responses(assoc, responses, node, "C-GET", source, QR_GET_SERVICE_CLASS_STATUS)


def _c_move(
    node: DicomNode, study_uid: str, receiver: _Receiver, calling_ae: str, move_host: str, move_port: int, timeout: float, source: str
) -> tuple[int, _Outcome]:
    from pynetdicom import evt
    from pynetdicom.status import QR_MOVE_SERVICE_CLASS_STATUS

    ae = _application_entity(calling_ae, timeout)
    syntaxes = accepted_transfer_syntaxes()
    for sop_class in _storage_classes():
        ae.add_supported_context(sop_class, syntaxes)
    try:
        server = ae.start_server((move_host, move_port), block=False, evt_handlers=[(evt.EVT_C_STORE, receiver)])
    except OSError as exc:
        raise ScanError(source, f"cannot listen on {move_host}:{move_port} for the C-MOVE: {exc}") from exc
    try:
        ae.add_requested_context(STUDY_ROOT_MOVE)
        assoc = _associate(ae, node, source)
        model = STUDY_ROOT_MOVE
        if not any(str(context.abstract_syntax) == model for context in assoc.accepted_contexts):
            assoc.release()
            raise ScanError(source, f"{node.name} does not offer C-MOVE (Study Root)")
        responses = assoc.send_c_move(_query(study_uid), calling_ae, STUDY_ROOT_MOVE)
        return _responses(assoc, responses, node, f"C-MOVE to {calling_ae}", source, QR_MOVE_SERVICE_CLASS_STATUS)
    finally:
        server.shutdown()
