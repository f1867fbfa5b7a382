"""The rules of forms: publishing versions, form media, settings, who may see and submit what.

Plain functions taking a session and keyword arguments; they never commit (the request or the
CLI command does) and know nothing of HTTP. Errors are ``DomainError`` with ``form.*`` codes.

Version rules (as ODK Central): every upload with a new ``version`` becomes the published one;
older versions stay and keep accepting submissions; the same version with the same XForm is
acknowledged (idempotent); the same version with a different XForm is a 409. An upload whose
XForm has no version gets the upload time (UTC, ``YYYYMMDDHHMMSS``) written into the XForm, unless
the very same file was uploaded before, in which case that version is returned.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app import audit
from app.blobs import BlobStore, StoredBlob
from app.events import GeneratedMedia
from app.identity import Actor, Role
from app.settings import Settings
from app.timeutil import utcnow
from forms import queries
from forms.errors import (
    FormBadId,
    FormBadKind,
    FormBadMediaName,
    FormBadSetting,
    FormBadState,
    FormBadVersion,
    FormKindFixed,
    FormMediaGenerated,
    FormMediaNotReferenced,
    FormNotFound,
    FormTooLarge,
    FormUnsupportedFile,
    FormUploadRace,
    FormVersionConflict,
    FormVersionNotFound,
    FormXformInvalid,
    FormXlsformInvalid,
)
from forms.models import CASE_FORM_KINDS, Form, FormKind, FormMedia, FormState, FormVersion
from forms.xform import XFormError, geopoint_paths, parse_xform, set_version
from forms.xlsform import XLSFormError, convert, file_type

FORM_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$")
VERSION = re.compile(r"^[^\s/\\?#%<>\"']{1,100}$")
#: ``sensitive_media``: true strips every image of the form of its metadata and refuses images that cannot
#: be cleaned, as for case forms (``sync.media``); for site visits whose photos show people.
SETTING_KEYS = ("location_field", "site_mapping", "site_field", "sensitive_media")
MEDIA_TYPES = {".csv": "text/csv", ".geojson": "application/geo+json", ".json": "application/json",
               ".xml": "text/xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


#: The query functions sync uses, also reachable from here.
get_form = queries.get_form
get_version = queries.get_version
published_version = queries.published_version
media_for_version = queries.media_for_version


# -- access ------------------------------------------------------------------------------

#: Form kinds each role may see and submit (design.md §6); a device acts as its user.
KINDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    Role.admin: tuple(FormKind),
    Role.coordinator: tuple(FormKind),
    Role.monitor: (FormKind.site_visit, FormKind.general),
    Role.caseworker: tuple(CASE_FORM_KINDS),
}


def may_manage(actor: Actor | None, form: Form | None = None) -> bool:
    """Upload, publish, close/open, attach media, change settings: admins and coordinators."""
    return actor is not None and actor.device is None and actor.role in (Role.admin, Role.coordinator)


def may_see(actor: Actor, form: Form) -> bool:
    """May list and download ``form`` (whatever its state)."""
    return form.kind in KINDS_BY_ROLE.get(actor.role, ())


def may_submit(actor: Actor, form: Form) -> bool:
    """May send submissions to ``form`` by role and kind; sync checks ``form.state`` itself."""
    return may_see(actor, form)


def forms_visible_to(session: Session, actor: Actor, *, open_only: bool = False) -> list[Form]:
    """The forms ``actor`` may list and download, by XML form id (closed ones too unless ``open_only``)."""
    return queries.list_forms(session, kinds=KINDS_BY_ROLE.get(actor.role, ()), open_only=open_only)


def submission_summary(session: Session, actor: Actor, forms: Sequence[Form]) -> dict[int, tuple[int, datetime | None]]:
    """Per form id, the submissions ``actor`` may count and the last one's time: all of them for admins and
    coordinators, a monitor's own (monitors see their own visits), none for caseworkers (the cases
    capability counts case data per organisation)."""
    if actor.role in (Role.admin, Role.coordinator):
        return queries.submission_summary(session, forms)
    if actor.role == Role.monitor:
        return queries.submission_summary(session, forms, submitted_by=actor.user.id)
    return {}


def require_form(session: Session, xml_form_id: str) -> Form:
    """The form, or a 404 ``form.not_found``."""
    form = queries.get_form(session, xml_form_id)
    if form is None:
        raise FormNotFound(f"no form with id {xml_form_id!r}")
    return form


def require_version(session: Session, form: Form, version: str | None) -> FormVersion:
    """A version of ``form`` (the published one when ``version`` is empty), or 404 ``form.version_not_found``."""
    found = queries.get_version(session, form, version)
    if found is None:
        raise FormVersionNotFound(f"form {form.xml_form_id!r} has no version {version!r}")
    return found


# -- upload ------------------------------------------------------------------------------


@dataclass
class IncomingMedia:
    """A media file to attach: its name and either its bytes or a temporary file."""

    filename: str
    content: bytes | None = None
    path: Path | None = None
    media_type: str | None = None


@dataclass
class AddFormResult:
    form: Form
    version: FormVersion
    #: False when the same version with the same XForm was already there (idempotent re-upload).
    created: bool
    warnings: list[str] = field(default_factory=list)
    media: list[FormMedia] = field(default_factory=list)


def to_xform(content: bytes, filename: str | None) -> tuple[str, list[str]]:
    """The XForm text and pyxform warnings for an uploaded XLSForm (.xlsx/.md) or XForm (.xml).

    :raises UnsupportedMedia: for anything else (415 ``form.unsupported_file``).
    :raises Invalid: for XLSForm errors (422 ``form.xlsform_invalid``, details: row, sheet).
    """
    kind = file_type(filename, content)
    if kind == "unknown":
        raise FormUnsupportedFile(f"{filename or 'the upload'} is neither an XLSForm (.xlsx, .md) nor an XForm (.xml)")
    if kind == "xml":
        try:
            return content.decode("utf-8"), []
        except UnicodeDecodeError as exc:
            raise FormXformInvalid("the XForm must be UTF-8 encoded") from exc
    try:
        result = convert(content, kind=kind)
    except XLSFormError as exc:
        where = f" (row {exc.row})" if exc.row and f"row : {exc.row}" not in exc.message else ""
        raise FormXlsformInvalid(f"XLSForm error{where}: {exc.message}",
                                 details={"row": exc.row, "sheet": exc.sheet, "pyxform_message": exc.message}) from exc
    return result.xform, result.warnings


def _parse(xform: str):  # noqa: ANN202
    try:
        info = parse_xform(xform.encode("utf-8"))
    except XFormError as exc:
        raise FormXformInvalid(f"invalid XForm: {exc}") from exc
    if not FORM_ID.match(info.xml_form_id):
        raise FormBadId(f"form id {info.xml_form_id!r} must start with a letter or '_' and contain only letters, digits, "
                        "'_', '-' or '.' (at most 200)")
    if info.version is not None and not VERSION.match(info.version):
        raise FormBadVersion(f"form version {info.version!r} must be 1-100 characters without spaces, slashes, quotes or ?#%<>")
    return info


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in tuple(FormKind):
        raise FormBadKind(f"unknown form kind {kind!r}; use one of {', '.join(FormKind)}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _timestamp_version(session: Session, form: Form | None) -> str:
    base = utcnow().strftime("%Y%m%d%H%M%S")
    candidate, n = base, 1
    while form is not None and queries.get_version(session, form, candidate) is not None:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def add_form(
    session: Session,
    *,
    blobs: BlobStore,
    settings: Settings,
    actor: Actor | None,
    content: bytes,
    filename: str | None,
    kind: str | None = None,
    media: Sequence[IncomingMedia] = (),
    form_settings: dict[str, Any] | None = None,
    generated: Collection[str] = (),
    generators: Mapping[str, GeneratedMedia] | None = None,
    keep_source: bool = False,
) -> AddFormResult:
    """Upload an XLSForm or XForm: create the form or publish a new version of it.

    :param content: the uploaded file (.xlsx, markdown-table .md, or .xml).
    :param kind: a :class:`FormKind`; default ``general`` for a new form, unchanged for an existing one.
    :param media: files referenced by the form, attached to the resulting version.
    :param form_settings: initial settings (``location_field``, ``site_mapping``, ``site_field``).
    :param generated: media names the server generates per caller (``Hooks.per_caller_names``); never uploaded.
    :param generators: the generated media of the composition (``Hooks.generated_media``): a referenced file
        with a ``generate`` callable is stored on the version at once, with its current content.
    :param keep_source: also keep an uploaded XLSForm in the blob store (by its sha256, the version's
        ``source_sha256``) so people can download it again (:func:`xlsform_source`).
    :returns: the form, the version, whether it was created, pyxform's warnings and attached media.
    :raises DomainError: 413 too large, 415 not a form file, 422 conversion/XForm errors,
        409 ``form.version_conflict`` when the version exists with a different XForm.
    """
    if len(content) > settings.max_form_bytes:
        raise FormTooLarge(f"the form file is larger than the limit of {settings.max_form_bytes} bytes")
    _check_kind(kind)
    xform, warnings = to_xform(content, filename)
    info = _parse(xform)
    source_sha = _sha256(content)
    form = queries.get_form(session, info.xml_form_id)

    existing: FormVersion | None = None
    if info.version is None:
        if form is not None:
            existing = next((v for v in queries.versions_of(session, form) if v.source_sha256 == source_sha), None)
        if existing is None:
            info.version = _timestamp_version(session, form)
            xform = set_version(xform, info.version).decode("utf-8")
    elif form is not None:
        existing = queries.get_version(session, form, info.version)
        if existing is not None and existing.xform_sha256 != _sha256(xform.encode("utf-8")):
            raise FormVersionConflict(f"form {info.xml_form_id!r} already has a version {info.version!r} with different content; "
                                      "change the version (settings sheet) to publish a new one",
                                      details={"version": info.version})

    if keep_source and file_type(filename, content) in ("xlsx", "md"):
        blobs.put_bytes(content)  # durable before the version row commits
    if existing is not None:
        if kind is not None and form.kind != kind:
            change_kind(session, form=form, kind=kind, actor=actor)
        attached = [add_media(session, blobs=blobs, settings=settings, actor=actor, form=form, version=existing,
                              upload=m, generated=generated) for m in media]
        store_generated_media(session, blobs=blobs, version=existing, generators=generators or {})
        return AddFormResult(form=form, version=existing, created=False, warnings=existing.warnings, media=attached)

    previous = queries.published_version(session, form) if form is not None else None
    if form is None:
        form = Form(xml_form_id=info.xml_form_id, title=info.title[:300], kind=kind or FormKind.general,
                    created_by_user_id=actor.user.id if actor else None)
        session.add(form)
        _flush_upload(session, info.xml_form_id)
        audit.record(session, "form.create", actor=actor, object_type="form", object_id=form.xml_form_id,
                     kind=form.kind)
    elif kind is not None and form.kind != kind:
        change_kind(session, form=form, kind=kind, actor=actor)
    xform_bytes = xform.encode("utf-8")
    version = FormVersion(
        form_id=form.id, version=info.version, title=info.title[:300], xform_xml=xform,
        md5=hashlib.md5(xform_bytes).hexdigest(),  # noqa: S324 (OpenRosa's formList hash)
        xform_sha256=_sha256(xform_bytes), source_sha256=source_sha,
        source_filename=(filename or None) and Path(filename).name[:300],
        fields=info.fields, media_names=info.media_names, warnings=warnings,
        created_by_user_id=actor.user.id if actor else None,
    )
    session.add(version)
    _flush_upload(session, info.xml_form_id)
    form.published_version_id = version.id
    form.title = info.title[:300]
    form.settings = _settled(form, version, {**(form.settings or {}), **(form_settings or {})})
    session.add(form)
    _carry_media(session, previous, version)
    store_generated_media(session, blobs=blobs, version=version, generators=generators or {})
    audit.record(session, "form.publish", actor=actor, object_type="form", object_id=form.xml_form_id,
                 version=version.version, md5=version.md5)
    attached = [add_media(session, blobs=blobs, settings=settings, actor=actor, form=form, version=version, upload=m,
                          generated=generated) for m in media]
    session.flush()
    return AddFormResult(form=form, version=version, created=True, warnings=warnings, media=attached)


def xlsform_source(blobs: BlobStore, version: FormVersion) -> bytes | None:
    """The XLSForm ``version`` was made from, when it was kept (``add_form(keep_source=True)``); None for
    XForm uploads and sources not kept."""
    if file_type(version.source_filename, b"") == "xml" or not blobs.exists(version.source_sha256):
        return None
    with blobs.open(version.source_sha256) as source:
        return source.read()


def _flush_upload(session: Session, xml_form_id: str) -> None:
    """Two uploads of the same new form or version at once: the loser gets a 409, not a 500."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise FormUploadRace(f"another upload of form {xml_form_id!r} was saved at the same time; send it again") from exc


def _carry_media(session: Session, previous: FormVersion | None, version: FormVersion) -> None:
    """A new version keeps the files (uploaded or generated) of the previous one it still references,
    and gets the current server-generated copy of any other file it references (e.g. sites.geojson)."""
    carried: set[str] = set()
    for old in queries.media_for_version(session, previous) if previous is not None else []:
        if old.filename in version.media_names:
            _copy_media(session, old, version)
            carried.add(old.filename)
    for name in version.media_names:
        if name not in carried:
            current = queries.latest_generated(session, name)
            if current is not None:
                _copy_media(session, current, version)
    session.flush()


def _copy_media(session: Session, old: FormMedia, version: FormVersion) -> None:
    session.add(FormMedia(form_version_id=version.id, filename=old.filename, sha256=old.sha256, md5=old.md5,
                          size=old.size, media_type=old.media_type, generated_from=old.generated_from))


# -- settings ----------------------------------------------------------------------------


def _field(version: FormVersion, path: str) -> dict[str, Any] | None:
    return next((f for f in version.fields if f["path"] == path), None)


def _settled(form: Form, version: FormVersion, current: dict[str, Any]) -> dict[str, Any]:
    """Settings with defaults filled in for ``version``: location_field (first geopoint outside
    repeats, else first geopoint), site_mapping (true except for case forms), site_field (a field
    named ``site_id`` outside repeats). Paths that the version no longer has fall back to defaults."""
    result = {k: v for k, v in current.items() if k in SETTING_KEYS}
    location = result.get("location_field")
    located = _field(version, location) if location else None
    if located is None or located.get("type") != "geopoint":
        points = geopoint_paths(version.fields)
        if points:
            result["location_field"] = points[0]
        else:
            result.pop("location_field", None)
    result.setdefault("site_mapping", form.kind not in CASE_FORM_KINDS)
    site = result.get("site_field")
    if site is None or _field(version, site) is None:
        candidate = next((f["path"] for f in version.fields
                          if f["kind"] == "field" and f["name"] == "site_id" and f["repeat"] is None), None)
        if candidate:
            result["site_field"] = candidate
        else:
            result.pop("site_field", None)
    return result


def effective_settings(session: Session, form: Form, known: FormVersion | None = None) -> dict[str, Any]:
    """``form.settings`` with defaults resolved against the published version (its fields only).

    :param known: a version of ``form`` the caller holds; used when it is the published one (an upload
        to the current version: no read)."""
    published = form.published_version_id
    version = known if known is not None and published is not None and known.id == published else (
        queries.published_schema(session, form))
    return _settled(form, version, form.settings or {}) if version else dict(form.settings or {})


def update_form(
    session: Session,
    *,
    form: Form,
    actor: Actor | None,
    changes: dict[str, Any],
) -> Form:
    """Change settings (``location_field``, ``site_mapping``, ``site_field``) and/or ``kind``/``state``.

    Paths must name fields of the published version: ``location_field`` a geopoint,
    ``site_field`` a field outside repeats. ``None`` resets a path to its default.
    """
    unknown = sorted(set(changes) - {*SETTING_KEYS, "kind", "state"})
    if unknown:
        raise FormBadSetting(f"unknown form setting(s): {', '.join(unknown)}; use {', '.join((*SETTING_KEYS, 'kind', 'state'))}")
    version = require_version(session, form, None)
    new = dict(form.settings or {})
    if "location_field" in changes:
        path = changes["location_field"]
        if path is None:
            new.pop("location_field", None)
        else:
            found = _field(version, path) if isinstance(path, str) else None
            if found is None or found["kind"] != "field":
                raise FormBadSetting(f"location_field {path!r} is not a field of version {version.version}",
                                     details={"setting": "location_field"})
            if found["type"] != "geopoint":
                raise FormBadSetting(f"location_field {path!r} is a {found['type']}, not a geopoint",
                                     details={"setting": "location_field"})
            new["location_field"] = path
    if "site_field" in changes:
        path = changes["site_field"]
        if path is None:
            new.pop("site_field", None)
        else:
            found = _field(version, path) if isinstance(path, str) else None
            if found is None or found["kind"] != "field" or found["repeat"] is not None:
                raise FormBadSetting(f"site_field {path!r} is not a field outside repeats of version {version.version}",
                                     details={"setting": "site_field"})
            new["site_field"] = path
    if "site_mapping" in changes:
        if not isinstance(changes["site_mapping"], bool):
            raise FormBadSetting("site_mapping must be true or false", details={"setting": "site_mapping"})
        new["site_mapping"] = changes["site_mapping"]
    if "sensitive_media" in changes:
        if not isinstance(changes["sensitive_media"], bool):
            raise FormBadSetting("sensitive_media must be true or false",
                                        details={"setting": "sensitive_media"})
        new["sensitive_media"] = changes["sensitive_media"]
    if changes.get("kind") is not None:
        _check_kind(changes["kind"])
        if changes["kind"] != form.kind:
            change_kind(session, form=form, kind=changes["kind"], actor=actor)
    form.settings = _settled(form, version, new)
    session.add(form)
    audit.record(session, "form.update", actor=actor, object_type="form", object_id=form.xml_form_id,
                 changes={k: v for k, v in changes.items() if k != "state"})
    if changes.get("state") is not None:
        set_state(session, form=form, state=changes["state"], actor=actor)
    return form


def change_kind(session: Session, *, form: Form, kind: str, actor: Actor | None) -> Form:
    """Change what a form is for, only while it has no submission (409 ``form.kind_fixed``).

    The kind decides who reads a form's submissions: turning a case form into a general one would
    hand children's names to every reader of general data (issue 9, finding 3), and the other way
    round would hide data from those who collected it. The form row is locked first, so a
    submission being stored at the same moment either commits first (and is seen here) or sees
    the new kind and is refused (``sync.ingest``).
    """
    _check_kind(kind)
    queries.lock_form(session, form)
    if queries.has_submissions(session, form):
        raise FormKindFixed(f"form {form.xml_form_id!r} already has submissions: its kind ({form.kind}) is fixed; "
                            "publish the questions as a new form (another form id) instead",
                            details={"kind": form.kind})
    audit.record(session, "form.kind", actor=actor, object_type="form", object_id=form.xml_form_id,
                 before=form.kind, after=kind)
    form.kind = kind
    session.add(form)
    return form


def set_state(session: Session, *, form: Form, state: str, actor: Actor | None) -> Form:
    """Open or close a form. Closed forms are not offered to tablets and refuse submissions."""
    if state not in tuple(FormState):
        raise FormBadState(f"unknown form state {state!r}; use open or closed")
    if form.state != state:
        form.state = state
        session.add(form)
        audit.record(session, f"form.{'close' if state == FormState.closed else 'open'}", actor=actor,
                     object_type="form", object_id=form.xml_form_id)
    return form


# -- media -------------------------------------------------------------------------------


def check_media_name(name: str, referenced: Iterable[str]) -> None:
    """Refuse path-like names (``../x``, ``/x``, ``a\\b``) and names the XForm does not reference."""
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts)
            or any(ord(c) < 32 for c in name) or len(name) > 300):
        raise FormBadMediaName(f"media file name {name!r} is not a plain relative file name")
    if name not in referenced:
        raise FormMediaNotReferenced(f"the form does not reference a media file named {name!r}",
                                     details={"referenced": list(referenced)})


def guess_media_type(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def add_media(
    session: Session,
    *,
    blobs: BlobStore,
    settings: Settings,
    actor: Actor | None,
    form: Form,
    upload: IncomingMedia,
    version: FormVersion | None = None,
    generated: Collection[str] = (),
) -> FormMedia:
    """Attach (or replace) a media file on ``version`` (default: the published one).

    The content goes to the blob store first (durable before the row commits). Its md5 is what
    the manifest lists, so tablets fetch it again when it changes. Names in ``generated`` (files
    another capability builds for each caller, ``Hooks.per_caller_names``) are refused.
    """
    version = version or require_version(session, form, None)
    check_media_name(upload.filename, version.media_names)
    if upload.filename in generated:
        raise FormMediaGenerated(f"{upload.filename!r} is generated for each tablet by the server; it cannot be uploaded")
    blob = _store(blobs, settings, upload)
    row = _put_media(session, version, upload.filename, blob, upload.media_type or guess_media_type(upload.filename),
                     generated_from=None)
    audit.record(session, "form.media_upload", actor=actor, object_type="form", object_id=form.xml_form_id,
                 version=version.version, filename=upload.filename, sha256=blob.sha256)
    return row


def _store(blobs: BlobStore, settings: Settings, upload: IncomingMedia) -> StoredBlob:
    limit = settings.max_form_bytes
    if upload.path is not None:
        return blobs.put_file(upload.path, max_bytes=limit)
    content = upload.content or b""
    if len(content) > limit:
        raise FormTooLarge(f"media file {upload.filename!r} is larger than the limit of {limit} bytes")
    return blobs.put_bytes(content)


def _put_media(session: Session, version: FormVersion, filename: str, blob: StoredBlob, media_type: str,
               *, generated_from: str | None) -> FormMedia:
    row = queries.get_media(session, version, filename) or FormMedia(
        form_version_id=version.id, filename=filename, sha256=blob.sha256, md5=blob.md5, size=blob.size,
        media_type=media_type)
    row.sha256, row.md5, row.size, row.media_type = blob.sha256, blob.md5, blob.size, media_type
    row.generated_from = generated_from
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def set_generated_media(
    session: Session,
    *,
    blobs: BlobStore,
    filename: str,
    content: bytes,
    media_type: str,
    generated_from: str,
) -> int:
    """Replace (or create) ``filename`` on every form version whose XForm references it.

    Used for files the server regenerates (``sites.csv``, ``sites.geojson`` when sites change).
    The md5 changes with the content, so tablets re-download it on their next form update.

    :returns: how many versions changed (unchanged content counts as no change).
    """
    versions = queries.versions_referencing(session, filename)
    if not versions:
        return 0
    blob = blobs.put_bytes(content)
    changed = 0
    for version in versions:
        row = queries.get_media(session, version, filename)
        if row is not None and row.sha256 == blob.sha256 and row.generated_from == generated_from:
            continue
        _put_media(session, version, filename, blob, media_type, generated_from=generated_from)
        changed += 1
    return changed


def store_generated_media(session: Session, *, blobs: BlobStore, version: FormVersion,
                          generators: Mapping[str, GeneratedMedia]) -> int:
    """Store the current content of every generated file ``version`` references (stored kind, with a
    ``generate`` callable), e.g. ``sites.geojson`` for a site-visit form uploaded after the sites.

    :returns: how many files were stored or changed (unchanged content counts as no change).
    """
    changed = 0
    for name in version.media_names or []:
        media = generators.get(name)
        if media is None or media.per_caller is not None or media.generate is None:
            continue
        content = media.generate(session)
        row = queries.get_media(session, version, name)
        if row is not None and row.sha256 == _sha256(content) \
                and row.generated_from == media.generated_from:
            continue
        _put_media(session, version, name, blobs.put_bytes(content), media.media_type,
                   generated_from=media.generated_from)
        changed += 1
    return changed


def ensure_media(
    session: Session,
    *,
    blobs: BlobStore,
    version: FormVersion,
    filename: str,
    content: bytes,
    media_type: str,
    generated_from: str,
) -> FormMedia | None:
    """Give ``version`` this file only if it has none yet (placeholders until the real file exists)."""
    if filename not in version.media_names or queries.get_media(session, version, filename) is not None:
        return None
    return _put_media(session, version, filename, blobs.put_bytes(content), media_type, generated_from=generated_from)
