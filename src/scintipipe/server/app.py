"""The FastAPI application: MONAI Label's REST routes over scintipipe's pipeline.

Routes, parameters and answers follow MONAI Label (``monailabel/endpoints/*.py`` and
``monailabel/client/client.py``), so its client and its 3D Slicer and OHIF plugins work
unchanged. Inputs the gate refuses (:mod:`scintipipe.gate`) get 422 with the layer and the
reason, naming the file as the user sent it (never the server's temporary copy).
Endpoints are plain functions: FastAPI runs them in its thread pool, and
:class:`~scintipipe.server.models.ModelService` serialises the network calls.

Access control (:mod:`scintipipe.server.auth`) is middleware outside every route: with
tokens configured, each request but ``GET /health`` needs a bearer token of the route's
scope. CORS is off unless origins are given. No error answer names a server path: messages
name the user's file, and every error detail passes through :func:`hide_paths` as a last
guard.
"""

from __future__ import annotations

import json
import mimetypes
import os
import time
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Form, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel

from scintipipe import __version__
from scintipipe.errors import ScanError
from scintipipe.gate import GateRefused
from scintipipe.server.activelearning import ActiveLearning
from scintipipe.server.auth import ADMIN, BearerAuth, Tokens, required_scope
from scintipipe.server.datastore import FINAL_TAG, Datastore, check_id, stem_of
from scintipipe.server.errors import BadGateway, BadRequest, NotFound, PayloadTooLarge, TrainingBusy, hide_paths
from scintipipe.server.label_images import check_label_file, class_label_from
from scintipipe.server.models import CLASSIFICATION, InferResult, ModelService
from scintipipe.server.training import TrainingJobs
from scintipipe.server.uploads import CHUNK, BodySizeLimit, clear_uploads, parse_params, save_upload

DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MULTIPART_BOUNDARY_PREFIX = "scintipipe-"


class InferOutput(str, Enum):
    """What ``/infer`` answers: JSON, the label image, or both (multipart)."""

    image = "image"
    json = "json"
    all = "all"


class DatastoreOutput(str, Enum):
    """What ``GET /datastore/`` answers: counts, the full index, or the training list."""

    stats = "stats"
    all = "all"
    train = "train"


class ErrorAnswer(BaseModel):
    """Every error answer: ``{"detail": "..."}``, naming the user's file, never a server path."""

    detail: str


class Unprocessable(BaseModel):
    """422: a request FastAPI could not parse (``detail`` lists the problems), or a view the
    input gate refused (``detail`` says why; ``layer``, ``reason``, ``file``, ``skipped`` and
    ``overridable`` come as fields, see :func:`gate_refusal_answer`)."""

    detail: str | list[dict[str, Any]]
    layer: str | None = None
    reason: str | None = None
    file: str | None = None
    skipped: bool | None = None
    overridable: bool | None = None


ERROR_ANSWERS = {
    400: "Bad request: params not a JSON object, an unsafe id or tag, a malformed multipart or JSON body, an empty file, or a label that does not fit the image",
    404: "No such image, label, model, strategy or training job",
    409: "A training job is running (and cannot be stopped, or another cannot start)",
    413: "The request body or the uploaded file is over the upload limit (scintipipe serve --max-upload-mb)",
    415: "The uploaded file is not a usable scan (or label); the message names the file as sent",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route's error answers, and always its 422."""
    declared: dict[int | str, dict[str, Any]] = {status: {"model": ErrorAnswer, "description": ERROR_ANSWERS[status]} for status in statuses}
    declared[422] = {"model": Unprocessable, "description": "The request does not fit the route's parameters, or the input gate refused the scan"}
    return declared


FILE_ANSWER = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "description": "The stored file, with its own media type",
}
INFER_ANSWER = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"params": {"type": "object"}, "image": {"type": "string", "format": "binary"}}}
        },
        "application/gzip": {"schema": {"type": "string", "format": "binary"}},
    },
    "description": "JSON (classification models, output=json), the label image (output=image) or both as multipart/form-data",
}


def multipart_answer(params: dict[str, Any], label_file: Path) -> Response:
    """``params`` (JSON) and the label image as ``multipart/form-data``, as MONAI Label sends them."""
    boundary = MULTIPART_BOUNDARY_PREFIX + uuid.uuid4().hex
    body = bytearray()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\nContent-Type: application/json\r\n\r\n'.encode()
    body += json.dumps(params).encode() + b"\r\n"
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{label_file.name}"\r\nContent-Type: application/gzip\r\n\r\n'.encode()
    body += label_file.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Response(content=bytes(body), media_type=f"multipart/form-data; boundary={boundary}")


def file_answer(path: Path, download_name: str | None = None) -> StreamingResponse:
    """A stored file with its type and name, streamed from a handle opened now.

    The open handle keeps the content readable even if a concurrent request deletes or
    replaces the file before it is sent (a path-based ``FileResponse`` would fail then).

    Raises:
        NotFound: the file was removed since the index named it.
    """
    name = download_name or path.name
    try:
        stream = path.open("rb")
    except FileNotFoundError as exc:
        raise NotFound(f"{name} was removed from the datastore") from exc
    size = os.fstat(stream.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    media_type = "application/gzip" if path.name.endswith(".gz") else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    return StreamingResponse(
        chunks(), media_type=media_type, headers={"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'}
    )


def error(status: int, detail: str) -> JSONResponse:
    """A JSON error answer, FastAPI style: ``{"detail": ...}``."""
    return JSONResponse({"detail": detail}, status_code=status)


def message_of(exc: BaseException) -> str:
    """An exception's message without the quotes ``KeyError`` adds."""
    return str(exc.args[0]) if exc.args else str(exc)


def gate_refusal_answer(exc: GateRefused, hide: Any = str) -> JSONResponse:
    """422 for a view the input gate refused or skipped.

    ``detail`` names the file and says why; ``layer`` (``metadata``, ``content``, ``ood``
    or a plugin's layer), ``reason``, ``file`` (with ``#view`` for a view of a multi-view
    file), ``skipped`` (syringe, point-source and flood images) and ``overridable``
    (whether params ``{"accept_ood": true}`` would classify it) come as fields.
    """
    refusal = exc.refusal
    detail = f"{exc.source}: {refusal.reason}: not classified" if refusal.skip else str(exc)
    body = {
        "detail": hide(detail),
        "layer": refusal.layer,
        "reason": hide(refusal.reason),
        "file": hide(exc.source),
        "skipped": refusal.skip,
        "overridable": refusal.overridable,
    }
    return JSONResponse(body, status_code=422)


def copy_names(path: Path, name: str) -> dict[str, str]:
    """The ways a message may spell the server's copy ``path``, each mapped to the user's ``name``."""
    return {str(path): name, str(path.resolve()): name, path.name: name}


def sources_as_sent(params: dict[str, Any], path: Path, name: str) -> dict[str, Any]:
    """The answer with each view's ``source`` naming the file as sent, not the server's copy."""
    for view in params.get("views") or []:
        if isinstance(view.get("source"), str):
            view["source"] = hide_paths(view["source"], copy_names(path, name))
    return params


def as_sent(exc: ScanError, path: Path, name: str) -> ScanError:
    """``exc`` naming the file as the user sent it (``name``) instead of the server's copy (``path``)."""
    names = copy_names(path, name)
    source = hide_paths(exc.source, names)
    if isinstance(exc, GateRefused):
        renamed: ScanError = GateRefused(source, exc.refusal)
    else:
        renamed = type(exc)(source, hide_paths(exc.reason, names))
    return renamed


def with_bearer_security(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI schema, with each operation's 401/403.

    Swagger UI then shows an Authorize button, and schema-driven clients and fuzzers know
    which answers each route may give.
    """
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain_openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "scintipipe serve --token-file: 'read' or 'admin' tokens (docs/security.md)",
            }
        }
        schema["security"] = [{"bearer": []}]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                needed = required_scope(method, path)
                if needed is None:
                    operation["security"] = []
                    continue
                operation.setdefault("responses", {})["401"] = {"description": "No bearer token, or one not accepted"}
                if needed == ADMIN:
                    operation["responses"]["403"] = {"description": "The token is read-only; this route needs an admin token"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    service: ModelService,
    datastore: Datastore,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    name: str = "scintipipe",
    tokens: Tokens | None = None,
    cors_origins: tuple[str, ...] | list[str] = (),
) -> FastAPI:
    """Build the server application.

    Args:
        service: the served bundles.
        datastore: the images and labels folder (a
            :class:`~scintipipe.server.datastore_dicomweb.DicomwebDatastore` over a PACS is one too).
        max_upload_bytes: the largest request body accepted (413 above it).
        name: the app name in ``/info/``.
        tokens: the accepted bearer tokens; ``None`` or empty serves without access control
            (the caller checks that the address is loopback: :func:`~scintipipe.server.auth.check_bind`).
        cors_origins: origins a browser app (OHIF) may call from; none by default (CORS off).
    """
    app = FastAPI(
        title="scintipipe MONAI Label server",
        version=__version__,
        description="Thyroid scintigraphy classification, ROI segmentation and Grad-CAM regions over the MONAI Label REST API. Demonstration bundles are not for clinical use.",
    )
    tokens = tokens or Tokens()
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes + 64 * 1024)
    app.add_middleware(BearerAuth, tokens=tokens)  # outside the size cap: no token, no body read
    if cors_origins:  # outermost, so preflights need no token and refusals carry CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if tokens:
        with_bearer_security(app)
    learning = ActiveLearning(datastore, service)
    training = TrainingJobs(datastore, service)
    app.state.service, app.state.datastore, app.state.training = service, datastore, training
    uploads_dir = service.work_dir / "uploads"
    uploads_dir.mkdir(parents=True, exist_ok=True)
    clear_uploads(uploads_dir)  # what a killed server left mid-upload
    server_paths = {str(uploads_dir): "<upload>", str(service.work_dir): "<work>", str(datastore.root): "<datastore>"}

    def hide(text: str) -> str:
        return hide_paths(text, server_paths)

    # ---- errors ---------------------------------------------------------------------

    handlers = {NotFound: 404, BadRequest: 400, PayloadTooLarge: 413, ScanError: 415, TrainingBusy: 409, BadGateway: 502}
    for exception_class, status in handlers.items():

        async def handle(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return error(status, hide(message_of(exc)))

        app.add_exception_handler(exception_class, handle)

    async def handle_gate(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GateRefused)
        return gate_refusal_answer(exc, hide)

    app.add_exception_handler(GateRefused, handle_gate)  # more specific than ScanError's 415

    def known_classes() -> list[str]:
        return sorted({label for bundle in service.bundles.values() for label in bundle.labels})

    # ---- info -----------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", tags=["App"], summary="Liveness check: no token needed, no details")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info/", tags=["App"], summary="App info: labels, models, strategies, trainers, datastore")
    def info() -> dict[str, Any]:
        models = service.info()
        labels: list[str] = []
        for entry in models.values():
            bundle = entry.get("bundle")
            if isinstance(bundle, dict) and bundle.get("path"):  # a bundle trained here: its datastore-relative folder; else none
                bundle["path"] = datastore.relative(bundle["path"])
            for label in sorted(entry["labels"], key=entry["labels"].get):
                if label not in labels:
                    labels.append(label)
        return {
            "name": name,
            "description": "scintipipe: thyroid scintigraphy classification, ROI segmentation and Grad-CAM regions",
            "version": __version__,
            "labels": labels,
            "models": models,
            "trainers": training.info(),
            "strategies": learning.info(),
            "scoring": {},
            "train_stats": {},
            "datastore": datastore.status(),
        }

    # ---- infer ----------------------------------------------------------------------

    @app.post(
        "/infer/{model}",
        tags=["Infer"],
        summary="Run a model on a datastore image or an uploaded file",
        responses={200: INFER_ANSWER, **answers(400, 404, 413, 415)},
    )
    def infer(
        model: str,
        image: str = "",
        output: InferOutput | None = None,
        params: str = Form("{}"),
        file: UploadFile | None = File(None),
        label: UploadFile | None = File(None),
    ) -> Any:
        served = service.model(model)
        request_params = parse_params(params)
        if file is not None and file.filename:
            path, _ = save_upload(file, uploads_dir, max_upload_bytes)
            name = Path(file.filename).name
            try:
                result = service.infer(model, path, request_params, image_id=image or None)
            except ScanError as exc:
                raise as_sent(exc, path, name) from exc
            finally:
                path.unlink(missing_ok=True)
        elif image:
            check_id(image)
            name = datastore.image_info(image).get("original_name") or image
            path = datastore.snapshot_image(image, uploads_dir)  # a concurrent delete or replace cannot pull it away mid-read
            try:
                result = service.infer(model, path, request_params, image_id=image)
            except ScanError as exc:
                raise as_sent(exc, path, name) from exc
            finally:
                path.unlink(missing_ok=True)
        else:
            raise BadRequest("give an image id from the datastore (?image=ID) or upload a file (form field 'file')")
        sources_as_sent(result.params, path, name)
        return infer_answer(result, served.kind, output)

    def infer_answer(result: InferResult, kind: str, output: InferOutput | None) -> Any:
        label_file = result.label_file
        try:
            if kind == CLASSIFICATION and output == InferOutput.image:
                raise BadRequest("classification models answer JSON; ask a segmentation model (<bundle>_roi, <bundle>_gradcam) for a label image")
            if label_file is None or output == InferOutput.json:
                return result.params
            if output == InferOutput.image:
                return Response(
                    content=label_file.read_bytes(),
                    media_type="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{label_file.name}"'},
                )
            return multipart_answer(result.params, label_file)
        finally:
            if label_file is not None:
                label_file.unlink(missing_ok=True)

    # ---- datastore ------------------------------------------------------------------

    @app.get("/datastore/", tags=["Datastore"], summary="Datastore counts (stats), index (all) or labelled pairs (train)", responses=answers())
    def datastore_listing(output: DatastoreOutput | None = None) -> Any:
        if output == DatastoreOutput.all:
            return datastore.json()
        if output == DatastoreOutput.train:
            return datastore.datalist()
        return datastore.status()

    def add_image(image: str | None, params: str, file: UploadFile) -> dict[str, Any]:
        save_params = parse_params(params)
        image_id = check_id(image or stem_of(file.filename or ""))
        path, suffix = save_upload(file, uploads_dir, max_upload_bytes)
        try:
            try:
                scans = service.load(path)
            except ScanError as exc:
                raise as_sent(exc, path, Path(file.filename or "").name or image_id) from exc
            first = scans[0]["image"]
            described = {
                "views": [scan["image"].meta.get("view") for scan in scans],
                "rows": int(first.shape[-2]),
                "columns": int(first.shape[-1]),
                "modality": first.meta.get("modality"),
                "original_name": Path(file.filename or "").name,
            }
            extra = {key: value for key, value in save_params.items() if key != "client_id" and value is not None}
            datastore.add_image(image_id, path, suffix, {**extra, **described})
        finally:
            path.unlink(missing_ok=True)
        return {"image": image_id}

    @app.put("/datastore/", tags=["Datastore"], include_in_schema=False)
    def upload_image_legacy(image: str | None = None, params: str = Form("{}"), file: UploadFile = File(...)) -> dict[str, Any]:
        return add_image(image, params, file)

    @app.put(
        "/datastore/image", tags=["Datastore"], summary="Upload an image (checked to be a scan; 415 otherwise)", responses=answers(400, 413, 415)
    )
    def upload_image(image: str | None = None, params: str = Form("{}"), file: UploadFile = File(...)) -> dict[str, Any]:
        return add_image(image, params, file)

    @app.delete("/datastore/", tags=["Datastore"], include_in_schema=False)
    @app.delete("/datastore/image", tags=["Datastore"], summary="Remove an image and its labels", responses=answers(400, 404))
    def remove_image(id: str) -> dict[str, Any]:  # noqa: A002  (MONAI Label's query parameter)
        datastore.remove_image(check_id(id))
        return {}

    @app.head("/datastore/image", tags=["Datastore"], summary="Whether an image exists", responses=answers(400, 404))
    def image_exists(image: str) -> dict[str, Any]:
        datastore.image_path(check_id(image))
        return {}

    @app.get(
        "/datastore/image",
        tags=["Datastore"],
        summary="Download an image",
        response_class=StreamingResponse,
        responses={200: FILE_ANSWER, **answers(400, 404)},
    )
    def download_image(image: str) -> StreamingResponse:
        return file_answer(datastore.image_path(check_id(image)))

    @app.get("/datastore/image/info", tags=["Datastore"], summary="An image's info", responses=answers(400, 404))
    def image_info(image: str) -> dict[str, Any]:
        return datastore.image_info(check_id(image))

    @app.put("/datastore/image/info", tags=["Datastore"], summary="Merge info into an image's info", responses=answers(400, 404, 413))
    def update_image_info(image: str, info: str = Form("{}")) -> dict[str, Any]:
        return datastore.update_image_info(check_id(image), parse_params(info))

    @app.put(
        "/datastore/label",
        tags=["Datastore"],
        summary="Save a reader's label (NIfTI label image, or a class name as .json/.txt or params.label)",
        responses=answers(400, 404, 413, 415),
    )
    def save_label(image: str, tag: str = FINAL_TAG, params: str = Form("{}"), label: UploadFile = File(...)) -> dict[str, Any]:
        save_params = parse_params(params)
        datastore.image_path(check_id(image))
        tag = check_id(tag or FINAL_TAG, "label tag")
        path, suffix = save_upload(label, uploads_dir, max_upload_bytes)
        try:
            try:
                described = check_label_file(path, suffix)
            except ValueError as exc:  # nibabel's messages name the file: the server's copy
                name = Path(label.filename or "").name or "label"
                raise ScanError(name, hide_paths(str(exc), copy_names(path, name))) from exc
            if described["kind"] == "image":
                info = datastore.image_info(image)
                rows, columns = info.get("rows"), info.get("columns")
                got = sorted(size for size in described["shape"] if size != 1)
                if rows is not None and columns is not None and got != sorted((rows, columns)):
                    raise BadRequest(f"the label image is {described['shape']} but image {image!r} is {rows} x {columns} pixels")
            class_label = class_label_from(save_params, described, known_classes())
            if class_label is not None and class_label not in known_classes():
                raise BadRequest(f"unknown class {class_label!r}; the served bundles' classes are: {', '.join(known_classes())}")
            extra = {key: value for key, value in save_params.items() if key != "client_id" and value is not None}
            label_info = {**extra, **described, "class_label": class_label}
            label_id = datastore.save_label(image, path, suffix, tag, label_info)
        finally:
            path.unlink(missing_ok=True)
        return {"image": image, "label": label_id, "tag": tag, "class_label": class_label}

    @app.delete("/datastore/label", tags=["Datastore"], summary="Remove a label", responses=answers(400, 404))
    def remove_label(id: str, tag: str = FINAL_TAG) -> dict[str, Any]:  # noqa: A002  (MONAI Label's query parameter)
        datastore.remove_label(check_id(id), tag)
        return {}

    @app.head("/datastore/label", tags=["Datastore"], summary="Whether an image has a label", responses=answers(400, 404))
    def label_exists(image: str, tag: str = FINAL_TAG) -> dict[str, Any]:
        datastore.label_path(check_id(image), tag)
        return {}

    @app.get(
        "/datastore/label",
        tags=["Datastore"],
        summary="Download a label",
        response_class=StreamingResponse,
        responses={200: FILE_ANSWER, **answers(400, 404)},
    )
    def download_label(label: str, tag: str = FINAL_TAG) -> StreamingResponse:
        return file_answer(datastore.label_path(check_id(label), tag))

    @app.get("/datastore/label/info", tags=["Datastore"], summary="A label's info", responses=answers(400, 404))
    def label_info(label: str, tag: str = FINAL_TAG) -> dict[str, Any]:
        return datastore.label_info(check_id(label), tag)

    # ---- active learning ------------------------------------------------------------

    @app.post(
        "/activelearning/{strategy}",
        tags=["ActiveLearning"],
        summary="The next unlabelled image (random, least_confidence)",
        responses=answers(400, 404, 413),
    )
    def next_sample(strategy: str, params: dict | None = Body(None)) -> dict[str, Any]:
        params = params or {}
        result = learning.next_sample(strategy, params)
        if result:
            info = datastore.image_info(result["id"])
            chosen = dict(info.get("strategy") or {})
            chosen[result["strategy"]] = {"client_id": params.get("client_id"), "ts": int(time.time())}
            datastore.update_image_info(result["id"], {"strategy": chosen})
        return result

    # ---- training -------------------------------------------------------------------

    @app.get("/train/", tags=["Train"], summary="Status of the latest (or every) training job", responses=answers(404))
    def train_status(all: bool = False, check_if_running: bool = False) -> Any:  # noqa: A002  (MONAI Label's query parameter)
        if check_if_running:
            if training.running():
                return {"running": True}
            return error(404, "no training job is running")
        status = training.status(all)
        if status is None:
            return error(404, "no training job has run")
        return status

    @app.post(
        "/train/{model}",
        tags=["Train"],
        summary="Retrain a bundle on the datastore's labelled images (background job)",
        responses=answers(400, 404, 409, 413),
    )
    def train_model(model: str, params: dict | None = Body(None)) -> dict[str, Any]:
        return training.start(model, params or {})

    @app.delete(
        "/train/",
        tags=["Train"],
        summary="Stopping a job is not supported: 409 while one runs, 404 otherwise",
        response_model=ErrorAnswer,
        responses=answers(404, 409),
    )
    def train_stop() -> JSONResponse:
        if training.running():
            return error(409, "a running training job cannot be stopped; it ends on its own (see GET /train/)")
        return error(404, "no training job is running")

    return app
