"""OpenRosa routes for ODK Collect, KoboCollect and Enketo (thin: parse, authorise, call the service).

Every route exists twice: at ``/...`` (Basic or Digest credentials) and at
``/key/{device_token}/...`` (a tablet's token in the path, as ODK Central's app users). Errors
render as an OpenRosaResponse (``request.state.openrosa``) and carry the OpenRosa headers.

``X-OpenRosa-Version``: a request that sends it must send ``1.0`` (else 400). Unlike Central we
accept requests without it, so curl and browsers can reach the endpoints; Collect and Enketo
always send it.

``POST /submission`` streams the multipart body to temporary files (never whole in memory):
Content-Length above ``max_submission_bytes`` is refused with 413 before reading, as is any part
above ``max_attachment_bytes``; a truncated body is a 400.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth import OpenRosaActor, openrosa_actor
from app.db import session_scope
from app.deps import BlobsDep, HooksDep, SessionDep, SettingsDep
from app.errors import DomainError
from app.events import Hooks
from app.http_security import MULTIPART, check_body_type, takes
from app.identity import Actor
from app.settings import Settings
from forms.errors import FormForbidden, FormMediaMissing, FormMediaNotFound
from forms.models import Form, FormMedia, FormState, FormVersion
from sync import form_lookup, ingest, media, openrosa, rights
from sync.api_routes import router as api_router
from sync.errors import (
    MediaTooLarge,
    OpenrosaBadVersion,
    SubmissionBadLength,
    SubmissionFieldTooLong,
    SubmissionMissingXml,
    SubmissionMultipartMalformed,
    SubmissionMultipleXml,
    SubmissionNotMultipart,
    SubmissionTooLarge,
    SubmissionTooManyParts,
    SubmissionTruncated,
    SubmissionXmlTooLarge,
)
from sync.media import IncomingFile

XML_PART = "xml_submission_file"
#: The instance XML is parsed in memory; bigger XML is refused (a 10 MB instance is already absurd).
MAX_XML_BYTES = 10_000_000
MAX_PARTS = 1000
MAX_FIELD_BYTES = 10_000
#: ``deviceID`` (Collect's ``collect:…`` install id) longer than this is refused.
MAX_DEVICE_ID = 200


async def _openrosa_request(request: Request) -> None:
    """Mark the request as OpenRosa (errors become XML) and check its protocol version (``async``: a
    plain check, no hop to the thread pool)."""
    request.state.openrosa = True
    version = request.headers.get("x-openrosa-version")
    if version is not None and version.strip() != openrosa.OPENROSA_VERSION:
        raise OpenrosaBadVersion(f"X-OpenRosa-Version must be {openrosa.OPENROSA_VERSION}, got {version[:20]!r}")


router = APIRouter(dependencies=[Depends(_openrosa_request)], tags=["openrosa"])


def _xml_answer(description: str, *, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route answering OpenRosa XML (errors are OpenRosaResponses too)."""
    return {status: {"content": {openrosa.XML_MEDIA_TYPE.split(";")[0]: {}}, "description": description}}


def _headers(request: Request) -> dict[str, str]:
    """OpenRosa headers; ``Date`` is left to the server when it sends one itself (uvicorn)."""
    values = openrosa.headers(request.app.state.settings.max_submission_bytes)
    if getattr(request.app.state, "server_sends_date", False):
        values.pop("Date")
    return values


def _xml(request: Request, body: bytes, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=openrosa.XML_MEDIA_TYPE,
                    headers={**_headers(request), **(extra or {})})


def _base(request: Request, settings: Settings) -> str:
    """Absolute URL prefix for links, keeping ``/key/{token}`` when the request used it."""
    base = (settings.base_url or str(request.base_url)).rstrip("/")
    token = request.path_params.get("device_token")
    return f"{base}/key/{quote(token, safe='')}" if token else base


def _visible_form(session, actor: Actor, xml_form_id: str) -> Form:  # noqa: ANN001
    form = form_lookup.get_form(session, xml_form_id)
    if form.id not in {f.id for f in rights.visible_forms(session, actor)}:
        raise FormForbidden(f"{actor.user.username} ({actor.role}) may not download form {xml_form_id!r}")
    return form


# -- form discovery and download -----------------------------------------------------------


@router.get("/formList", response_class=Response, responses=_xml_answer("The OpenRosa form list (xforms)"))
def form_list(request: Request, actor: OpenRosaActor, session: SessionDep, settings: SettingsDep) -> Response:
    """OpenRosa form list: the published version of every open form the caller may use."""
    base = _base(request, settings)
    entries = []
    for form in rights.visible_forms(session, actor):
        if form.state == FormState.closed or form.published_version_id is None:
            continue
        version = session.get(FormVersion, form.published_version_id)
        if version is None:
            continue
        url = f"{base}/forms/{quote(form.xml_form_id, safe='')}"
        entries.append(openrosa.FormListEntry(
            form_id=form.xml_form_id, name=version.title or form.title, version=version.version, md5=version.md5,
            download_url=f"{url}.xml", manifest_url=f"{url}/manifest" if version.media_names else None))
    return _xml(request, openrosa.form_list(entries))


@router.get("/forms/{xml_form_id}.xml", response_class=Response, responses=_xml_answer("The XForm"))
def form_xml(request: Request, xml_form_id: str, actor: OpenRosaActor, session: SessionDep,
             version: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """The XForm of the published version (``?version=`` for another one)."""
    form = _visible_form(session, actor, xml_form_id)
    row = form_lookup.get_version(session, form, version)
    return _xml(request, row.xform_xml.encode("utf-8"), extra={"ETag": f'"{row.md5}"'})


def _media_files(session: Session, hooks: Hooks, actor: Actor, form: Form, version: FormVersion) -> dict[str, tuple]:
    """filename -> ("stored", FormMedia) | ("dynamic", (content, media type)) for this caller."""
    files: dict[str, tuple] = {}
    for row in session.exec(select(FormMedia).where(FormMedia.form_version_id == version.id)
                            .order_by(FormMedia.filename)):
        files[row.filename] = ("stored", row)
    for name, content in hooks.per_caller_media(session, actor=actor, form=form, version=version).items():
        files[name] = ("dynamic", content)
    return files


@router.get("/forms/{xml_form_id}/manifest", response_class=Response,
            responses=_xml_answer("The OpenRosa manifest of the form's media files"))
def form_manifest(request: Request, xml_form_id: str, actor: OpenRosaActor, session: SessionDep,
                  settings: SettingsDep, hooks: HooksDep, version: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """The media files of the form version, with md5 hashes (files not held are omitted)."""
    form = _visible_form(session, actor, xml_form_id)
    row = form_lookup.get_version(session, form, version)
    url = f"{_base(request, settings)}/forms/{quote(form.xml_form_id, safe='')}/attachments/"
    suffix = f"?version={quote(row.version, safe='')}" if version is not None else ""
    files = []
    for name, (kind, value) in _media_files(session, hooks, actor, form, row).items():
        md5 = value.md5 if kind == "stored" else hashlib.md5(value[0]).hexdigest()  # noqa: S324
        files.append(openrosa.ManifestFile(filename=name, md5=md5, download_url=f"{url}{quote(name, safe='')}{suffix}"))
    return _xml(request, openrosa.manifest(files))


@router.get("/forms/{xml_form_id}/attachments/{filename}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The media file"}})
def form_attachment(request: Request, xml_form_id: str, filename: str, actor: OpenRosaActor, session: SessionDep,
                    blobs: BlobsDep, hooks: HooksDep, version: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """One media file of the form version (served like every media file: ``sync.media.served``)."""
    form = _visible_form(session, actor, xml_form_id)
    row = form_lookup.get_version(session, form, version)
    found = _media_files(session, hooks, actor, form, row).get(filename)
    if found is None:
        raise FormMediaNotFound(f"form {xml_form_id!r} has no media file {filename!r}")
    kind, value = found
    if kind == "dynamic":
        content, stored_type = value
        media_type, safety = media.served(content, filename=filename, stored_type=stored_type)
        return Response(content, media_type=media_type,
                        headers={**_headers(request), **safety,
                                 "ETag": f'"{hashlib.md5(content).hexdigest()}"'})  # noqa: S324
    if not blobs.exists(value.sha256):
        raise FormMediaMissing(f"the file {filename!r} is missing from the media store")
    media_type, safety = media.served(blobs.local_path(value.sha256), filename=filename, stored_type=value.media_type)
    return blobs.response(value.sha256, media_type=media_type,
                          headers={**_headers(request), **safety, "ETag": f'"{value.md5}"'})


# -- submissions ---------------------------------------------------------------------------


@router.head("/submission", status_code=204)  # one route per method: each gets its own OpenAPI operation id
@router.get("/submission", status_code=204)
def submission_preflight(request: Request, actor: OpenRosaActor) -> Response:
    """Preflight: 204 with the size limit (authenticates, so Collect asks for credentials early)."""
    return Response(status_code=204, headers=_headers(request))


@router.post("/submission", status_code=201, openapi_extra=takes(MULTIPART), response_class=Response,
             responses=_xml_answer("An OpenRosaResponse", status=201))
async def submission(request: Request, device_id: Annotated[str | None, Query(alias="deviceID", max_length=MAX_DEVICE_ID)] = None
                     ) -> Response:
    """Receive one submission (instance XML + attachments); 201 also for an identical resend.

    This route describes the upload in the OpenAPI document; requests are answered by the same code
    through ``UploadLane``, ahead of FastAPI's routing (see ``install``).

    Credentials as on every OpenRosa route (device token in the path, Basic, Digest, Bearer). A body
    of at most ``SMALL_BODY`` bytes (a Content-Length saying so: nearly every tablet upload) is read on
    the event loop, then authentication, multipart parsing, the ingest and the commit run in one trip
    to the thread pool (issue 13: each trip costs more CPU than the ingest of a small submission
    saves). A bigger or chunked body is authenticated first (its own short transaction), then streamed
    to temporary files, then ingested."""
    return await _receive_upload(request, device_id)


async def _fast_submission(request: Request) -> Response:
    """``POST /submission`` for ``UploadLane``: the same checks as the app's and the route's dependencies
    and its parameter, by hand."""
    await _openrosa_request(request)
    check_body_type(request, (MULTIPART,))
    device_id = request.query_params.get("deviceID")
    if device_id is not None and len(device_id) > MAX_DEVICE_ID:
        raise RequestValidationError([{"type": "string_too_long", "loc": ("query", "deviceID"),
                                       "msg": f"String should have at most {MAX_DEVICE_ID} characters",
                                       "input": device_id[:50], "ctx": {"max_length": MAX_DEVICE_ID}}])
    return await _receive_upload(request, device_id)


async def _receive_upload(request: Request, device_id: str | None) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    declared = _declared_length(request, settings)
    collector = _Collector(settings, state.blobs.tmp)
    try:
        if declared is not None and declared <= SMALL_BODY:
            body = await _read_small(request, declared)
            result = await to_thread.run_sync(
                functools.partial(_receive, request, collector, body=body, actor=None, xml=None, files=None,
                                  device_id=device_id), limiter=_upload_limiter(state))
        else:
            actor = await run_in_threadpool(_authenticate, request)
            xml, files = await _read_multipart(request, settings, collector)
            result = await run_in_threadpool(_receive, request, collector, body=None, actor=actor, xml=xml,
                                             files=files, device_id=device_id)
    finally:
        collector.close()
        if collector.workdir is not None:
            await run_in_threadpool(_remove_tree, collector.workdir)
    if result.missing:
        message = (f"submission received; still waiting for {len(result.missing)} attachment(s): "
                   f"{', '.join(result.missing[:10])}")
    elif result.status == "duplicate":
        message = "this submission was already received; nothing changed"
    else:
        message = "full submission upload was successful!"
    return _xml(request, openrosa.response(message), status=201)


def _upload_limiter(state: Any) -> CapacityLimiter:
    """At most ``Settings.upload_threads`` small uploads in worker threads at once, per app; the others
    wait in arrival order (issue 13: with 32 at once in 32 threads, the GIL and the connection pool
    went to whoever grabbed them first, and the slowest upload took seconds)."""
    limiter = getattr(state, "upload_limiter", None)
    if limiter is None:
        limiter = state.upload_limiter = CapacityLimiter(state.settings.upload_threads)
    return limiter


#: Bodies up to this size are read whole into memory before any work (see ``submission``).
SMALL_BODY = 256 * 1024


def _authenticate(request: Request) -> Actor:
    """The caller of a big upload, checked before its body is read (a transaction of its own)."""
    with session_scope(request.app.state.engine) as session:
        return openrosa_actor(request, session)


def _receive(request: Request, collector: _Collector, *, body: bytes | None, actor: Actor | None,
             xml: bytes | None, files: list[IncomingFile] | None, device_id: str | None) -> ingest.ReceiveResult:
    """Authenticate (unless done), parse ``body`` (unless streamed), ingest and commit: one
    transaction, committed before the 201 is sent."""
    state = request.app.state
    settings: Settings = state.settings
    with session_scope(state.engine) as session:
        if actor is None:
            actor = openrosa_actor(request, session)
        if body is not None:
            xml, files = _parse_multipart(request, body, collector)
        return ingest.receive_submission(session, blobs=state.blobs, settings=settings, hooks=state.hooks, actor=actor,
                                         xml=xml, files=files, client_device_id=device_id,
                                         user_agent=request.headers.get("user-agent"))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class _Collector:
    """python-multipart callbacks: the XML part into memory, every other file part to a temp file."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        #: Made at the first file part (most submissions have none).
        self.workdir: Path | None = None
        self.xml: bytearray | None = None
        self.files: list[IncomingFile] = []
        self.ended = False
        self.parts = 0
        self._reset()

    def _reset(self) -> None:
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.name: str | None = None
        self.kind: str | None = None  # xml | file | field
        self.size = 0
        self.handle = None
        self.path: Path | None = None
        self.media_type: str | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end, "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise SubmissionTooManyParts(f"too many parts in one submission (limit {MAX_PARTS})")
        self._reset()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get("content-disposition", b""))
        raw_name = params.get(b"name") or params.get(b"filename") or b""
        self.name = _decode_name(raw_name)
        self.media_type = self.headers.get("content-type", b"").decode("latin-1")[:100] or None
        if self.name == XML_PART:
            if self.xml is not None:
                raise SubmissionMultipleXml(f"more than one {XML_PART} part")
            self.kind, self.xml = "xml", bytearray()
        elif b"filename" in params:
            self.kind = "file"
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(dir=self.tmp, prefix="upload-"))
            fd, name = tempfile.mkstemp(dir=self.workdir)
            self.handle, self.path = os.fdopen(fd, "wb"), Path(name)
        else:
            self.kind = "field"  # e.g. *isIncomplete*: ignored, like Central

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.kind == "xml":
            if self.size > MAX_XML_BYTES:
                raise SubmissionXmlTooLarge(f"{XML_PART} is larger than {MAX_XML_BYTES} bytes")
            self.xml += data[start:end]
        elif self.kind == "file":
            if self.size > self.settings.max_attachment_bytes:
                raise MediaTooLarge(f"attachment {self.name!r} is larger than the limit of "
                                    f"{self.settings.max_attachment_bytes} bytes",
                                    details={"name": self.name})
            self.handle.write(data[start:end])
        elif self.size > MAX_FIELD_BYTES:
            raise SubmissionFieldTooLong(f"form field {self.name!r} is too long")

    def on_part_end(self) -> None:
        if self.kind == "file":
            self.handle.close()
            self.handle = None
            if self.name:
                self.files.append(IncomingFile(name=self.name, path=self.path, size=self.size,
                                               media_type=self.media_type))

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _decode_name(raw: bytes) -> str:
    """Part names are UTF-8 from Collect; fall back to latin-1 rather than refusing."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _boundary(request: Request) -> bytes:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise SubmissionNotMultipart("a submission is a multipart/form-data POST with an xml_submission_file part")
    return params[b"boundary"]


def _declared_length(request: Request, settings: Settings) -> int | None:
    """The Content-Length (None without one); 413 before reading when it is above the limit."""
    length = request.headers.get("content-length")
    if length is None:
        return None
    try:
        declared = int(length)
    except ValueError as exc:
        raise SubmissionBadLength("Content-Length is not a number") from exc
    if declared > settings.max_submission_bytes:
        raise SubmissionTooLarge(f"the submission is {declared} bytes; this server accepts at most "
                                 f"{settings.max_submission_bytes} per POST (split the upload)")
    return declared


async def _read_small(request: Request, declared: int) -> bytes:
    """The whole body of a small upload (at most ``declared`` bytes are accepted)."""
    chunks = []
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > declared:
                raise SubmissionBadLength("the body is longer than its Content-Length")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise SubmissionTruncated(f"the upload was interrupted: {exc}") from exc
    return b"".join(chunks)


def _finish(collector: _Collector) -> tuple[bytes, list[IncomingFile]]:
    if not collector.ended:
        raise SubmissionTruncated("the multipart body is truncated (no closing boundary); resend the submission")
    if collector.xml is None:
        raise SubmissionMissingXml(f"the POST has no {XML_PART} part")
    return bytes(collector.xml), collector.files


def _parse_multipart(request: Request, body: bytes, collector: _Collector) -> tuple[bytes, list[IncomingFile]]:
    """Parse a body read whole (file parts to temp files); returns the XML bytes and the file parts."""
    parser = MultipartParser(_boundary(request), collector.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise SubmissionMultipartMalformed(f"the multipart body is malformed: {exc}") from exc
    return _finish(collector)


async def _read_multipart(request: Request, settings: Settings,
                          collector: _Collector) -> tuple[bytes, list[IncomingFile]]:
    """Stream the multipart body through ``collector`` (file parts to temp files); returns the
    XML bytes and the file parts."""
    parser = MultipartParser(_boundary(request), collector.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > settings.max_submission_bytes:
                raise SubmissionTooLarge(f"the submission is larger than {settings.max_submission_bytes} bytes")
            if chunk:  # parsing writes file parts to disk: in the thread pool, off the event loop
                await run_in_threadpool(parser.write, chunk)
        await run_in_threadpool(parser.finalize)
    except MultipartParseError as exc:
        raise SubmissionMultipartMalformed(f"the multipart body is malformed: {exc}") from exc
    except DomainError:
        raise
    except ClientDisconnect as exc:
        raise SubmissionTruncated(f"the upload was interrupted: {exc}") from exc
    return _finish(collector)


def install(app: FastAPI) -> None:
    app.state.openrosa_headers = _headers
    app.include_router(router)
    app.include_router(router, prefix="/key/{device_token}")
    app.include_router(api_router)
    # Innermost of the app's own middlewares: uploads still get the security headers and limits.
    app.user_middleware.append(Middleware(UploadLane))


class UploadLane:
    """``POST /submission`` and ``POST /key/{token}/submission`` answered before FastAPI's routing,
    exception middleware and dependency solving (issue 13: those cost ~0.17 ms of each upload's
    ~4 ms). The app's own middlewares (security headers, header limits) still wrap it; errors are
    rendered by the app's exception handlers, as for every route. Every other request passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _upload_token(scope) if scope["type"] == "http" and scope["method"] == "POST" else False
        if token is False:
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"device_token": token} if token is not None else {}
        request = Request(scope, receive)
        try:
            response = await _fast_submission(request)
        except Exception as exc:
            handler = _handler_for(exc, scope["app"].exception_handlers)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _upload_token(scope: Scope) -> str | None | Literal[False]:
    """The device token of an upload path (None: ``/submission``), False for any other path."""
    path: str = scope["path"]
    if path == "/submission":
        return None
    if path.startswith("/key/") and path.endswith("/submission"):
        token = path[len("/key/"):-len("/submission")]
        if token and "/" not in token:
            return token
    return False


def _handler_for(exc: Exception, handlers: dict) -> Any:
    """The app's handler for ``exc``'s class or its nearest base (as Starlette's exception middleware)."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
