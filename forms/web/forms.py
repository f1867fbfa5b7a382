"""Web pages of forms: the list with the XLSForm upload, and one form's versions, fields and media
(see app.web.render for the page conventions).

Every read and change goes through the same ``forms.service`` functions and role rules as the JSON API
(``forms.routes``): admins and coordinators upload, close, reopen and attach media; every role lists and
downloads the forms of the kinds it may see. Uploads are published at once (as ODK Central without
drafts): the service has no draft state, so neither have these pages.

Upload handlers are ``async`` only to read the multipart body with a size limit; conversion, storage and
database work run in the thread pool, as in the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.blobs import BlobStore
from app.deps import BlobsDep, HooksDep, SessionDep, SettingsDep
from app.errors import DomainError
from app.events import Hooks
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.identity import Actor, Role
from app.models import User
from app.settings import Settings
from app.web.i18n import N_, _
from app.web.render import NavLink, WebActorDep, redirect, render, require, web_router
from forms import queries, service
from forms.demo import bundled_files
from forms.errors import FormForbidden
from forms.models import CASE_FORM_KINDS, Form, FormKind, FormMedia, FormState, FormVersion
from forms.xlsform import file_type, markdown_to_xlsx

router = web_router()
#: this module's entries in the top navigation (every role lists the forms of the kinds it may see)
NAV: tuple[NavLink, ...] = (
    NavLink("/forms", N_("Forms"), roles=(Role.admin, Role.coordinator, Role.monitor, Role.caseworker), order=40),
)
#: Who may upload, close, reopen and attach media (``forms.service.may_manage``, the API's StaffActor).
MANAGERS = (Role.admin, Role.coordinator)
CHUNK = 1 << 20
#: A whole upload request may carry at most this many times ``max_form_bytes`` (as the API).
MAX_REQUEST_FACTOR = 2
UPLOAD_TYPES = ".xlsx,.xlsm,.xml,.md"
KIND_NAMES = {FormKind.site_visit: N_("Site visit"), FormKind.case_intake: N_("Case intake"),
              FormKind.case_followup: N_("Case follow-up"), FormKind.general: N_("General")}
STATE_NAMES = {FormState.open: N_("Open"), FormState.closed: N_("Closed")}
#: question types (the field schema's) in words
TYPE_NAMES = {"string": N_("Text"), "int": N_("Whole number"), "decimal": N_("Decimal number"), "date": N_("Date"),
              "dateTime": N_("Date and time"), "time": N_("Time"), "select1": N_("One choice"),
              "select": N_("Several choices"), "geopoint": N_("GPS point"), "geotrace": N_("GPS line"),
              "geoshape": N_("GPS area"), "barcode": N_("Barcode"), "boolean": N_("Yes or no"),
              "binary": N_("File"), "image": N_("Photo"), "audio": N_("Sound recording"), "video": N_("Video")}
ROW = re.compile(r"^\s*\[row\s*:\s*(\d+)\]\s*")
#: how XLSForm language columns name our languages, besides their code: ``label::Français (fr)``
LANGUAGE_NAMES = {"fr": ("français", "francais", "french"), "en": ("english", "anglais")}


# -- reading uploads -------------------------------------------------------------------


class UploadRefused(DomainError):
    """A page-side refusal of an upload before the service sees it (413 too large, 400 no file)."""


async def _multipart(request: Request, settings: Settings) -> FormData:
    length = request.headers.get("content-length")
    limit = settings.max_form_bytes * MAX_REQUEST_FACTOR
    if length and length.isdigit() and int(length) > limit:
        raise UploadRefused("too large", code="form.too_large", status_code=413)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadRefused("not multipart", code="form.file_missing", status_code=400)
    return await request.form(max_files=2, max_fields=10)


async def _read(upload: Any, limit: int) -> tuple[bytes, str | None, str | None] | None:
    """(content, filename, media type) of a file part, None without one; refuses more than ``limit`` bytes."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    chunks, size = [], 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadRefused("too large", code="form.too_large", status_code=413)
        chunks.append(chunk)
    media_type = upload.content_type if upload.content_type not in (None, "", "application/octet-stream") else None
    return b"".join(chunks), upload.filename, media_type


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _reason(exc: DomainError, settings: Settings, filename: str | None = None) -> str:
    """The refusal in the user's language for the codes people meet; the service's message otherwise."""
    details = exc.details or {}
    if exc.code == "form.unsupported_file" and (filename or "").lower().endswith(".xls"):
        return _("Old .xls workbooks cannot be read: save the workbook as .xlsx and upload it again.")
    messages = {
        "form.file_missing": _("Choose a file to upload."),
        "form.unsupported_file": _("This is not a form file: choose an XLSForm (.xlsx) or an XForm (.xml)."),
        "form.too_large": _("The file is larger than the limit of %(size)s.", size=_size(settings.max_form_bytes)),
        "form.version_conflict": _("This form already has a version %(version)s with different content. Change "
                                   "the version in the settings sheet to publish a new one.",
                                   version=details.get("version", "")),
        "form.xlsform_invalid": _("pyxform refused the XLSForm: %(reason)s",
                                  reason=split_row(details.get("pyxform_message") or exc.message)[1]),
        "form.xform_invalid": _("This XForm cannot be read: %(reason)s", reason=exc.message),
        "form.kind_fixed": _("This form already has submissions: its kind cannot change."),
        "form.bad_kind": _("Choose one of the kinds in the list."),
        "form.upload_race": _("Another upload of this form was saved at the same moment; send it again."),
        "form.media_not_referenced": _("The form does not use a file of that name."),
        "form.media_generated": _("The server makes this file for each tablet; it cannot be uploaded."),
        "form.bad_media_name": _("Choose which of the form's files this is."),
    }
    return messages.get(exc.code, exc.message)


# -- shaping rows for the pages --------------------------------------------------------


def label_in(labels: dict[str, str] | None, lang: str) -> str:
    """A question's label in ``lang`` from the form's own translations (``label::Français (fr)``),
    else its default label, else any."""
    labels = labels or {}
    names = LANGUAGE_NAMES.get(lang, ())
    for key, text in labels.items():
        code = re.search(r"\(([A-Za-z-]+)\)\s*$", key)
        if code and code.group(1).lower().split("-")[0] == lang:
            return text
    for key, text in labels.items():
        if key.strip().lower().startswith(names) or key.strip().lower() == lang:
            return text
    return labels.get("default") or next(iter(labels.values()), "")


def type_name(field: dict[str, Any]) -> str:
    """A question's type in the user's language (a photo rather than ``binary``)."""
    kind = field.get("type") or ""
    if kind == "binary" and field.get("mediatype"):
        kind = str(field["mediatype"]).split("/")[0]
    return _(TYPE_NAMES[kind]) if kind in TYPE_NAMES else kind


def split_row(message: str) -> tuple[int | None, str]:
    """pyxform's ``[row : 3] message`` as (3, message)."""
    match = ROW.match(message)
    return (int(match.group(1)), message[match.end():]) if match else (None, message)


@dataclass
class MediaLine:
    filename: str
    #: uploaded | generated | placeholder | per_caller | missing
    status: str
    row: FormMedia | None = None


def media_lines(version: FormVersion, stored: list[FormMedia], per_caller: frozenset[str]) -> list[MediaLine]:
    """Every file the version references, with what the server holds for it."""
    by_name = {m.filename: m for m in stored}
    lines = []
    for name in version.media_names:
        row = by_name.get(name)
        if name in per_caller:
            status = "per_caller"
        elif row is None:
            status = "missing"
        elif row.generated_from == "placeholder":
            status = "placeholder"
        elif row.generated_from:
            status = "generated"
        else:
            status = "uploaded"
        lines.append(MediaLine(name, status, row))
    lines += [MediaLine(m.filename, "uploaded" if not m.generated_from else "generated", m)
              for m in stored if m.filename not in version.media_names]
    return lines


@cache
def _bundled_sources() -> dict[str, Path]:
    """sha256 of each bundled form file -> the file (its XLSForm can be downloaded)."""
    return {sha256(p.read_bytes()).hexdigest(): p for p in bundled_files() if p.suffix in (".md", ".xlsx")}


def _visible(session: Session, actor: Actor, xml_form_id: str) -> Form:
    """The form if the caller's role may see it: 404 unknown, 403 another role's kind (as the API)."""
    form = service.require_form(session, xml_form_id)
    if not service.may_see(actor, form):
        raise FormForbidden(_("Your role may not see this form."))
    return form


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    users = [session.get(User, i) for i in ids if i is not None]
    return {u.id: u.full_name or u.username for u in users if u is not None and u.id is not None}


# -- the list ----------------------------------------------------------------------------


def _list_page(request: Request, session: Session, actor: Actor, settings: Settings, *, errors: dict[str, str] | None = None,
               problem: dict[str, Any] | None = None, typed: dict[str, str] | None = None,
               status_code: int = 200) -> HTMLResponse:
    forms = service.forms_visible_to(session, actor)
    published = {f.id: queries.published_version(session, f) for f in forms}
    counts = service.submission_summary(session, actor, forms)
    rows = [{"form": f, "version": published[f.id], "count": counts.get(f.id, (0, None))[0],
             "last": counts.get(f.id, (0, None))[1], "case": f.kind in CASE_FORM_KINDS} for f in forms]
    return render(request, "forms/list.html", {
        "rows": rows, "manage": service.may_manage(actor), "errors": errors or {}, "problem": problem,
        "typed": typed or {}, "kinds": [(k, _(v)) for k, v in KIND_NAMES.items()], "kind_names": KIND_NAMES,
        "state_names": STATE_NAMES, "counts_shown": actor.role != Role.caseworker,
        "own_counts": actor.role == Role.monitor, "upload_types": UPLOAD_TYPES,
        "limit": _size(settings.max_form_bytes),
    }, status_code=status_code)


@router.get("/forms", response_class=HTMLResponse)
def forms_page(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep) -> Response:
    return _list_page(request, session, actor, settings)


@router.post("/forms", response_class=HTMLResponse, openapi_extra=takes(MULTIPART))
async def upload_form(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                      blobs: BlobsDep, hooks: HooksDep) -> Response:
    """Upload an XLSForm or XForm: the new version's page, or this page again with the reason beside the file."""
    require(actor, *MANAGERS)
    kind, filename = "", None
    try:
        data = await _multipart(request, settings)
        kind = str(data.get("kind") or "")
        part = await _read(data.get("file"), settings.max_form_bytes)
        if part is None:
            raise UploadRefused("no file", code="form.file_missing", status_code=400)
        content, filename, _type = part
    except DomainError as exc:
        return await run_in_threadpool(_refused, request, session, actor, settings, exc, filename, kind)
    return await run_in_threadpool(_add, request, session, actor, settings, blobs, hooks, content, filename, kind)


def _refused(request: Request, session: Session, actor: Actor, settings: Settings, exc: DomainError,
             filename: str | None, kind: str) -> Response:
    session.rollback()
    details = exc.details or {}
    problem = None
    if exc.code == "form.xlsform_invalid":
        row, message = split_row(details.get("pyxform_message") or exc.message)
        problem = {"row": details.get("row") or row, "sheet": details.get("sheet"), "message": message}
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    field = "kind" if exc.code in ("form.bad_kind", "form.kind_fixed") else "file"
    return _list_page(request, session, actor, settings, errors={field: _reason(exc, settings, filename)},
                      problem=problem, typed={"kind": kind, "filename": filename or ""}, status_code=status)


def _add(request: Request, session: Session, actor: Actor, settings: Settings, blobs: BlobStore,
         hooks: Hooks, content: bytes, filename: str | None, kind: str) -> Response:
    try:
        result = service.add_form(session, blobs=blobs, settings=settings, actor=actor, content=content,
                                  filename=filename, kind=kind or None, generated=hooks.per_caller_names(),
                                  generators=hooks.generated_media, keep_source=True)
    except DomainError as exc:
        return _refused(request, session, actor, settings, exc, filename, kind)
    outcome = "created" if result.created else "same"
    return redirect(f"/forms/{quote(result.form.xml_form_id, safe='')}?uploaded={quote(result.version.version, safe='')}"
                    f"&outcome={outcome}")


# -- one form ----------------------------------------------------------------------------


def _has_source(blobs: BlobStore, version: FormVersion) -> bool:
    return version.source_sha256 in _bundled_sources() or (
        file_type(version.source_filename, b"") != "xml" and blobs.exists(version.source_sha256))


def _form_page(request: Request, session: Session, actor: Actor, blobs: BlobStore, hooks_names: frozenset[str],
               xml_form_id: str, *,
               errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    form = _visible(session, actor, xml_form_id)
    published = queries.published_version(session, form)
    versions = list(reversed(queries.versions_of(session, form)))
    stored = queries.media_for_version(session, published) if published else []
    lines = media_lines(published, stored, hooks_names) if published else []
    uploaded_name = request.query_params.get("uploaded")
    uploaded = next((v for v in versions if v.version == uploaded_name), None) if uploaded_name else None
    uploaded_media = (media_lines(uploaded, queries.media_for_version(session, uploaded), hooks_names)
                      if uploaded is not None else [])
    counts = service.submission_summary(session, actor, [form])
    return render(request, "forms/form.html", {
        "form": form, "published": published, "versions": versions,
        "uploaders": _names(session, {v.created_by_user_id for v in versions}),
        "sources": {v.id: _has_source(blobs, v) for v in versions},
        "media": lines, "uploadable": [m.filename for m in lines if m.status in ("missing", "uploaded")],
        "generated": any(m.status in ("generated", "placeholder", "per_caller") for m in lines), "size": _size,
        "missing": [m.filename for m in lines if m.status == "missing"],
        "uploaded": uploaded, "outcome": request.query_params.get("outcome"),
        "uploaded_missing": [m.filename for m in uploaded_media if m.status == "missing"],
        "warnings": [split_row(w) for w in (uploaded.warnings if uploaded else [])],
        "fields": published.fields if published else [], "label_in": label_in, "type_name": type_name,
        "split_rows": lambda warnings: [split_row(w) for w in warnings],
        "manage": service.may_manage(actor), "errors": errors or {}, "kind_names": KIND_NAMES,
        "state_names": STATE_NAMES, "settings": service.effective_settings(session, form),
        "count": counts.get(form.id, (0, None))[0] if counts else None,
        "last": counts.get(form.id, (0, None))[1] if counts else None,
        "own_counts": actor.role == Role.monitor, "case": form.kind in CASE_FORM_KINDS,
        "done": request.query_params.get("done"),
    }, status_code=status_code)


@router.get("/forms/{xml_form_id}", response_class=HTMLResponse)
def form_page(xml_form_id: str, request: Request, actor: WebActorDep, session: SessionDep, blobs: BlobsDep,
              hooks: HooksDep) -> Response:
    return _form_page(request, session, actor, blobs, hooks.per_caller_names(), xml_form_id)


def _set_state(xml_form_id: str, actor: Actor, session: Session, state: str) -> Response:
    require(actor, *MANAGERS)
    form = service.set_state(session, form=service.require_form(session, xml_form_id), state=state, actor=actor)
    return redirect(f"/forms/{quote(form.xml_form_id, safe='')}?done={state}")


@router.post("/forms/{xml_form_id}/close", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def close_form(xml_form_id: str, actor: WebActorDep, session: SessionDep) -> Response:
    """Close a form: tablets no longer get it and submissions are refused (as POST /api/v1/forms/{id}/close)."""
    return _set_state(xml_form_id, actor, session, FormState.closed)


@router.post("/forms/{xml_form_id}/open", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def open_form(xml_form_id: str, actor: WebActorDep, session: SessionDep) -> Response:
    """Reopen a closed form (as POST /api/v1/forms/{id}/open)."""
    return _set_state(xml_form_id, actor, session, FormState.open)


@router.post("/forms/{xml_form_id}/media", response_class=HTMLResponse, openapi_extra=takes(MULTIPART))
async def upload_media(xml_form_id: str, request: Request, actor: WebActorDep, session: SessionDep,
                       settings: SettingsDep, blobs: BlobsDep, hooks: HooksDep) -> Response:
    """Attach a media file to the published version under the name the form uses for it."""
    require(actor, *MANAGERS)
    per_caller = hooks.per_caller_names()
    form = await run_in_threadpool(service.require_form, session, xml_form_id)
    try:
        data = await _multipart(request, settings)
        name = str(data.get("name") or "")
        part = await _read(data.get("file"), settings.max_form_bytes)
        if part is None:
            raise UploadRefused("no file", code="form.file_missing", status_code=400)
    except DomainError as exc:
        return await run_in_threadpool(_media_refused, request, session, actor, settings, blobs, per_caller, form, exc)
    content, _filename, media_type = part
    return await run_in_threadpool(_add_media, request, session, actor, settings, blobs, per_caller, form, name,
                                   content, media_type)


def _media_refused(request: Request, session: Session, actor: Actor, settings: Settings, blobs: BlobStore,
                   per_caller: frozenset[str], form: Form, exc: DomainError) -> Response:
    session.rollback()
    field = "name" if exc.code in ("form.media_not_referenced", "form.bad_media_name", "form.media_generated") else "media"
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    return _form_page(request, session, actor, blobs, per_caller, form.xml_form_id,
                      errors={field: _reason(exc, settings)}, status_code=status)


def _add_media(request: Request, session: Session, actor: Actor, settings: Settings, blobs: BlobStore,
               per_caller: frozenset[str], form: Form, name: str, content: bytes, media_type: str | None) -> Response:
    try:
        service.add_media(session, blobs=blobs, settings=settings, actor=actor, form=form, generated=per_caller,
                          upload=service.IncomingMedia(filename=name, content=content, media_type=media_type))
    except DomainError as exc:
        return _media_refused(request, session, actor, settings, blobs, per_caller, form, exc)
    return redirect(f"/forms/{quote(form.xml_form_id, safe='')}?done=media#media")


# -- downloads ---------------------------------------------------------------------------


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
                             "Cache-Control": "no-store"})


@router.get("/forms/{xml_form_id}/versions/{version}/xform")
def download_xform(xml_form_id: str, version: str, actor: WebActorDep, session: SessionDep) -> Response:
    """The XForm of one version, as a file (the same bytes as GET /api/v1/forms/{id}/versions/{version}.xml)."""
    form = _visible(session, actor, xml_form_id)
    found = service.require_version(session, form, version)
    return _attachment(found.xform_xml.encode("utf-8"), "text/xml; charset=utf-8",
                       f"{form.xml_form_id}-{found.version}.xml")


@router.get("/forms/{xml_form_id}/versions/{version}/xlsform")
def download_xlsform(xml_form_id: str, version: str, actor: WebActorDep, session: SessionDep,
                     blobs: BlobsDep) -> Response:
    """The XLSForm of a version when the server has it (uploaded through these pages, or bundled), as .xlsx."""
    form = _visible(session, actor, xml_form_id)
    found = service.require_version(session, form, version)
    bundled = _bundled_sources().get(found.source_sha256)
    content = bundled.read_bytes() if bundled is not None else service.xlsform_source(blobs, found)
    if content is None:
        raise DomainError(_("The server keeps the XForm of this version, not the XLSForm it was made from."),
                          code="form.source_not_kept", status_code=404)
    if file_type(found.source_filename, content) == "md":
        content = markdown_to_xlsx(content.decode("utf-8"))
    return _attachment(content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       f"{form.xml_form_id}-{found.version}.xlsx")
