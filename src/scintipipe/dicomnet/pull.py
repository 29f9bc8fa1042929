"""``scintipipe run --from-pacs``: the options that say how to reach the PACS, and the pull itself.

``--from-pacs`` takes either a DICOMweb root (``http(s)://``, WADO-RS:
:mod:`scintipipe.dicomnet.fetch`) or a DICOM node, ``dicom://AE@host:port`` (C-GET, or
C-MOVE with ``--move-ae``/``--move-port``: :mod:`scintipipe.dicomnet.retrieve`). The
options here are declared once (:func:`pacs_access_options`) and taken out of the run
command's keyword arguments by :func:`pop_pacs_access`, so that the run command itself
only names ``--from-pacs`` and ``--study``. Nothing heavy is imported until a study is pulled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])

#: environment variables read when the options are not given (a secret on the command line is visible to other users in ps)
TOKEN_ENV = "SCINTIPIPE_PACS_TOKEN"
USER_ENV = "SCINTIPIPE_PACS_USER"


@dataclass(frozen=True)
class PacsAccess:
    """How to reach the PACS named by ``--from-pacs``.

    Attributes:
        token: a bearer token for DICOMweb (``Authorization: Bearer ...``).
        user: ``(user, password)`` for DICOMweb HTTP basic authentication.
        calling_ae: our AE title for a ``dicom://`` node (with C-MOVE, the destination too).
        move_port: C-MOVE to a storage SCP on this port instead of C-GET.
        move_host: the address that SCP listens on.
        from_env: the DICOMweb credentials came from the environment, not the command line
            (they are then ignored for a ``dicom://`` node rather than refused).
    """

    token: str | None = None
    user: tuple[str, str] | None = None
    calling_ae: str = "SCINTIPIPE"
    move_port: int | None = None
    move_host: str = "0.0.0.0"
    from_env: bool = False

    @property
    def dicomweb_given(self) -> bool:
        """Whether a DICOMweb-only option was given on the command line."""
        return (self.token is not None or self.user is not None) and not self.from_env

    @property
    def dimse_given(self) -> bool:
        """Whether a DICOM-node-only option was given."""
        return self.move_port is not None or self.calling_ae != "SCINTIPIPE"


def pacs_access_options(command: F) -> F:
    """Add ``--pacs-token``, ``--pacs-user``, ``--move-ae`` and ``--move-port`` to a click command."""
    options = [
        click.option(
            "--pacs-token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            metavar="TOKEN",
            help="DICOMweb --from-pacs: send 'Authorization: Bearer TOKEN'.",
        ),
        click.option(
            "--pacs-user",
            envvar=USER_ENV,
            show_envvar=True,
            metavar="USER:PASSWORD",
            help="DICOMweb --from-pacs: HTTP basic authentication (prefer the environment variable: arguments show in ps).",
        ),
        click.option(
            "--move-ae",
            metavar="AE_TITLE",
            help="dicom:// --from-pacs: our AE title (default SCINTIPIPE); with --move-port, the C-MOVE destination the PACS knows.",
        ),
        click.option(
            "--move-port",
            metavar="[HOST:]PORT",
            help="dicom:// --from-pacs: retrieve by C-MOVE to a storage SCP on this port (default host 0.0.0.0) instead of C-GET.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_pacs_access(values: dict[str, Any]) -> PacsAccess:
    """Take the options of :func:`pacs_access_options` out of a command's keyword arguments.

    Raises:
        click.BadParameter: a malformed ``--pacs-user``, ``--move-ae`` or ``--move-port``.
    """
    token, user = values.pop("pacs_token", None), values.pop("pacs_user", None)
    move_ae, move_port = values.pop("move_ae", None), values.pop("move_port", None)
    credentials = None
    if user is not None:
        name, colon, password = user.partition(":")
        if not colon or not name:
            raise click.BadParameter("give USER:PASSWORD", param_hint=f"--pacs-user (or ${USER_ENV})")
        credentials = (name, password)
    if move_ae is not None and (not 0 < len(move_ae.strip()) <= 16 or "\\" in move_ae or not move_ae.isascii()):
        raise click.BadParameter(f"{move_ae!r}: an AE title is 1 to 16 ASCII characters, no backslash", param_hint="--move-ae")
    host, port = "0.0.0.0", None
    if move_port is not None:
        text_host, _, text_port = move_port.rpartition(":")
        if not text_port.isdigit() or not 0 < int(text_port) < 65536:
            raise click.BadParameter(f"{move_port!r}: give PORT or HOST:PORT", param_hint="--move-port")
        host, port = text_host.strip("[]") or host, int(text_port)
    ctx = click.get_current_context(silent=True)
    from_env = ctx is not None and all(
        ctx.get_parameter_source(name) in (ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT, None) for name in ("pacs_token", "pacs_user")
    )
    return PacsAccess(token or None, credentials, (move_ae or "SCINTIPIPE").strip(), port, host, from_env)


def pull_study(url: str, study_uid: str, folder: Path, access: PacsAccess) -> list[Path]:
    """Fetch every instance of ``study_uid`` from ``url`` into ``folder``, by WADO-RS or by C-GET/C-MOVE.

    Args:
        url: ``http(s)://`` (a DICOMweb root) or ``dicom://AE@host:port``.
        study_uid: the Study Instance UID.
        folder: where the instances go, as ``<SOPInstanceUID>.dcm``.
        access: credentials and retrieve options (:func:`pop_pacs_access`).

    Returns:
        The files written, sorted.

    Raises:
        click.BadParameter: the URL is neither form, or an option does not fit its kind.
        ScanError: the pull failed (naming the server, the study and the reason).
    """
    from scintipipe.dicomnet.retrieve import is_dicom_url, parse_dicom_url

    if is_dicom_url(url):
        try:
            node = parse_dicom_url(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from-pacs") from exc
        if access.dicomweb_given:
            raise click.BadParameter("--pacs-token and --pacs-user are for a DICOMweb (http) --from-pacs, not dicom://", param_hint="--from-pacs")
        from scintipipe.dicomnet.retrieve import retrieve_study

        return retrieve_study(node, study_uid, folder, calling_ae=access.calling_ae, move_port=access.move_port, move_host=access.move_host)
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{url!r}: give a DICOMweb root (http://pacs:8042/dicom-web) or a DICOM node (dicom://AE@host:port)", param_hint="--from-pacs"
        )
    if access.dimse_given:
        raise click.BadParameter("--move-ae and --move-port are for a dicom:// --from-pacs", param_hint="--from-pacs")
    from scintipipe.dicomnet.fetch import fetch_study

    return fetch_study(url, study_uid, folder, token=access.token, user=access.user)
