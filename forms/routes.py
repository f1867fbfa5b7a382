"""HTTP routes of the forms capability (thin: parse, authorise, call the service, shape the answer).

The OpenRosa side (formList, form download, manifest, attachments) lives in ``sync.routes``
and reads through ``forms.queries``; these are the JSON API routes for people.

Routes that read a multipart or JSON body are ``async``; everything blocking they then do (pyxform
conversion, hashing and fsync in the blob store, database work) runs in the thread pool, so a slow
conversion never stalls the other requests of the worker.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.auth import ApiActor, StaffActor
from app.blobs import BlobStore
from app.deps import BlobsDep, HooksDep, SessionDep, SettingsDep
from app.http_security import MULTIPART, takes
from app.identity import Actor
from app.settings import Settings
from forms import queries, service
from forms.errors import (
    FormBadMediaName,
    FormFileMissing,
    FormForbidden,
    FormNotMultipart,
    FormSettingsNotObject,
    FormTooLarge,
)
from forms.models import Form, FormState, FormVersion
from forms.schemas import FormDetail, FormList, FormMediaPublic, FormMediaUploaded, FormPublic, FormUploaded

router = APIRouter(prefix="/api/v1/forms", tags=["forms"])
#: Most media files in one upload request.
MAX_PARTS = 100
#: A whole upload request may carry at most this many times ``max_form_bytes`` (form + media).
MAX_REQUEST_FACTOR = 10
CHUNK = 1 << 20


async def _read(upload: UploadFile, limit: int) -> bytes:
    """The whole part, refusing more than ``limit`` bytes without reading further."""
    chunks, size = [], 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise FormTooLarge(f"{upload.filename or 'the file'} is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form_data(request: Request, settings: SettingsDep):  # noqa: ANN202
    length = request.headers.get("content-length")
    limit = settings.max_form_bytes * MAX_REQUEST_FACTOR
    if length and length.isdigit() and int(length) > limit:
        raise FormTooLarge(f"the request is larger than the limit of {limit} bytes; upload media files "
                           "separately (POST /api/v1/forms/{id}/media)")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise FormNotMultipart("send the files as multipart/form-data")
    return await request.form(max_files=MAX_PARTS + 1, max_fields=20)


async def _media_parts(parts: list[Any], limit: int) -> list[service.IncomingMedia]:
    media = []
    for part in parts:
        if not isinstance(part, UploadFile) or not part.filename:
            raise FormBadMediaName("each media part must be a file with a file name")
        media.append(service.IncomingMedia(filename=part.filename, content=await _read(part, limit),
                                           media_type=part.content_type if part.content_type not in
                                           (None, "", "application/octet-stream") else None))
    return media


def _visible(session, actor, xml_form_id: str) -> Form:  # noqa: ANN001
    form = service.require_form(session, xml_form_id)
    if not service.may_see(actor, form):
        raise FormForbidden(f"your role may not see form {xml_form_id!r}")
    return form


def _detail(session: Session, form: Form) -> FormDetail:
    published = queries.published_version(session, form)
    return FormDetail.from_rows(form, published, settings=service.effective_settings(session, form),
                                versions=queries.versions_of(session, form),
                                media=queries.media_for_version(session, published) if published else [])


def _summary(session: Session, form: Form) -> FormPublic:
    return FormPublic.from_form(form, queries.published_version(session, form))


def _uploaded(result: service.AddFormResult) -> FormUploaded:
    return FormUploaded(
        xml_form_id=result.form.xml_form_id, title=result.form.title, kind=result.form.kind,
        state=result.form.state, version=result.version.version, md5=result.version.md5,
        created=result.created, warnings=result.warnings, media_names=result.version.media_names,
        media=[FormMediaPublic.from_row(m) for m in result.media])


@router.post("", status_code=201, openapi_extra=takes(MULTIPART), response_model=FormUploaded,
             responses={200: {"model": FormUploaded, "description": "This version was already published"}})
async def upload_form(request: Request, actor: StaffActor, session: SessionDep, settings: SettingsDep,
                      blobs: BlobsDep, hooks: HooksDep) -> JSONResponse:
    """Upload an XLSForm (.xlsx) or XForm (.xml), with optional media files."""
    data = await _form_data(request, settings)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise FormFileMissing("the multipart part 'file' (the .xlsx or .xml form) is missing")
    kind = data.get("kind")
    content = await _read(upload, settings.max_form_bytes)
    media = await _media_parts(data.getlist("media"), settings.max_form_bytes)
    result = await run_in_threadpool(service.add_form, session, blobs=blobs, settings=settings, actor=actor,
                                     content=content, filename=upload.filename,
                                     kind=kind if isinstance(kind, str) and kind else None,
                                     media=media, generated=hooks.per_caller_names(),
                                     generators=hooks.generated_media)
    return JSONResponse(_uploaded(result).model_dump(mode="json"), status_code=201 if result.created else 200)


@router.get("")
def list_forms(actor: ApiActor, session: SessionDep) -> FormList:
    """List the forms the caller may see."""
    return FormList(forms=[_summary(session, f) for f in service.forms_visible_to(session, actor)])


@router.get("/{xml_form_id}")
def get_form(xml_form_id: str, actor: ApiActor, session: SessionDep) -> FormDetail:
    """One form: state, kind, settings, versions, and the published version's fields and media."""
    return _detail(session, _visible(session, actor, xml_form_id))


@router.get("/{xml_form_id}/versions/{version}.xml", response_class=Response,
            responses={200: {"content": {"text/xml": {}}, "description": "The XForm"}})
def get_version_xml(xml_form_id: str, version: str, actor: ApiActor, session: SessionDep) -> Response:
    """The XForm of one version."""
    form = _visible(session, actor, xml_form_id)
    found = service.require_version(session, form, version)
    return Response(found.xform_xml.encode("utf-8"), media_type="text/xml; charset=utf-8")


@router.patch("/{xml_form_id}")
async def update_form(xml_form_id: str, request: Request, actor: StaffActor, session: SessionDep) -> FormDetail:
    """Change settings (location_field, site_mapping, site_field), kind or state."""
    try:
        changes = await request.json()
    except ValueError as exc:
        raise FormSettingsNotObject("the body must be a JSON object") from exc
    if not isinstance(changes, dict):
        raise FormSettingsNotObject("the body must be a JSON object")
    return await run_in_threadpool(_update, session, xml_form_id=xml_form_id, actor=actor, changes=changes)


def _update(session: Session, *, xml_form_id: str, actor: Actor, changes: dict[str, Any]) -> FormDetail:
    form = service.update_form(session, form=service.require_form(session, xml_form_id), actor=actor, changes=changes)
    return _detail(session, form)


@router.post("/{xml_form_id}/close")
def close_form(xml_form_id: str, actor: StaffActor, session: SessionDep) -> FormPublic:
    """Close a form: tablets no longer get it and submissions are refused."""
    form = service.set_state(session, form=service.require_form(session, xml_form_id), state=FormState.closed, actor=actor)
    return _summary(session, form)


@router.post("/{xml_form_id}/open")
def open_form(xml_form_id: str, actor: StaffActor, session: SessionDep) -> FormPublic:
    """Reopen a closed form."""
    form = service.set_state(session, form=service.require_form(session, xml_form_id), state=FormState.open, actor=actor)
    return _summary(session, form)


@router.post("/{xml_form_id}/media", status_code=201, openapi_extra=takes(MULTIPART))
async def upload_media(xml_form_id: str, request: Request, actor: StaffActor, session: SessionDep,
                       settings: SettingsDep, blobs: BlobsDep, hooks: HooksDep) -> FormMediaUploaded:
    """Attach media files (any file parts) to the published version, or to ``version`` if given."""
    form = await run_in_threadpool(service.require_form, session, xml_form_id)
    data = await _form_data(request, settings)
    version_name = data.get("version")
    version = await run_in_threadpool(service.require_version, session, form,
                                      version_name if isinstance(version_name, str) else None)
    parts = [v for _, v in data.multi_items() if isinstance(v, UploadFile)]
    if not parts:
        raise FormFileMissing("no file parts in the upload")
    media = await _media_parts(parts, settings.max_form_bytes)
    return await run_in_threadpool(_add_media, session, blobs=blobs, settings=settings, actor=actor, form=form,
                                   version=version, media=media, generated=hooks.per_caller_names())


def _add_media(session: Session, *, blobs: BlobStore, settings: Settings, actor: Actor, form: Form,
               version: FormVersion, media: list[service.IncomingMedia], generated: frozenset[str]) -> FormMediaUploaded:
    rows = [service.add_media(session, blobs=blobs, settings=settings, actor=actor, form=form, version=version,
                              upload=m, generated=generated) for m in media]
    return FormMediaUploaded(xml_form_id=form.xml_form_id, version=version.version,
                             media=[FormMediaPublic.from_row(r) for r in rows])


def install(app: FastAPI) -> None:
    app.include_router(router)
