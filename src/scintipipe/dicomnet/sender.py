"""Where results go: a DICOM node by C-STORE (``AE@host:port``) or a DICOMweb server by STOW-RS (a URL).

Both send a list of DICOM files and raise :class:`SendError` when any of them was not
stored, so that the outbox keeps them all and tries again (a PACS stores an instance sent
twice once: its SOP Instance UID names it). ``send_groups`` sends several such lists (the
results of several study runs) over one association or in one request, and says which
lists failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scintipipe.errors import ScintipipeError

#: C-STORE statuses that mean stored: success, and the warnings (coercion, elements discarded, SOP class mismatch)
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})

_CSTORE_SPEC = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$")


class SendError(ScintipipeError):
    """Results could not be delivered (the destination is down, refused the association or an instance)."""


class Destination(Protocol):
    """A place results are sent to."""

    spec: str

    def send(self, files: list[Path]) -> None:
        """Deliver every file, or raise :class:`SendError`."""

    def send_groups(self, groups: list[list[Path]]) -> list[BaseException | None]:
        """Deliver several groups of files at once (one association or request); each group's failure, or ``None``."""


@dataclass
class CStoreDestination:
    """A DICOM node reached by C-STORE.

    Args:
        spec: ``AE@host:port`` as given on the command line.
        called_ae: the node's AE title.
        host: its address.
        port: its DICOM port.
        calling_ae: our AE title (the listener's ``--ae-title``).
        timeout: seconds for the connection, the association and each response.
    """

    spec: str
    called_ae: str
    host: str
    port: int
    calling_ae: str = "SCINTIPIPE"
    timeout: float = 30.0

    def send(self, files: list[Path]) -> None:
        """Send ``files`` over one association (a requested context per SOP class and transfer syntax)."""
        raise_first(self.send_groups([files]))

    def send_groups(self, groups: list[list[Path]]) -> list[BaseException | None]:
        """Send several groups of files (one study run's results each) over one association.

        Returns:
            For each group, the :class:`SendError` of its first file not stored (the group's
            other files are not sent: the whole group is tried again), or ``None``. When the
            association cannot be established, or drops, the groups not yet sent all fail.
        """
        import pydicom
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom import AE

        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        syntaxes: dict[str, list[str]] = {}
        for path in (path for files in groups for path in files):
            meta = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            wanted = syntaxes.setdefault(str(meta.SOPClassUID), [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            syntax = str(meta.file_meta.TransferSyntaxUID)
            if syntax not in wanted:
                wanted.insert(0, syntax)
        for sop_class, transfer_syntaxes in syntaxes.items():
            ae.add_requested_context(sop_class, transfer_syntaxes)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            return [SendError(f"{self.spec}: association rejected, aborted or never connected")] * len(groups)
        outcomes: list[BaseException | None] = []
        try:
            for files in groups:
                if not assoc.is_established:
                    outcomes.append(SendError(f"{self.spec}: the association was closed before these files were sent"))
                    continue
                outcomes.append(self._send_files(assoc, files))
        finally:
            if assoc.is_established:
                assoc.release()
        return outcomes

    def _send_files(self, assoc: Any, files: list[Path]) -> SendError | None:
        for path in files:
            try:
                status = assoc.send_c_store(path)
            except (ValueError, RuntimeError) as exc:  # no accepted context for its SOP class or transfer syntax
                return SendError(f"{self.spec}: {path.name}: {exc}")
            code = getattr(status, "Status", None)
            if code not in STORED_STATUSES:
                return SendError(f"{self.spec}: {path.name} not stored (status {'none' if code is None else f'0x{code:04X}'})")
        return None


@dataclass
class StowDestination:
    """A DICOMweb server reached by STOW-RS (``dicomweb-client``).

    Args:
        spec: the service's base URL (Orthanc: ``http://host:8042/dicom-web``).
        timeout: seconds for the request.
    """

    spec: str
    timeout: float = 60.0

    def send(self, files: list[Path]) -> None:
        """Store ``files`` in one STOW-RS request; any failed instance fails the send."""
        raise_first(self.send_groups([files]))

    def send_groups(self, groups: list[list[Path]]) -> list[BaseException | None]:
        """Store several groups of files in one STOW-RS request.

        Returns:
            For each group, a :class:`SendError` when any of its instances was not stored
            (the whole request failing fails every group), or ``None``.
        """
        import pydicom
        from dicomweb_client.api import DICOMwebClient

        datasets = [[pydicom.dcmread(path) for path in files] for files in groups]
        try:
            response = DICOMwebClient(self.spec, timeout=self.timeout).store_instances([ds for group in datasets for ds in group])
        except Exception as exc:  # noqa: BLE001  (requests and dicomweb-client raise many types; each is a failed send)
            return [SendError(f"{self.spec}: {type(exc).__name__}: {exc}")] * len(groups)
        failed = {
            str(item.get("ReferencedSOPInstanceUID", "?")): item.get("FailureReason", "?")
            for item in ((response.get("FailedSOPSequence") if response is not None else None) or [])
        }
        outcomes: list[BaseException | None] = []
        for group in datasets:
            reasons = [f"{ds.SOPInstanceUID} (reason {failed[str(ds.SOPInstanceUID)]})" for ds in group if str(ds.SOPInstanceUID) in failed]
            outcomes.append(SendError(f"{self.spec}: not stored: {', '.join(reasons)}") if reasons else None)
        if failed and all(outcome is None for outcome in outcomes):  # failures naming none of ours: fail them all
            return [SendError(f"{self.spec}: not stored: {', '.join(failed)}")] * len(groups)
        return outcomes


def raise_first(outcomes: list[BaseException | None]) -> None:
    """Raise the first failure among ``outcomes``."""
    for outcome in outcomes:
        if outcome is not None:
            raise outcome


def parse_destination(spec: str, calling_ae: str = "SCINTIPIPE") -> CStoreDestination | StowDestination:
    """A destination from ``AE@host:port`` (C-STORE) or an ``http(s)://`` URL (STOW-RS).

    Example:
        >>> parse_destination("PACS@10.0.0.5:104").port
        104

    Raises:
        ValueError: neither form.
    """
    if spec.startswith(("http://", "https://")):
        return StowDestination(spec.rstrip("/"))
    match = _CSTORE_SPEC.match(spec)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{spec!r} is neither AE@host:port (C-STORE) nor an http(s):// URL (STOW-RS)")
    return CStoreDestination(spec, match["ae"], match["host"].strip("[]"), int(match["port"]), calling_ae=calling_ae)
