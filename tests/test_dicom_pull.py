"""`scintipipe run --from-pacs`: pulling a study by C-GET and C-MOVE, and DICOMweb with credentials, against Orthanc.

One Orthanc on loopback (tests/orthanc_server.py) knows scintipipe as a modality
(``DicomModalities``: the calling AE title allowed to C-GET, and the C-MOVE destination on a
free port) and requires HTTP basic authentication (``RegisteredUsers``). The bearer token is
checked with a small HTTP server on loopback that records the header it was sent.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest

from orthanc_server import Orthanc, free_port
from scintipipe.dicomnet.pull import pop_pacs_access
from scintipipe.dicomnet.retrieve import parse_dicom_url
from scintipipe.testing import run_cli

USER, PASSWORD = "reader", "s3cret"
RUN = ["run", "--no-explain", "--no-progress", "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def move_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, move_port: int) -> Iterator[Orthanc]:
    config = {
        "DicomModalities": {"scintipipe": ["SCINTIPIPE", "127.0.0.1", move_port]},
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
    }
    server = Orthanc(tmp_path_factory.mktemp("orthanc"), config=config, auth=(USER, PASSWORD))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, orthanc: Orthanc) -> tuple[str, set[str]]:
    """A simulated study (thyroid view, full and empty syringe) uploaded to Orthanc: its UID and SOP Instance UIDs."""
    import pydicom

    simulated = tmp_path_factory.mktemp("simulated")
    run_cli("simulate", "--task", "uptake4", "--n", "1", "--seed", "23", "--syringes", "--out", simulated, "--no-progress")
    headers = {}
    for path in sorted(simulated.rglob("*.dcm")):
        orthanc.session.post(f"{orthanc.url}/instances", data=path.read_bytes(), timeout=30).raise_for_status()
        headers[path] = pydicom.dcmread(path, stop_before_pixels=True)
    uid = str(headers[simulated / "case-00000.dcm"].StudyInstanceUID)
    return uid, {str(header.SOPInstanceUID) for header in headers.values() if header.StudyInstanceUID == uid}


def fetched(out: Path, uid: str) -> set[str]:
    return {path.stem for path in (out / f"incoming-{uid}").glob("*.dcm")}


# ---- without a server ----------------------------------------------------------------------


def test_dicom_urls_and_access_options_are_parsed() -> None:
    node = parse_dicom_url("dicom://PACS@[::1]:104")
    assert (node.called_ae, node.host, node.port, node.name) == ("PACS", "::1", 104, "PACS@::1:104")
    for bad in ("dicom://pacs:104", "dicom://PACS@pacs", "dicom://PACS@pacs:0", "dicom://AN_AE_TITLE_TOO_LONG@pacs:104"):
        with pytest.raises(ValueError, match="dicom://AE_TITLE@host:port"):
            parse_dicom_url(bad)
    values: dict[str, Any] = {"pacs_token": None, "pacs_user": "ann:pa:ss", "move_ae": "ME", "move_port": "127.0.0.1:4000", "other": 1}
    access = pop_pacs_access(values)
    assert values == {"other": 1}  # the plugins' options are left
    assert (access.user, access.calling_ae, access.move_host, access.move_port) == (("ann", "pa:ss"), "ME", "127.0.0.1", 4000)
    assert pop_pacs_access({"move_port": "4000"}).move_host == "0.0.0.0"
    for bad_values in ({"pacs_user": "nopassword"}, {"move_port": "host:"}, {"move_ae": "X" * 17}):
        with pytest.raises(click.BadParameter):
            pop_pacs_access(bad_values)


def test_options_that_do_not_fit_the_url_are_usage_errors(tiny_bundle: Path, tmp_path: Path) -> None:
    base = [*RUN, "--bundle", tiny_bundle, "--out", tmp_path]
    assert "--from-pacs" in run_cli(*base, tmp_path, "--move-port", "4000", expect_exit=2).output
    assert "dicom://AE@host:port" in run_cli(*base, "--from-pacs", "ftp://pacs", "--study", "1.2.3", expect_exit=2).output
    assert "--pacs-token" in run_cli(*base, "--from-pacs", "dicom://P@127.0.0.1:1", "--study", "1.2.3", "--pacs-token", "t", expect_exit=2).output
    assert "--move-ae" in run_cli(*base, "--from-pacs", "http://127.0.0.1:1/dicom-web", "--study", "1.2.3", "--move-ae", "ME", expect_exit=2).output


def test_bearer_token_from_the_environment_is_sent(tiny_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("dicomweb_client", reason="the dicom-network extra is not installed")
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        base = [*RUN, "--bundle", tiny_bundle, "--out", tmp_path, "--from-pacs", url, "--study", "1.2.3"]
        refused = run_cli(*base, expect_exit=2, env={"SCINTIPIPE_PACS_TOKEN": "t0ken"}).output
    finally:
        server.shutdown()
        server.server_close()
    assert seen and seen[0] == "Bearer t0ken"
    assert "credentials given were refused (HTTP 401)" in refused and url in refused


# ---- against Orthanc -----------------------------------------------------------------------


def test_c_get_pulls_the_study_and_runs_on_it(tmp_path: Path, orthanc: Orthanc, study: tuple[str, set[str]], tiny_bundle: Path) -> None:
    uid, instances = study
    out = tmp_path / "out"
    done = run_cli(
        *RUN, "--bundle", tiny_bundle, "--out", out, "--from-pacs", f"dicom://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", "--study", uid
    )
    assert fetched(out, uid) == instances and len(instances) == 3 and "fetched 3 instances" in done.output
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and Path(rows[0]["source"].split("#")[0]).parent == out / f"incoming-{uid}"
    assert json.loads(next(out.rglob("report.json")).read_text())["quantities"]["uptake_percent"] > 0  # the syringes came too


def test_c_move_to_a_temporary_storage_scp(tmp_path: Path, orthanc: Orthanc, study: tuple[str, set[str]], tiny_bundle: Path, move_port: int) -> None:
    from scintipipe.dicomnet.retrieve import retrieve_study

    uid, instances = study
    node = parse_dicom_url(f"dicom://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}")
    files = retrieve_study(node, uid, tmp_path / "moved", move_port=move_port, move_host="127.0.0.1")
    assert {path.stem for path in files} == instances
    again = retrieve_study(node, uid, tmp_path / "moved", move_port=move_port, move_host="127.0.0.1")  # the port is free again
    assert again == files and len(list((tmp_path / "moved").iterdir())) == 3


def test_dimse_pull_errors_name_the_node_and_the_reason(
    tmp_path: Path, orthanc: Orthanc, study: tuple[str, set[str]], tiny_bundle: Path, move_port: int
) -> None:
    uid, _ = study
    url = f"dicom://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    base = [*RUN, "--bundle", tiny_bundle, "--out", tmp_path]
    unknown = run_cli(*base, "--from-pacs", url, "--study", "1.2.3.4.5.6.7", expect_exit=2).output
    assert url in unknown and "no such study" in unknown
    moved = run_cli(*base, "--from-pacs", url, "--study", "1.2.3.4.5.6.7", "--move-port", f"127.0.0.1:{move_port}", expect_exit=2).output
    assert "no such study" in moved and "C-MOVE" in moved
    stranger = run_cli(*base, "--from-pacs", url, "--study", uid, "--move-ae", "STRANGER", expect_exit=2).output
    assert "STRANGER" in stranger and f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}" in stranger
    down = f"dicom://PACS@127.0.0.1:{free_port()}"
    assert "cannot be reached" in run_cli(*base, "--from-pacs", down, "--study", uid, expect_exit=2).output
    assert not any(tmp_path.glob("incoming-*/*.dcm"))


def test_dicomweb_basic_auth(tmp_path: Path, orthanc: Orthanc, study: tuple[str, set[str]], tiny_bundle: Path) -> None:
    uid, instances = study
    url = f"{orthanc.url}/dicom-web"
    base = [*RUN, "--bundle", tiny_bundle, "--from-pacs", url, "--study", uid]
    assert "needs credentials (HTTP 401)" in run_cli(*base, "--out", tmp_path / "none", expect_exit=2, env={"SCINTIPIPE_PACS_USER": None}).output
    refused = run_cli(*base, "--out", tmp_path / "wrong", "--pacs-user", f"{USER}:wrong", expect_exit=2).output
    assert "credentials given were refused (HTTP 401)" in refused and url in refused
    run_cli(*base, "--out", tmp_path / "env", env={"SCINTIPIPE_PACS_USER": f"{USER}:{PASSWORD}"})
    assert fetched(tmp_path / "env", uid) == instances


def test_dicomweb_failure_reasons_are_one_set_of_words() -> None:
    """The reasons ``run --from-pacs`` and ``serve --dicomweb-url`` give (scintipipe.dicomnet.dicomweb)."""
    import requests

    from scintipipe.dicomnet.dicomweb import failure_reason

    def answered(status: int) -> requests.HTTPError:
        response = requests.Response()
        response.status_code = status
        return requests.HTTPError(response=response)

    flags = "--pacs-token or --pacs-user"
    assert failure_reason(answered(404), False, flags, not_found="no such study on the server") == "no such study on the server (HTTP 404)"
    assert failure_reason(answered(404), False, flags) == "the server answered HTTP 404"
    assert failure_reason(answered(403), False, flags) == "the server needs credentials (HTTP 403): give --pacs-token or --pacs-user"
    assert failure_reason(answered(401), True, flags) == "the credentials given were refused (HTTP 401)"
    assert failure_reason(answered(502), True, flags) == "the server answered HTTP 502"
    refused = failure_reason(requests.ConnectionError("connection refused"), False, flags)
    assert refused == "the server cannot be reached: ConnectionError: connection refused"


def test_an_unreachable_dicomweb_server_is_reported_in_seconds_not_half_a_minute() -> None:
    """dicomweb-client's own retries (5 attempts, 2 + 4 + 8 + 16 s apart) took 30 s to report a refused connection."""
    import time

    import requests

    from scintipipe.dicomnet.dicomweb import dicomweb_client

    client = dicomweb_client(f"http://127.0.0.1:{free_port()}/dicom-web")
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        client.search_for_studies()
    assert time.monotonic() - start < 15
