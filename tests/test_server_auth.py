"""Access control in `scintipipe serve`: bearer tokens, scopes, CORS, TLS, and error
messages that never show a server path.

Servers run on 127.0.0.1 (a free port) over the shape-only tiny bundle; the real MONAI
Label client sends the token as a viewer plugin would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from dicom_factory import thyroid_pattern, write_nm_dicom
from scintipipe.server.auth import ADMIN, READ, TOKEN_ENV, TokenError, Tokens, check_bind, is_loopback, required_scope
from scintipipe.server.local import running_server

client_module = pytest.importorskip("monailabel.client.client", reason="install with: pip install --no-deps monailabel")
MONAILabelClient = client_module.MONAILabelClient
MONAILabelClientException = client_module.MONAILabelClientException

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
ORIGIN = "https://ohif.example.org"
REPO = Path(__file__).resolve().parents[1]

# Routes FastAPI keeps out of the schema, which the guard must cover all the same.
HIDDEN_ROUTES = [("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json"), ("PUT", "/datastore/"), ("DELETE", "/datastore/")]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def authed_client(url: str, tmp_path: Path, token: str | None) -> MONAILabelClient:
    """The client as 3D Slicer's plugin sets it up after login: ``update_auth`` with a token."""
    client = MONAILabelClient(url, tmpdir=str(tmp_path))
    if token:
        client.update_auth({"token_type": "Bearer", "access_token": token})
    return client


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nm_dicom(tmp_path_factory.mktemp("auth-scans") / "scan.dcm", thyroid_pattern(64, 64, peak=80, seed=3))


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A token-protected server (one admin, one read token) that lets ``ORIGIN`` call it."""
    datastore = tmp_path_factory.mktemp("auth-served") / "datastore"
    tokens = Tokens.from_options(token=ADMIN_TOKEN, read_token=READ_TOKEN)
    with running_server({"tiny": tiny_bundle}, datastore, tokens=tokens, cors_origins=[ORIGIN], max_upload_bytes=1024 * 1024) as url:
        yield url, datastore


def every_route(url: str) -> list[tuple[str, str]]:
    """(method, path) of every route: the schema's operations plus the hidden ones."""
    schema = requests.get(f"{url}/openapi.json", headers=bearer(READ_TOKEN), timeout=10).json()
    routes = [(method.upper(), path) for path, operations in schema["paths"].items() for method in operations]
    return routes + HIDDEN_ROUTES


def concrete(path: str) -> str:
    return path.replace("{model}", "tiny").replace("{strategy}", "random")


# ---- tokens, scopes and the bind check ------------------------------------------------


def test_scopes_follow_the_table_in_the_docs() -> None:
    """Every row of the scope table in docs/security.md is what the guard enforces."""
    text = (REPO / "docs/security.md").read_text()
    section = text.split("### Scopes", 1)[1].split("\n#", 1)[0]  # the scope table only, not the other tables
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 20
    for row in rows:
        route, scope = (cell.strip() for cell in row.strip("|").split("|")[:2])
        method, path = route.strip("`").split(" ", 1)
        expected = None if scope == "none" else scope
        assert required_scope(method, concrete(path)) == expected, row
    assert required_scope("PATCH", "/anything/new") == ADMIN  # writes are closed unless listed


def test_token_file_scopes_comments_and_refusals(tmp_path: Path) -> None:
    good = tmp_path / "tokens.txt"
    good.write_text(f"# team tokens\nadmin: {ADMIN_TOKEN}\n\nread:{READ_TOKEN}\nbare-line-token-is-admin-0001\n")
    tokens = Tokens.from_options(token_file=good)
    assert tokens.scope_of(ADMIN_TOKEN) == ADMIN and tokens.scope_of(READ_TOKEN) == READ
    assert tokens.scope_of("bare-line-token-is-admin-0001") == ADMIN
    assert tokens.scope_of("nope") is None and tokens.scope_of(ADMIN_TOKEN[:-1]) is None
    for text, message in [
        ("admin: short\n", "at least 16"),
        ("# nothing\n", "holds no token"),
        ("read: has a space in it 0123456789\n", "no spaces"),
    ]:
        good.write_text(text)
        with pytest.raises(TokenError, match=message):
            Tokens.from_options(token_file=good)
    with pytest.raises(TokenError, match="at least 16"):
        Tokens.from_options(token="1234")


def test_a_non_loopback_address_needs_a_token() -> None:
    assert all(is_loopback(host) for host in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
    assert not any(is_loopback(host) for host in ["0.0.0.0", "::", "192.168.1.10", "scanner.example.org"])
    check_bind("127.0.0.1", Tokens())
    for host in ["0.0.0.0", "10.0.0.5", "::"]:
        with pytest.raises(TokenError, match="not a loopback address"):
            check_bind(host, Tokens())
    check_bind("0.0.0.0", Tokens.from_options(token=ADMIN_TOKEN))


def test_serve_refuses_to_start_open_on_the_network_and_says_when_it_is_open(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import scintipipe.server.run as run_module
    from scintipipe.cli import cli

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    started: list[dict] = []
    monkeypatch.setattr(run_module, "serve", lambda app, **kwargs: started.append(kwargs))
    runner = CliRunner()
    base = ["serve", "--bundle", str(tiny_bundle), "--datastore", str(tmp_path / "ds")]

    refused = runner.invoke(cli, [*base, "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "not a loopback address" in refused.output and "--token-file" in refused.output
    assert not started

    open_run = runner.invoke(cli, base)
    assert open_run.exit_code == 0, open_run.output
    assert open_run.output.count("no token: open") == 1 and "CORS: off" in open_run.output

    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"admin: {ADMIN_TOKEN}\nread: {READ_TOKEN}\n")
    tokens.chmod(0o600)
    guarded = runner.invoke(cli, [*base, "--host", "0.0.0.0", "--token-file", str(tokens)])
    assert guarded.exit_code == 0, guarded.output
    assert "1 read, 1 admin" in guarded.output and "clear text" in guarded.output and "other users" not in guarded.output
    from_env = runner.invoke(cli, [*base, "--host", "0.0.0.0"], env={TOKEN_ENV: ADMIN_TOKEN})
    assert from_env.exit_code == 0 and "1 admin" in from_env.output
    assert len(started) == 3 and started[-1]["host"] == "0.0.0.0"


# ---- the guard on a running server ----------------------------------------------------


def test_health_is_open_and_says_nothing_else(server) -> None:
    response = requests.get(f"{server[0]}/health", timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_every_route_but_health_needs_a_token_and_admin_routes_need_admin(server) -> None:
    url = server[0]
    routes = every_route(url)
    assert len(routes) >= 20 and ("GET", "/health") in routes
    for method, path in routes:
        needed = required_scope(method, path)
        if needed is None:
            continue
        target = url + concrete(path)
        for headers in [{}, bearer("wrong-token-0123456789abcdef"), {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": "Bearer"}]:
            response = requests.request(method, target, headers=headers, timeout=30, allow_redirects=False)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        with_read = requests.request(method, target, headers=bearer(READ_TOKEN), timeout=30, allow_redirects=False)
        if needed == ADMIN:
            assert with_read.status_code == 403 and "admin" in with_read.json()["detail"], (method, path)
            assert 'error="insufficient_scope"' in with_read.headers["WWW-Authenticate"]
        else:
            assert with_read.status_code not in (401, 403), (method, path, with_read.text)
        with_admin = requests.request(method, target, headers=bearer(ADMIN_TOKEN), timeout=30, allow_redirects=False)
        assert with_admin.status_code not in (401, 403), (method, path, with_admin.text)
    assert requests.get(f"{url}/no/such/route", timeout=10).status_code == 401  # unknown paths too


def test_the_schema_declares_the_bearer_scheme(server) -> None:
    schema = requests.get(f"{server[0]}/openapi.json", headers=bearer(READ_TOKEN), timeout=10).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "403" in schema["paths"]["/datastore/image"]["delete"]["responses"]
    assert "403" not in schema["paths"]["/infer/{model}"]["post"]["responses"]


def test_an_unauthenticated_upload_is_refused_before_its_body_is_stored(server, scan: Path) -> None:
    url, datastore = server
    uploads = datastore / ".work" / "uploads"
    before = sorted(uploads.iterdir())
    response = requests.put(f"{url}/datastore/image?image=sneaky", files={"file": scan.open("rb")}, timeout=30)
    assert response.status_code == 401
    assert sorted(uploads.iterdir()) == before and not (datastore / "images" / "sneaky.dcm").exists()


# ---- the real MONAI Label client --------------------------------------------------------


def test_the_monai_label_client_sends_the_token(server, scan: Path, tmp_path: Path) -> None:
    url, datastore = server
    admin = authed_client(url, tmp_path, ADMIN_TOKEN)
    assert "tiny" in admin.info()["models"]
    assert admin.upload_image(str(scan), image_id="authed") == {"image": "authed"}
    label = tmp_path / "label.json"
    label.write_text(json.dumps({"label": "heterogeneous"}))
    assert admin.save_label("authed", str(label))["class_label"] == "heterogeneous"
    assert "authed" in admin.datastore()["objects"]

    reader = authed_client(url, tmp_path, READ_TOKEN)
    index_before = (datastore / "datastore.json").read_bytes()
    assert "tiny" in reader.info()["models"]
    assert json.loads(reader.infer("tiny", "authed", {})[1])["image"] == "authed"
    assert reader.infer("tiny_roi", "", {}, file=str(scan))[0]
    assert Path(reader.download_label("authed", "final")).read_text() == label.read_text()
    with pytest.raises(MONAILabelClientException, match="Status: 403"):
        reader.upload_image(str(scan), image_id="not-allowed")
    with pytest.raises(MONAILabelClientException, match="Status: 403"):
        reader.save_label("authed", str(label))
    with pytest.raises(MONAILabelClientException, match="Status: 403"):
        reader.train_start("tiny", {"epochs": 1})
    assert (datastore / "datastore.json").read_bytes() == index_before  # read-only means read-only

    with pytest.raises(MONAILabelClientException, match="Status: 401"):
        authed_client(url, tmp_path, None).info()
    with pytest.raises(MONAILabelClientException, match="Status: 401"):
        authed_client(url, tmp_path, "wrong-token-0123456789abcdef").infer("tiny", "authed", {})


# ---- CORS ---------------------------------------------------------------------------------


def preflight(url: str, origin: str) -> requests.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    return requests.options(f"{url}/infer/tiny", headers=headers, timeout=10)


def test_cors_allows_only_the_given_origin(server) -> None:
    url = server[0]
    allowed = preflight(url, ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in preflight(url, "https://evil.example.com").headers
    refused = requests.get(f"{url}/info/", headers={"Origin": ORIGIN}, timeout=10)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN  # the browser app sees why


def test_cors_is_off_by_default(tiny_bundle: Path, tmp_path: Path) -> None:
    with running_server({"tiny": tiny_bundle}, tmp_path / "datastore") as url:
        assert "access-control-allow-origin" not in preflight(url, ORIGIN).headers
        answer = requests.get(f"{url}/info/", headers={"Origin": ORIGIN}, timeout=10)
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


# ---- TLS ----------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_with_a_self_signed_certificate(tiny_bundle: Path, scan: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tokens = Tokens.from_options(token=ADMIN_TOKEN)
    with running_server({"tiny": tiny_bundle}, tmp_path / "datastore", tokens=tokens, ssl_certfile=cert, ssl_keyfile=key) as url:
        assert url.startswith("https://127.0.0.1:")
        assert requests.get(f"{url}/health", verify=str(cert), timeout=10).json() == {"status": "ok"}
        assert requests.get(f"{url}/info/", verify=str(cert), timeout=10).status_code == 401
        assert "tiny" in requests.get(f"{url}/info/", headers=bearer(ADMIN_TOKEN), verify=str(cert), timeout=10).json()["models"]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/health", timeout=10)  # not trusted without the certificate
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https://", "http://") + "/health", timeout=10)
        client = authed_client(url, tmp_path, ADMIN_TOKEN)  # the client does not verify certificates
        assert client.upload_image(str(scan), image_id="over-tls") == {"image": "over-tls"}
        assert json.loads(client.infer("tiny", "over-tls", {})[1])["image"] == "over-tls"


# ---- no server path in any error message ------------------------------------------------


def test_no_error_answer_shows_a_server_path(tiny_bundle: Path, scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Error answers name the user's file, never the datastore, its work folder or a traceback.

    The datastore is given as a relative path, as ``scintipipe serve --datastore`` takes it.
    """
    monkeypatch.chdir(tmp_path)
    files = tmp_path / "sent"
    files.mkdir()
    notes = files / "notes.txt"
    notes.write_text("not a scan")
    junk = files / "junk.dcm"
    junk.write_bytes(b"\x00garbage" * 100)
    bad_nifti = files / "reader label.nii.gz"
    bad_nifti.write_bytes(b"\x1f\x8bgarbage" * 50)
    bad_json = files / "label.json"
    bad_json.write_text("{not json")
    big = files / "big.dcm"
    big.write_bytes(b"\x00" * (2 * 1024 * 1024))
    with running_server({"tiny": tiny_bundle}, Path("datastore"), max_upload_bytes=1024 * 1024) as url:
        root = (tmp_path / "datastore").resolve()
        assert requests.put(f"{url}/datastore/image?image=ok", files={"file": scan.open("rb")}, timeout=30).status_code == 200

        def put(path: str, field: str, file: Path) -> requests.Response:
            return requests.put(url + path, files={field: (file.name, file.open("rb"))}, timeout=30)

        def post(path: str, file: Path | None = None, **data: str) -> requests.Response:
            return requests.post(url + path, files={"file": (file.name, file.open("rb"))} if file else None, data=data or None, timeout=60)

        answers = {
            "upload text": put("/datastore/image?image=notes", "file", notes),
            "upload junk": put("/datastore/image?image=junk", "file", junk),
            "upload too big": put("/datastore/image?image=big", "file", big),
            "infer text": post("/infer/tiny", notes),
            "infer junk roi": post("/infer/tiny_roi", junk),
            "infer junk gradcam": post("/infer/tiny_gradcam", junk),
            "label bad nifti": put("/datastore/label?image=ok", "label", bad_nifti),
            "label bad json": put("/datastore/label?image=ok", "label", bad_json),
            "label unknown image": put("/datastore/label?image=nothere", "label", bad_json),
            "bad params": post("/infer/tiny?image=ok", params="{nope"),
            "bad threshold": post("/infer/tiny_gradcam?image=ok", params='{"threshold": 9}'),
            "unknown model": post("/infer/nomodel?image=ok"),
            "unknown image": post("/infer/tiny?image=nothere"),
            "unsafe id": put("/datastore/image?image=..%2Fx", "file", scan),
            "missing query": requests.delete(f"{url}/datastore/image", timeout=10),
            "no label": requests.get(f"{url}/datastore/label?label=ok", timeout=10),
            "no image file": requests.get(f"{url}/datastore/image?image=nothere", timeout=10),
            "unknown strategy": requests.post(f"{url}/activelearning/nostrategy", timeout=10),
            "too few to train": requests.post(f"{url}/train/tiny", json={"epochs": 1}, timeout=10),
            "no training job": requests.get(f"{url}/train/", timeout=10),
        }
    for what, response in answers.items():
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
        body = response.text
        for secret in [str(root), str(tmp_path), ".work", "/uploads", "Traceback", 'File "']:
            assert secret not in body, f"{what}: {secret!r} in {body}"
        assert not re.search(r"upload-\w{8}", body), f"{what}: a temporary upload name in {body}"
    assert answers["upload text"].json()["detail"] == "notes.txt: a .txt file, not an image"
    assert answers["label bad nifti"].json()["detail"].startswith("reader label.nii.gz: the label is not a readable NIfTI image")
    assert "reader label.nii.gz" in answers["label bad nifti"].json()["detail"].split(":", 1)[1]  # nibabel's own mention, renamed
