"""schemathesis over every operation of the server's own OpenAPI schema (issue 16).

The app runs in-process (ASGI, no socket) over the shape-only tiny bundle, with a
datastore that already holds a labelled and an unlabelled image, and an admin token sent
with every generated request. Each operation gets examples drawn from its schema
(``SCINTIPIPE_FUZZ_EXAMPLES`` per operation, 25 by default; derandomized, so a CI run is
repeatable) and every answer must:

- not be a 5xx (``not_a_server_error``);
- have a status the schema declares for the operation (``status_code_conformance``);
- match the declared response schema (``response_schema_conformance``);
- name no server path, no ``.work`` folder and no traceback (``no_server_internals``).

A benchmark run with more examples: ``SCINTIPIPE_FUZZ_EXAMPLES=500 python -m pytest -q
tests/test_server_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the test extra)")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.python.asgi import get_client  # noqa: E402  (schemathesis's own ASGI client: starlette's needs httpx)
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402

from dicom_factory import thyroid_pattern, write_nm_dicom  # noqa: E402
from scintipipe.bundle import Bundle  # noqa: E402
from scintipipe.plugins import make_plugin_manager  # noqa: E402
from scintipipe.server.auth import Tokens  # noqa: E402
from scintipipe.server.run import build_app  # noqa: E402

ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = int(os.environ.get("SCINTIPIPE_FUZZ_EXAMPLES", "25"))
FORBIDDEN = ("Traceback", ".work", 'File "')  # plus the server's own folders, added by the fixture
SERVER_PATHS: list[str] = []
OPERATIONS = [
    "GET /health",
    "GET /info/",
    "POST /infer/{model}",
    "GET /datastore/",
    "PUT /datastore/image",
    "DELETE /datastore/image",
    "HEAD /datastore/image",
    "GET /datastore/image",
    "GET /datastore/image/info",
    "PUT /datastore/image/info",
    "PUT /datastore/label",
    "DELETE /datastore/label",
    "HEAD /datastore/label",
    "GET /datastore/label",
    "GET /datastore/label/info",
    "POST /activelearning/{strategy}",
    "GET /train/",
    "DELETE /train/",
    "POST /train/{model}",
]


def no_server_internals(ctx, response, case) -> None:
    """No answer names a server folder or the work folder, or carries a traceback."""
    body = response.content.decode("utf-8", errors="replace")
    headers = " ".join(f"{key}: {value}" for key, value in response.headers.items())
    for needle in (*FORBIDDEN, *SERVER_PATHS):
        for where, text in (("body", body), ("headers", headers)):
            if needle in text:
                raise AssertionError(f"{case.operation.label} answered {response.status_code} with {needle!r} in its {where}: {text[:300]!r}")


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, no_server_internals]


@pytest.fixture(scope="module")
def fuzzed_app(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app over a fresh datastore, an admin token needed; :func:`reseed` fills it."""
    root = tmp_path_factory.mktemp("fuzz")
    datastore = root / "datastore"
    app = build_app(
        make_plugin_manager(load_entry_points=False),
        {"tiny": Bundle(tiny_bundle, name="tiny")},
        datastore,
        max_upload_bytes=1024 * 1024,
        tokens=Tokens.from_options(token=ADMIN_TOKEN),
    )
    SERVER_PATHS[:] = sorted({str(path) for folder in (datastore, root, tiny_bundle) for path in (folder, folder.resolve())}, key=len, reverse=True)
    app.state.fuzz_scans = [
        write_nm_dicom(root / f"scan{index}.dcm", thyroid_pattern(64, 64, peak=60 + 40 * index, seed=index)) for index in range(2)
    ]
    return app


def reseed(app) -> None:
    """Put back ``case0`` (with a final class label) and ``case1``, so ids can hit something."""
    store = app.state.datastore
    with get_client(app) as client:
        for index, scan in enumerate(app.state.fuzz_scans):
            if not store.has_image(f"case{index}"):
                with scan.open("rb") as stream:
                    assert (
                        client.put(
                            "/datastore/image", params={"image": f"case{index}"}, files={"file": (scan.name, stream)}, headers=AUTH
                        ).status_code
                        == 200
                    )
        if "case0" not in store.labelled_ids():
            label = {"label": ("label.json", io.BytesIO(json.dumps({"label": "heterogeneous"}).encode()))}
            assert client.put("/datastore/label", params={"image": "case0"}, files=label, headers=AUTH).status_code == 200


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app, headers=AUTH)


def test_every_operation_of_the_schema_is_fuzzed(api_schema) -> None:
    """A new route must join OPERATIONS (by name, as datasette checks its hooks)."""
    served = sorted(f"{operation.method.upper()} {operation.path}" for operation in (result.ok() for result in api_schema.get_all_operations()))
    assert served == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_answers_within_its_schema(api_schema, fuzzed_app, label: str, mode: GenerationMode) -> None:
    """Drawn requests, half of them aimed at the stored images (``case0``, ``case1``)."""
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    reseed(fuzzed_app)
    strategies = [operation.as_strategy(generation_mode=mode)]
    for name in ("image", "id", "label"):
        if mode == GenerationMode.POSITIVE and name in [parameter.name for parameter in operation.query]:
            strategies.append(operation.as_strategy(generation_mode=mode).map(lambda case, name=name: aimed(case, name)))

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=st.one_of(strategies))
    def fuzz(case) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    try:
        fuzz()
    except Unsatisfiable:
        if mode == GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            pytest.skip("no parameter or body to make invalid")
        raise


def aimed(case, name: str):
    """``case`` naming a stored image in query parameter ``name``."""
    case.query = {**(case.query or {}), name: "case0" if len(str(case.query)) % 2 else "case1"}
    return case
