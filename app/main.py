"""The app factory: ``create_app(settings)`` builds engine, stores and hooks, and mounts the routers
of every capability in ``app.composition.CAPABILITIES``.

No engine exists at import time, so each test builds its own app over its own database.
"""

from __future__ import annotations

import gc
import logging
from xml.sax.saxutils import escape

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app import routes as app_routes
from app.basic import BasicCache
from app.composition import CAPABILITIES, build_hooks, make_blob_store
from app.db import make_engine
from app.errors import DomainError
from app.http_security import SecurityHeaders, add_security_headers, require_declared_body_type
from app.settings import Settings
from app.web import routes as web_routes
from app.web.compression import CompressPages

log = logging.getLogger("asmfield")

OPENROSA_XML_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
    '<message nature="error">{message}</message></OpenRosaResponse>'
)


def wants_openrosa(request: Request) -> bool:
    """OpenRosa routes mark the request (``request.state.openrosa``); their errors are XML.

    Errors raised before that mark is set (the app-wide body type check) go by the route's ``openrosa`` tag.
    """
    if getattr(request.state, "openrosa", False):
        return True
    return "openrosa" in (getattr(request.scope.get("route"), "tags", None) or ())


def error_response(request: Request, status: int, code: str, message: str, details: dict | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    if wants_openrosa(request):
        response: Response = Response(
            OPENROSA_XML_ERROR.format(message=escape(message)), status_code=status, media_type="text/xml; charset=utf-8"
        )
        openrosa_headers = getattr(request.app.state, "openrosa_headers", None)
        if openrosa_headers:
            for name, value in openrosa_headers(request).items():
                response.headers[name] = value
    else:
        response = JSONResponse({"error": {"code": code, "message": message, "details": details or {}}}, status_code=status)
    for name, value in headers or []:
        response.headers.append(name, value)
    return response


#: Requests whose headers are larger than this (all names and values) get 431.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100


class HeaderLimits:
    """Refuse oversized or too many request headers with a clear 431 before any routing.

    uvicorn's own limits differ by HTTP parser; this one is the same everywhere (and in tests).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
                message = (f"request headers too large: {len(headers)} headers, {size} bytes "
                           f"(limits: {MAX_HEADER_COUNT} headers, {MAX_HEADER_BYTES} bytes)")
                body = {"error": {"code": "request.headers_too_large", "message": message, "details": {}}}
                await JSONResponse(body, status_code=431)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
            problems.append({"field": where, "message": err.get("msg", "invalid")})
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_response(request, 422, "request.invalid", message, {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        headers = list((exc.headers or {}).items())
        return error_response(request, exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), None, headers)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        # The database refused a value that got past validation (e.g. a NUL byte on PostgreSQL).
        log.info("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return error_response(request, 400, "request.invalid_value",
                              "a value in the request cannot be stored (out of range or forbidden characters)")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        return error_response(request, 400, "request.invalid_value", "a number in the request is out of range")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        response = error_response(request, 500, "internal_error", "internal error; it has been logged")
        add_security_headers(response.headers)  # this handler answers outside the SecurityHeaders middleware
        return response


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the asmfield ASGI app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    settings.secret  # noqa: B018 -- fail fast when there is no secret key
    app = FastAPI(
        title="asmfield",
        version="0.1.0",
        description="Offline-first field data for artisanal mining sites: OpenRosa, JSON sync, sites, cases.",
        # Swagger UI is served from our own static files by app.web.routes (no CDN, no inline script).
        docs_url=None,
        redoc_url=None,
        # Unsafe requests with a body must send a type the route declares: JSON unless it says otherwise.
        dependencies=[Depends(require_declared_body_type)],
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.blobs = make_blob_store(settings)  # the one blob store (app.blobs), BlobsDep hands it out
    app.state.basic_cache = BasicCache()  # verified Basic credentials, per app (app.basic)
    app.state.hooks = build_hooks()  # events, record policies, generated form media (app.events)
    install_error_handlers(app)
    app.add_middleware(CompressPages)  # gzip for pages, scripts and map data; never for sync or media
    app.add_middleware(HeaderLimits)
    app.add_middleware(SecurityHeaders)  # added last, so outermost: 431 answers get the headers too

    app.state.nav = [*web_routes.NAV, *(link for capability in CAPABILITIES for link in capability.nav)]

    app_routes.install(app)
    for capability in CAPABILITIES:
        if capability.install is not None:
            capability.install(app)
    for capability in CAPABILITIES:  # pages after every protocol route (see Capability.install_web)
        if capability.install_web is not None:
            capability.install_web(app)
    web_routes.install(app)
    return app


def asgi_app() -> FastAPI:
    """Entry point for ``uvicorn --factory app.main:asgi_app`` (settings from the environment)."""
    app = create_app()
    app.state.server_sends_date = True  # uvicorn adds Date itself; OpenRosa routes must not send a second one
    # Everything loaded so far (pandas, geopandas, SQLAlchemy's mappers: ~1.5 million objects) lives as
    # long as the process: out of the collector's sight, a full collection scans only what requests
    # made. Without this, every full collection stopped all requests for a few hundred ms (issue 13).
    gc.collect()
    gc.freeze()
    return app
