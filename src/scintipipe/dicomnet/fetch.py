"""Pull a study from a DICOMweb server by WADO-RS, for ``scintipipe run --from-pacs URL --study UID``.

The instances are written to a folder, each atomically and named by its SOP Instance UID, so
that the run reads them like any folder of DICOM files and the folder records what was run on
(docs/dicom_network.md). scintipipe's own SR and Secondary Capture, which the study holds
once its results were sent back, are left out, as the listener drops them. ``dicomweb-client`` and ``requests`` (the ``dicom-network`` extra)
are imported here, only when a study is fetched.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from scintipipe.dicomnet.listener import OWN_MANUFACTURER
from scintipipe.dicomnet.store import atomic_write_bytes, valid_uid
from scintipipe.errors import ScanError


def fetch_study(
    url: str, study_uid: str, folder: Path, token: str | None = None, timeout: float = 60.0, user: tuple[str, str] | None = None
) -> list[Path]:
    """Retrieve every instance of ``study_uid`` from the DICOMweb service at ``url`` into ``folder``.

    Args:
        url: the DICOMweb root (Orthanc: ``http://host:8042/dicom-web``).
        study_uid: the Study Instance UID.
        folder: where the instances go, as ``<SOPInstanceUID>.dcm`` (created; an instance
            fetched again replaces its earlier copy).
        token: a bearer token for the ``Authorization`` header, if the server needs one.
        timeout: seconds for the request.
        user: ``(user, password)`` for HTTP basic authentication, if the server needs it.

    Returns:
        The files written, sorted; scintipipe's own results in the study are not written.

    Raises:
        ScanError: naming the URL and the study, when the UID is not valid, the server cannot be
            reached or answers an error (404: no such study; 401, 403: credentials missing or
            refused), or the study has no instances
            other than scintipipe's own results.
    """
    import requests

    from scintipipe.dicomnet.dicomweb import dicomweb_client, failure_reason

    source = f"study {study_uid} at {url}"
    if not valid_uid(study_uid):
        raise ScanError(source, "not a valid Study Instance UID")
    try:
        datasets = dicomweb_client(url, token, user, timeout).retrieve_study(study_uid)
    except (requests.RequestException, OSError) as exc:
        reason = failure_reason(exc, token is not None or user is not None, "--pacs-token or --pacs-user", not_found="no such study on the server")
        raise ScanError(source, reason) from exc
    datasets = [dataset for dataset in datasets if str(dataset.get("Manufacturer", "")) != OWN_MANUFACTURER]
    if not datasets:
        raise ScanError(source, "the study has no instances (other than scintipipe's own results)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset in datasets:
        instance = str(dataset.get("SOPInstanceUID", ""))
        if not valid_uid(instance):
            raise ScanError(source, f"an instance has no valid SOP Instance UID ({instance!r})")
        buffer = BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        path = folder / f"{instance}.dcm"
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return sorted(written)
