"""The one way scintipipe talks DICOMweb: a client with credentials, and why a request failed.

``scintipipe run --from-pacs http://...`` (:mod:`scintipipe.dicomnet.fetch`) and
``scintipipe serve --dicomweb-url`` (:mod:`scintipipe.server.datastore_dicomweb`) both build
their ``dicomweb_client.DICOMwebClient`` with :func:`dicomweb_client` and explain a failed
request with :func:`failure_reason`, so a bearer token, basic authentication and the 401/403
messages behave the same in both. ``dicomweb-client`` and ``requests`` (the
``dicom-network`` extra) are imported only when a client is made.
"""

from __future__ import annotations

from typing import Any


def dicomweb_client(url: str, token: str | None = None, user: tuple[str, str] | None = None, timeout: float = 30.0) -> Any:
    """A ``dicomweb_client.DICOMwebClient`` for the DICOMweb root ``url``.

    Args:
        url: the DICOMweb root (Orthanc: ``http://host:8042/dicom-web``).
        token: sent as ``Authorization: Bearer TOKEN`` when given.
        user: ``(user, password)`` for HTTP basic authentication when given.
        timeout: seconds for each request.
    """
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.auth = user
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = DICOMwebClient(url.rstrip("/"), session=session, headers=headers, timeout=timeout)
    # dicomweb-client retries every failed request 5 times, waiting 2, 4, 8 and 16 s, and a
    # refused connection counts: an unreachable PACS took 30 s to report. Three attempts
    # 1 and 2 s apart still ride out a busy server (its 429/503 answers are retried too).
    client.set_http_retry_params(max_attempts=RETRY_ATTEMPTS, wait_exponential_multiplier=RETRY_WAIT_MS)
    return client


#: attempts of one DICOMweb request, and the first wait between them (doubled after each)
RETRY_ATTEMPTS = 3
RETRY_WAIT_MS = 500


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed ``requests`` call (``None``: no answer, such as a refused connection)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def failure_reason(exc: BaseException, credentials_given: bool, credential_flags: str, not_found: str | None = None) -> str:
    """Why a DICOMweb request failed, in words.

    Args:
        exc: what ``requests`` (or the socket) raised.
        credentials_given: a token or a user was sent.
        credential_flags: the options that give credentials, for the hint
            (``"--pacs-token or --pacs-user"``).
        not_found: what an HTTP 404 means here (``"no such study on the server"``);
            ``None`` reports it like any other status.

    Example:
        >>> import requests
        >>> error = requests.HTTPError(response=requests.Response())
        >>> error.response.status_code = 401
        >>> failure_reason(error, False, "--pacs-token or --pacs-user")
        'the server needs credentials (HTTP 401): give --pacs-token or --pacs-user'
    """
    status = http_status(exc)
    if status == 404 and not_found:
        return f"{not_found} (HTTP 404)"
    if status in (401, 403):
        if credentials_given:
            return f"the credentials given were refused (HTTP {status})"
        return f"the server needs credentials (HTTP {status}): give {credential_flags}"
    if status is not None:
        return f"the server answered HTTP {status}"
    return f"the server cannot be reached: {type(exc).__name__}: {exc}"
