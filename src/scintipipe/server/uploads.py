"""Request bodies: a size cap for every request and uploaded files saved to disk.

:class:`BodySizeLimit` is ASGI middleware: a request whose ``Content-Length`` or streamed
body exceeds the cap gets ``413`` before anything reaches the datastore.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scintipipe.server.datastore import file_suffix
from scintipipe.server.errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20


class BodyTooLarge(Exception):
    """The request body went over the cap while it was read."""


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with ``413 Payload Too Large``.

    Args:
        app: the ASGI application.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def message(self, size: int | None = None) -> JSONResponse:
        """The 413 answer."""
        got = f" ({size / 1e6:.1f} MB)" if size else ""
        return JSONResponse(
            {"detail": f"request body too large{got}: the limit is {self.max_bytes / 1e6:.1f} MB (scintipipe serve --max-upload-mb)"}, status_code=413
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self.message(int(length))(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self.message()(scope, receive, send)


def save_upload(upload: UploadFile, folder: Path, max_bytes: int) -> tuple[Path, str]:
    """Copy an uploaded file to a temporary file in ``folder`` keeping its extension.

    Returns:
        ``(path, extension)``; the caller deletes the file.

    Raises:
        BadRequest: the file is empty.
        PayloadTooLarge: the file is larger than ``max_bytes``.
    """
    suffix = file_suffix(upload.filename or "")
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", suffix=suffix, delete=False)
    path = Path(handle.name)
    with handle:
        shutil.copyfileobj(upload.file, handle, CHUNK)
        size = handle.tell()
    if size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest(f"the uploaded file {upload.filename!r} is empty")
    if size > max_bytes:
        path.unlink(missing_ok=True)
        raise PayloadTooLarge(f"the uploaded file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    return path, suffix


def clear_uploads(folder: Path) -> None:
    """Delete the upload copies a killed server left in ``folder`` (at start, before any request)."""
    for path in folder.glob("upload-*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def parse_params(text: str | None) -> dict[str, Any]:
    """The ``params`` form field as a dict (``{}`` when empty).

    Raises:
        BadRequest: not a JSON object.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"params is not valid JSON: {exc}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("params must be a JSON object")
    return value
