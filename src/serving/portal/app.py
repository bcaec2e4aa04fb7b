"""The web portal: two pages (protect, detect) and a small REST API over the serving SDK.

``create_app(settings)`` builds the FastAPI application; ``python -m src.serving.portal`` serves it with
uvicorn. Each inference request is admitted to a bounded worker pool before its upload is read (503 with
``Retry-After`` when it is full), reads its upload into a scratch folder of its own (removed when the work has
ended), and answers ``{"error": message}`` with a status that names the problem when it cannot be served.
See ``docs/serving.md`` ("Web portal").
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.inference.methods import ServingError
from src.serving.catalog import Catalog
from src.serving.portal.errors import PortalError, status_for
from src.serving.portal.jobs import Job, Output, parse_regions, run_detect, run_protect
from src.serving.portal.pool import PoolFullError, WorkerPool
from src.serving.portal.security import SecurityHeaders, check_request, install_log_redaction
from src.serving.portal.settings import PortalSettings, check_exposure
from src.serving.portal.uploads import Scratch, inspect_media, read_upload

__all__ = ["Portal", "create_app"]

log = logging.getLogger("src.serving.portal")
HERE = Path(__file__).resolve().parent
FACE_MODES = ("detect", "whole")
MAX_PASSWORD = 1024
#: the record header of a file answer is kept small (clients limit header sizes)
MAX_RECORD_HEADER = 8 * 1024
RECORD_HEADER = "X-Privacy-Record"
PROTECT_FIELDS = ("method", "password", "faces", "regions")
DETECT_FIELDS = ("method", "faces")


class ErrorBody(BaseModel):
    """Every refusal: one message naming the problem."""

    error: str


class Portal:
    """The application's state: settings, catalog, worker pool."""

    def __init__(self, settings: PortalSettings, catalog: Catalog, pool: WorkerPool) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool


def _portal(request: Request) -> Portal:
    return request.app.state.portal


_bearer = HTTPBearer(auto_error=False, description="an API token, when the server is configured with tokens")


async def _guard(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    check_request(request, credentials, _portal(request).settings.tokens)


def _form_body(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI description of a multipart body: the ``file`` part and the text ``fields``."""
    properties = {
        "file": {"type": "string", "format": "binary", "description": "a photo (JPEG/PNG/WebP/BMP) or video"},
        **fields,
    }
    schema = {"type": "object", "required": ["file", "method"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


_METHOD_FIELD = {"type": "string", "description": "a method id from GET /api/methods"}
_FACES_FIELD = {
    "type": "string",
    "enum": list(FACE_MODES),
    "default": "detect",
    "description": "detect: find every face; whole: the whole image is one aligned face",
}
_PROTECT_BODY = _form_body(
    {
        "method": _METHOD_FIELD,
        "password": {"type": "string", "format": "password", "description": "for methods keyed by one"},
        "faces": _FACES_FIELD,
        "regions": {
            "type": "string",
            "description": "JSON list of face squares (the 'faces' of a protect response), to recover "
            "exactly "
            "the protected squares (images only)",
        },
    }
)
_DETECT_BODY = _form_body({"method": _METHOD_FIELD, "faces": _FACES_FIELD})
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "bad request (missing or unexpected password, password in the URL, not reversible, ...)",
        401: "an API token is required or was not accepted",
        404: "unknown method",
        413: "the upload is larger than the byte, pixel or frame limit",
        415: "not a multipart/form-data body",
        422: "not an image or video, corrupt, or no face found",
        503: "every worker is busy and the queue is full: retry after Retry-After seconds",
    }.items()
}
_FILE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON (the record with the result as a data: URL), or with ?download=1 or an "
        f"Accept: image/* / video/* header the file itself with the record in the {RECORD_HEADER} header",
        "content": {"application/json": {}, "image/png": {}, "image/jpeg": {}, "video/mp4": {}},
    },
    **_ERRORS,
}


def _wants_file(request: Request, download: bool, media_type: str) -> bool:
    if download:
        return True
    accept = request.headers.get("accept", "").lower()
    if "application/json" in accept:
        return False
    return media_type in accept or f"{media_type.split('/')[0]}/*" in accept


def _file_answer(request: Request, output: Output, download: bool) -> Response:
    assert output.data is not None
    if _wants_file(request, download, output.media_type):
        record = json.dumps(output.record, ensure_ascii=True, separators=(",", ":"))
        if len(record) > MAX_RECORD_HEADER:
            short = {k: v for k, v in output.record.items() if k not in ("faces", "frames_without_face")}
            record = json.dumps({**short, "truncated": True}, ensure_ascii=True, separators=(",", ":"))
        headers = {
            "Content-Disposition": f'attachment; filename="{output.filename}"',
            RECORD_HEADER: record,
        }
        return Response(output.data, media_type=output.media_type, headers=headers)
    encoded = base64.b64encode(output.data).decode("ascii")
    return JSONResponse(
        {
            **output.record,
            "media_type": output.media_type,
            "filename": output.filename,
            "bytes": len(output.data),
            "data_url": f"data:{output.media_type};base64,{encoded}",
        }
    )


def _face_mode(value: str | None) -> str:
    mode = (value or "detect").strip().lower()
    if mode not in FACE_MODES:
        raise PortalError(422, f"faces must be one of {', '.join(FACE_MODES)}, got {mode[:20]!r}")
    return mode


async def _serve(
    request: Request, action: str, fields: tuple[str, ...], work: Callable[..., Output]
) -> Output:
    """Admit the request, read its upload into a scratch folder, run ``work`` on a pool thread."""
    portal = _portal(request)
    settings = portal.settings
    try:
        ticket = portal.pool.admit()
    except PoolFullError as exc:
        log.warning("busy: %s refused (%s)", action, exc)
        raise PortalError(
            503,
            f"the server is busy ({portal.pool.workers} requests running, {portal.pool.queue} waiting): "
            f"retry in {settings.retry_after_s} s",
            {"Retry-After": str(settings.retry_after_s)},
        ) from None
    try:
        upload = await read_upload(request, settings.limits, fields)
        method = (upload.fields.get("method") or "").strip()
        if not method:
            raise PortalError(422, "no method: choose one (form field 'method', ids from GET /api/methods)")
        entry = portal.catalog.entry(method)
        wanted = "detect" if action == "detect" else "protect"
        if entry.kind != wanted:
            other = "/api/detect" if entry.kind == "detect" else "/api/protect or /api/recover"
            raise PortalError(400, f"method '{method}' is a {entry.kind} method: use {other}")
        password = upload.fields.get("password") or None
        if password is not None and len(password) > MAX_PASSWORD:
            raise PortalError(400, f"the password is longer than {MAX_PASSWORD} characters")
        faces = _face_mode(upload.fields.get("faces"))
        regions = parse_regions(upload.fields["regions"]) if upload.fields.get("regions") else None
        scratch = Scratch(settings.temp_dir)
        ticket.on_release(scratch.remove)
        path = scratch.write("upload", upload.data)
        name, stem = upload.name, upload.stem
        del upload  # the bytes now live only in the scratch folder
        media = inspect_media(path, name, settings.limits)
        job = Job(method, action, path, name, media, scratch.path, faces, password, regions, stem)
        started = time.perf_counter()
        output = await portal.pool.run(ticket, lambda: work(portal.catalog, job))
        log.info(
            "%s %s (%s, %s) in %.2f s", action, method, media.kind, job.faces, time.perf_counter() - started
        )
        return output
    finally:
        if not ticket.submitted:
            ticket.release()


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """The portal application for ``settings`` (refused on a non-loopback host without tokens)."""
    settings = settings or PortalSettings()
    check_exposure(settings)
    catalog = settings.build_catalog()
    pool = WorkerPool(settings.workers, settings.queue)
    portal = Portal(settings, catalog, pool)
    install_log_redaction()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    # the docs pages' Swagger UI / ReDoc scripts come from the installed package, not from a CDN: the portal
    # works on machines without internet access
    app = FastAPIOffline(
        title="ProFace Lab portal",
        version="1",
        description="Face privacy (protect / recover) and deepfake detection on photos and short videos. "
        "Uploads are multipart forms; passwords only in the form body; with tokens configured every /api "
        "call needs 'Authorization: Bearer <token>'.",
        lifespan=lifespan,
    )
    app.state.portal = portal
    _add_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=[RECORD_HEADER, "Retry-After"],
        )
    app.include_router(_api_router())
    _add_pages(app, settings)
    return app


def _api_router() -> APIRouter:
    api = APIRouter(prefix="/api", dependencies=[Depends(_guard)], responses=_ERRORS)

    @api.get("/health", summary="Liveness, method count and worker-pool load")
    async def health(request: Request) -> dict[str, Any]:
        portal = _portal(request)
        loaded = sum(portal.catalog.is_loaded(entry.id) for entry in portal.catalog)
        return {"status": "ok", "methods": len(portal.catalog), "loaded": loaded, "pool": portal.pool.stats()}

    @api.get("/methods", summary="The methods this server offers, and its upload limits")
    async def methods(request: Request) -> dict[str, Any]:
        portal = _portal(request)
        limits = portal.settings.limits
        return {
            "methods": [{**entry.to_dict(), **portal.catalog.traits(entry.id)} for entry in portal.catalog],
            "limits": {
                "max_bytes": limits.max_bytes,
                "max_pixels": limits.max_pixels,
                "max_frames": limits.max_frames,
            },
        }

    @api.get("/methods/{method_id}", summary="One method, loaded (on first use) so its traits are known")
    async def method(request: Request, method_id: str) -> dict[str, Any]:
        portal = _portal(request)
        portal.catalog.entry(method_id)
        if not portal.catalog.is_loaded(method_id):
            try:
                ticket = portal.pool.admit()
            except PoolFullError:
                retry = str(portal.settings.retry_after_s)
                raise PortalError(503, "the server is busy: retry later", {"Retry-After": retry}) from None
            await portal.pool.run(ticket, lambda: portal.catalog.load(method_id))
        return portal.catalog.describe(method_id)

    @api.post(
        "/protect",
        summary="Protect every face of a photo or video",
        openapi_extra=_PROTECT_BODY,
        responses=_FILE_ANSWER,
        response_class=Response,
    )
    async def protect(request: Request, download: bool = False) -> Response:
        output = await _serve(request, "protect", PROTECT_FIELDS, run_protect)
        return _file_answer(request, output, download)

    @api.post(
        "/recover",
        summary="Recover the faces of a protected photo or video (reversible methods, same password)",
        openapi_extra=_PROTECT_BODY,
        responses=_FILE_ANSWER,
        response_class=Response,
    )
    async def recover(request: Request, download: bool = False) -> Response:
        output = await _serve(request, "recover", PROTECT_FIELDS, run_protect)
        return _file_answer(request, output, download)

    @api.post(
        "/detect",
        summary="Fake probability of every face of a photo, or of every frame of a video",
        openapi_extra=_DETECT_BODY,
    )
    async def detect(request: Request) -> dict[str, Any]:
        output = await _serve(request, "detect", DETECT_FIELDS, run_detect)
        return output.record

    return api


def _add_pages(app: FastAPI, settings: PortalSettings) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    context = {"limits": settings.limits, "tokens": bool(settings.tokens)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def protect_page(request: Request) -> Response:
        return templates.TemplateResponse(request, "protect.html", {**context, "page": "protect"})

    @app.get("/detect", response_class=HTMLResponse, include_in_schema=False)
    async def detect_page(request: Request) -> Response:
        return templates.TemplateResponse(request, "detect.html", {**context, "page": "detect"})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PortalError)
    async def portal_error(_: Request, exc: PortalError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, exc: ServingError) -> JSONResponse:
        return _error(status_for(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()
        )
        return _error(422, problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s while serving a request", type(exc).__name__, exc_info=exc)
        return _error(500, "internal error (the server log has the details)")
