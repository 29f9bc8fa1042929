"""Bearer-token access control for ``scintipipe serve``: tokens, scopes and the ASGI guard.

A token has one of two scopes. ``read`` may look (app info, datastore listings and
downloads, inference, training status) and changes nothing on the server; ``admin`` may
also upload, save or delete labels and images, edit image info, ask active learning for
the next sample (it records the choice) and train. :func:`required_scope` says which scope
a request needs; every route but ``GET /health`` needs one.

:class:`BearerAuth` is ASGI middleware, not a FastAPI dependency, so that it answers before
the request body is read (an unauthenticated upload is refused without being parsed or
spooled to disk) and so that it covers every path: the API docs, unknown paths and
methods a route does not take. The token is read with FastAPI's own
``get_authorization_scheme_param`` (what ``HTTPBearer`` uses) and compared in constant
time: both sides are hashed with SHA-256 and compared with :func:`hmac.compare_digest`,
against every configured token, so neither the length nor which token matched shows in
the timing.

Example:
    >>> tokens = Tokens.from_options(token="a" * 32, read_token="r" * 32)
    >>> tokens.scope_of("r" * 32)
    'read'
    >>> required_scope("POST", "/infer/uptake4"), required_scope("DELETE", "/datastore/image")
    ('read', 'admin')
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

READ = "read"
ADMIN = "admin"
SCOPES = (READ, ADMIN)
TOKEN_ENV = "SCINTIPIPE_SERVER_TOKEN"
READ_TOKEN_ENV = "SCINTIPIPE_SERVER_READ_TOKEN"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset({"/health"})
READ_METHODS = frozenset({"GET", "HEAD"})
READ_POSTS = ("/infer/",)  # POSTs that compute an answer and store nothing
REALM = 'Bearer realm="scintipipe"'
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class TokenError(ValueError):
    """A token, token file or bind address that the server cannot start with."""


def digest(token: str) -> bytes:
    """SHA-256 of a token: fixed length, so comparing digests leaks no length."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass
class Tokens:
    """The accepted tokens, each with its scope (``read`` or ``admin``); only digests are kept."""

    digests: list[tuple[bytes, str]] = field(default_factory=list)

    def add(self, token: str, scope: str, origin: str) -> None:
        """Accept ``token`` with ``scope``; ``origin`` names where it came from, for messages.

        Raises:
            TokenError: an unknown scope, or a token too short or holding whitespace.
        """
        if scope not in SCOPES:
            raise TokenError(f"{origin}: unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        if len(token) < MIN_TOKEN_CHARS or any(char.isspace() for char in token):
            raise TokenError(f"{origin}: a token needs at least {MIN_TOKEN_CHARS} characters and no spaces; make one with: {MAKE_TOKEN}")
        self.digests.append((digest(token), scope))

    def __bool__(self) -> bool:
        return bool(self.digests)

    def scopes(self) -> list[str]:
        """The scopes that have at least one token, in ``SCOPES`` order."""
        present = {scope for _, scope in self.digests}
        return [scope for scope in SCOPES if scope in present]

    def scope_of(self, token: str) -> str | None:
        """The scope of ``token``, or ``None`` when it is not accepted (constant time)."""
        presented = digest(token)
        found: str | None = None
        for known, scope in self.digests:  # no early exit: every token is compared
            if hmac.compare_digest(presented, known) and found != ADMIN:
                found = scope
        return found

    @classmethod
    def from_options(cls, token: str | None = None, read_token: str | None = None, token_file: Path | None = None) -> Tokens:
        """Tokens from ``--token`` (admin), ``--read-token`` (read) and ``--token-file``.

        Raises:
            TokenError: a bad token or token file.
        """
        tokens = cls()
        if token_file is not None:
            tokens.read_file(Path(token_file))
        if token:
            tokens.add(token, ADMIN, "--token")
        if read_token:
            tokens.add(read_token, READ, "--read-token")
        return tokens

    def read_file(self, path: Path) -> None:
        """Add the tokens of a token file: ``admin: TOKEN`` or ``read: TOKEN`` per line.

        A line without a scope is an admin token; blank lines and ``#`` comments are skipped.

        Raises:
            TokenError: the file cannot be read, holds no token, or a line is malformed.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"cannot read the token file {path}: {exc}") from exc
        before = len(self.digests)
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            scope, sep, value = line.partition(":")
            if not sep or scope.strip() not in SCOPES:
                scope, value = ADMIN, line
            self.add(value.strip(), scope.strip(), f"{path} line {number}")
        if len(self.digests) == before:
            raise TokenError(f"the token file {path} holds no token (write 'admin: TOKEN' or 'read: TOKEN' lines)")


def loose_permissions(path: Path) -> bool:
    """Whether a token file can be read by users other than its owner (POSIX only)."""
    if os.name != "posix":
        return False
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_bind(host: str, tokens: Tokens) -> None:
    """Refuse to serve a non-loopback address without a token.

    Raises:
        TokenError: ``host`` is not loopback and no token is configured.
    """
    if not tokens and not is_loopback(host):
        raise TokenError(
            f"--host {host} is not a loopback address, so the server would be open to the network: "
            f"give a token with --token-file FILE (lines 'admin: TOKEN', 'read: TOKEN'), ${TOKEN_ENV} or --token; "
            f"make one with: {MAKE_TOKEN}"
        )


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs: ``None`` (open), ``read`` or ``admin``.

    ``GET /health`` is open. ``GET`` and ``HEAD`` need ``read``, and so does ``POST
    /infer/{model}`` (it stores nothing). Everything else, including any route added
    later, needs ``admin``: writes are closed unless listed here.
    """
    method = method.upper()
    if path in OPEN_PATHS and method in READ_METHODS:
        return None
    if method in READ_METHODS or (method == "POST" and path.startswith(READ_POSTS)):
        return READ
    return ADMIN


def refusal(status: int, detail: str, challenge: str) -> JSONResponse:
    """A 401 or 403 answer with its ``WWW-Authenticate`` challenge (RFC 6750)."""
    return JSONResponse({"detail": detail}, status_code=status, headers={"WWW-Authenticate": challenge})


class BearerAuth:
    """Refuse requests without an accepted bearer token (401) or with too small a scope (403).

    Args:
        app: the ASGI application.
        tokens: the accepted tokens; empty means open (loopback only, see :func:`check_bind`).
    """

    def __init__(self, app: ASGIApp, tokens: Tokens):
        self.app = app
        self.tokens = tokens

    def check(self, scope: Scope) -> JSONResponse | None:
        """The refusal for this request, or ``None`` to let it through."""
        needed = required_scope(scope.get("method", "GET"), scope.get("path", ""))
        if needed is None or not self.tokens:
            return None
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, credentials = get_authorization_scheme_param(header)
        if not header:
            return refusal(401, "this server needs a token: send the header 'Authorization: Bearer TOKEN'", REALM)
        if scheme.lower() != "bearer" or not credentials:
            return refusal(401, "send the token as 'Authorization: Bearer TOKEN'", f'{REALM}, error="invalid_request"')
        granted = self.tokens.scope_of(credentials.strip())
        if granted is None:
            return refusal(401, "the token is not accepted", f'{REALM}, error="invalid_token"')
        if needed == ADMIN and granted != ADMIN:
            return refusal(
                403,
                f"{scope.get('method')} {scope.get('path')} needs an admin token; this token is read-only",
                f'{REALM}, error="insufficient_scope", scope="{ADMIN}"',
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = self.check(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        elif scope["type"] == "websocket" and self.tokens:
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def describe(tokens: Tokens) -> str:
    """One line for the start-up message: open, or which scopes have tokens."""
    if not tokens:
        return "no token: open to every user and process on this machine (loopback only)"
    counts = {scope: sum(1 for _, s in tokens.digests if s == scope) for scope in tokens.scopes()}
    return "bearer tokens required (" + ", ".join(f"{n} {scope}" for scope, n in counts.items()) + ")"
