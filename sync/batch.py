"""JSON sync for our own clients and integrations: batches, blobs, and the read API.

A batch is a loop over ``sync.service.receive_submission`` (the OpenRosa ingest), so both paths
share every rule: JSON ``data`` is turned into instance XML with ``build_instance_xml`` first.
Each item runs in its own SAVEPOINT; a refused item is rolled back alone and reported as
``conflict`` (409 rules: same instanceID with different content, an edit of a replaced version)
or ``invalid`` (anything else, with the error code and message), while the others are stored.

Attachments are announced by sha256. Only the bytes prove possession (issue 9, finding 5): a
file is attached at once only when its blob is stored *and* the caller sent those very bytes
before (``BlobHolder``: an OpenRosa part or a PUT of theirs); announcing a hash, however often,
grants nothing. Every other file is reported ``missing``; the client PUTs it to
``/api/v1/blobs/{sha256}``, which verifies the hash and fills the caller's own attachments
waiting for it (``SubmissionAttachment.expected_sha256``). Case-form images are stored
re-encoded under another hash; the announced (original) hash stays in ``expected_sha256``, so
resends stay idempotent. Nothing here commits.

A batch item that holds text or numbers no field can store (a lone UTF-16 surrogate, NUL, NaN,
Infinity, a number beyond float range or of more than ``MAX_INT_DIGITS`` digits) is ``invalid``
alone (finding 12); the JSON is read with ``loads`` so such numbers never fail the whole body.

Read access (design.md §6): admins and coordinators read all site-visit and general
submissions, monitors only their own (made by them or their devices), caseworkers none.
Case-form submissions and their files are never served here, to anyone: they are read through
``/api/v1/cases`` (scoped by organisation, identity reads audited; issue 9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import false, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from app import audit
from app.blobs import FilesystemBlobStore
from app.errors import DomainError, Forbidden, Invalid, NotFound, PayloadTooLarge
from app.events import Hooks
from app.identity import Actor, Role
from app.models import Device, User
from app.settings import Settings
from app.timeutil import as_utc, isoformat, utcnow
from forms.models import CASE_FORM_KINDS, Form, FormVersion
from forms.service import may_submit
from sync import media
from sync.models import Blob, BlobHolder, Submission, SubmissionAttachment
from sync.service import get_form, get_version, receive_submission
from sync.submission_xml import build_instance_xml

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
STAFF = (Role.admin, Role.coordinator)
MAX_PAGE = 1000
MEDIA_SIZES = ("thumb", "web")
#: Longer JSON integers are refused item by item (Python refuses to convert past 4300 digits).
MAX_INT_DIGITS = 100


def check_sha256(value: str) -> str:
    """A lower-case hex sha256, else 422 naming the value."""
    if not SHA256_RE.match(value or ""):
        raise Invalid(f"{value[:80]!r} is not a sha256 (64 lower-case hex digits)", code="blob.bad_hash")
    return value


# == batch ==================================================================================


class UnreadableNumber:
    """A JSON number no field can hold (NaN, Infinity, beyond float range, too many digits),
    kept as the start of its text so that only the item holding it is refused."""

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 20 else text[:20] + "..."

    def __repr__(self) -> str:
        return self.text


def _json_int(text: str) -> int | UnreadableNumber:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else UnreadableNumber(text)


def _json_float(text: str) -> float | UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else UnreadableNumber(text)


def loads(raw: bytes | str) -> Any:
    """``json.loads`` that never fails on a number: unreadable ones become ``UnreadableNumber``."""
    return json.loads(raw, parse_int=_json_int, parse_float=_json_float, parse_constant=UnreadableNumber)


def unfit(raw: Any) -> tuple[str, str] | None:
    """(code, reason) when ``raw`` holds text or a number no field can store, else None."""
    stack = [raw]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "batch.bad_text", "a string holds a NUL character"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "batch.bad_text", "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff): not Unicode text"
        elif isinstance(value, UnreadableNumber):
            return "batch.bad_number", (f"the number {value.text} cannot be stored (NaN, Infinity, beyond the float "
                                        f"range or more than {MAX_INT_DIGITS} digits); send it as a string")
        elif isinstance(value, float) and not math.isfinite(value):
            return "batch.bad_number", "NaN and Infinity cannot be stored"
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _listed(value: Any) -> list[Any]:
    """``value`` when it is a list, else nothing: the raw item is not validated yet, and a wrong
    type (``"attachments": true``, a ``sha256`` that is a list) is its own item's 422, not a 500."""
    return value if isinstance(value, list) else []


def _reported_id(raw: Any) -> str | None:
    """The item's instance_id as given, when it can be sent back as JSON text."""
    value = raw.get("instance_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and unfit(value) is None else None


class BatchAttachment(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=2**53)
    media_type: str | None = Field(default=None, max_length=100)


class BatchItem(BaseModel):
    """One submission of a batch: instance XML, or data keyed by absolute field path."""

    instance_id: str = Field(min_length=1, max_length=200)
    form_id: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=100)
    xml: str | None = None
    data: dict[str, Any] | None = None
    deprecated_id: str | None = Field(default=None, max_length=200)
    attachments: list[BatchAttachment] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _xml_or_data(self) -> BatchItem:
        if (self.xml is None) == (self.data is None):
            raise ValueError("give exactly one of 'xml' (instance XML) or 'data' (values by field path)")
        return self


@dataclass
class ItemResult:
    instance_id: str | None
    status: str  # created | duplicate | edit | conflict | invalid
    reason: str | None = None
    code: str | None = None
    #: sha256 of announced attachments the server still needs (PUT /api/v1/blobs/{sha256}).
    missing: list[str] = field(default_factory=list)
    #: Files the XML references that the item did not announce (they cannot be uploaded by hash).
    missing_names: list[str] = field(default_factory=list)
    complete: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instance_id": self.instance_id, "status": self.status, "missing": self.missing}
        if self.reason is not None:
            out["reason"] = self.reason
            out["code"] = self.code
        if self.missing_names:
            out["missing_names"] = self.missing_names
        if self.complete is not None:
            out["complete"] = self.complete
        return out


def sync_batch(session: Session, *, blobs: FilesystemBlobStore, settings: Settings, hooks: Hooks, actor: Actor,
               items: list[Any], device: str | None = None, user_agent: str | None = None) -> list[ItemResult]:
    """Store a batch of submissions, one result per item, in order.

    :param items: raw JSON objects (validated one by one, so one malformed item only fails itself).
    :param device: the client's own device name/id, kept like OpenRosa's ``?deviceID=``.
    :raises PayloadTooLarge: more than ``settings.max_batch_items`` items.
    """
    if len(items) > settings.max_batch_items:
        raise PayloadTooLarge(f"a batch may hold at most {settings.max_batch_items} items; this one has {len(items)}",
                              code="batch.too_many_items", details={"limit": settings.max_batch_items})
    problems = [unfit(raw) for raw in items]
    fit = [raw for raw, bad in zip(items, problems, strict=True) if bad is None and isinstance(raw, dict)]
    announced = {a.get("sha256") for item in fit for a in _listed(item.get("attachments"))
                 if isinstance(a, dict) and isinstance(a.get("sha256"), str)}
    _begin_write(session)
    held = _hashes_held(session, actor, {h for h in announced if isinstance(h, str) and SHA256_RE.match(h)})
    client_device = device or (actor.device.name if actor.device else None)
    versions: dict[tuple[str, str | None], tuple[Form, FormVersion | None]] = {}
    known = _known(session, [raw.get("instance_id") for raw in fit])
    return [ItemResult(instance_id=_reported_id(raw), status="invalid", code=bad[0], reason=bad[1])
            if bad is not None else
            _sync_item(session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, raw=raw, held=held,
                       device=client_device, user_agent=user_agent, versions=versions, known=known)
            for raw, bad in zip(items, problems, strict=True)]


@dataclass(frozen=True)
class _Known:
    form_id: int
    xml_sha256: str
    complete: bool
    deprecated_id: str | None


def _known(session: Session, instance_ids: list[Any]) -> dict[str, _Known]:
    """What the server already holds of the batch's instances (one query): retried batches are common."""
    wanted = [i for i in instance_ids if isinstance(i, str)]
    if not wanted:
        return {}
    rows = session.exec(select(Submission.instance_id, Submission.form_id, Submission.xml_sha256, Submission.complete,
                               Submission.deprecated_id).where(col(Submission.instance_id).in_(wanted)))
    return {iid: _Known(form_id, sha, complete, dep) for iid, form_id, sha, complete, dep in rows}


def _already_complete(known: _Known | None, *, form: Form, xml: bytes, item: BatchItem, actor: Actor) -> bool:
    """A byte-identical resend of a complete submission: ``duplicate`` without the ingest round trip
    (exactly what ``receive_submission`` would answer; anything else goes through it)."""
    if known is None or not known.complete or known.form_id != form.id:
        return False
    if item.deprecated_id and item.deprecated_id != known.deprecated_id:
        return False
    return known.xml_sha256 == hashlib.sha256(xml).hexdigest() and may_submit(actor, form)


def _begin_write(session: Session) -> None:
    """On SQLite, take the write lock before the first read of the batch.

    A transaction that reads first and writes later cannot wait for a concurrent writer (SQLite
    answers "database is locked" at once instead of using the busy timeout); one that starts by
    writing simply waits its turn. PostgreSQL needs nothing of the kind.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE submission SET id = id WHERE 0"))


def _sync_item(session: Session, *, blobs: FilesystemBlobStore, settings: Settings, hooks: Hooks, actor: Actor, raw: Any,
               held: set[str], device: str | None, user_agent: str | None,
               versions: dict[tuple[str, str | None], tuple[Form, FormVersion | None]],
               known: dict[str, _Known]) -> ItemResult:
    raw_id = raw.get("instance_id") if isinstance(raw, dict) else None
    try:
        item = BatchItem.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ItemResult(instance_id=raw_id if isinstance(raw_id, str) else None, status="invalid",
                          code="batch.item_invalid", reason=f"{where}: {first.get('msg')}" if where else first.get("msg"))
    try:
        form, xml = _item_xml(session, item, versions)
        if _already_complete(known.get(item.instance_id), form=form, xml=xml, item=item, actor=actor):
            return ItemResult(instance_id=item.instance_id, status="duplicate", complete=True)
        with session.begin_nested():
            files = [media.IncomingFile(name=a.name, path=blobs.path(a.sha256), size=a.size, media_type=a.media_type)
                     for a in item.attachments if a.sha256 in held and blobs.exists(a.sha256)]
            result = receive_submission(session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, xml=xml, files=files,
                                        client_device_id=device, user_agent=user_agent)
            submission = result.submission
            if submission.instance_id != item.instance_id or submission.form_id != form.id:
                raise Invalid(f"the XML is instance {submission.instance_id!r} of another form or id than the item "
                              f"says ({item.form_id!r}, {item.instance_id!r})", code="batch.item_mismatch")
            if item.xml is not None and item.version is not None and result.status != "duplicate":
                stored_version = session.get(FormVersion, submission.form_version_id)
                if stored_version is not None and stored_version.version != item.version:
                    raise Invalid(f"the XML is on version {stored_version.version!r} of {item.form_id!r}, not "
                                  f"{item.version!r} as the item says", code="batch.item_mismatch")
            if item.deprecated_id and submission.deprecated_id != item.deprecated_id:
                raise Invalid(f"the XML's meta/deprecatedID is {submission.deprecated_id!r}, not "
                              f"{item.deprecated_id!r}", code="batch.item_mismatch")
            if item.attachments:
                missing, missing_names = _expect(session, submission, item.attachments)
            else:
                missing, missing_names = [], list(result.missing)
    except DomainError as exc:
        return ItemResult(instance_id=item.instance_id, status="conflict" if exc.status_code == 409 else "invalid",
                          code=exc.code, reason=exc.message)
    except OperationalError as exc:
        if session.get_bind().dialect.name != "postgresql":
            raise
        # A deadlock with a concurrent upload of overlapping items: PostgreSQL rolled back this
        # item's savepoint only; the client resends it (idempotent) and gets its real status.
        return ItemResult(instance_id=item.instance_id, status="conflict", code="batch.retry",
                          reason=f"a concurrent upload touched this submission; send it again ({type(exc.orig).__name__})")
    status = "duplicate" if result.status == "attachments_added" else result.status
    return ItemResult(instance_id=item.instance_id, status=status, missing=missing, missing_names=missing_names,
                      complete=submission.complete)


def _item_xml(session: Session, item: BatchItem,
              versions: dict[tuple[str, str | None], tuple[Form, FormVersion | None]]) -> tuple[Form, bytes]:
    """The item's instance XML: as sent, or built from its data on the named (default: published) version."""
    key = (item.form_id, item.version if item.data is not None else None)
    if key not in versions:  # one lookup per form and version per batch
        form = get_form(session, item.form_id)
        versions[key] = (form, get_version(session, form, item.version) if item.data is not None else None)
    form, version = versions[key]
    if item.xml is not None:
        return form, item.xml.encode("utf-8")
    _check_values(item.data or {}, {f["path"] for f in version.fields or [] if f.get("kind") == "repeat"})
    try:
        return form, build_instance_xml(version, item.data or {}, item.instance_id, item.deprecated_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Invalid(f"data cannot be turned into instance XML: {exc}", code="batch.bad_data") from exc


SCALARS = (str, int, float, bool)


def _check_values(data: dict[str, Any], repeats: set[str]) -> None:
    """JSON values must be what a field can hold: scalars, a list of them (select multiple), or for a
    repeat a list of objects — never an object where the XML has one element."""
    for path, value in data.items():
        if path in repeats and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for entry in value:
                _check_values(entry, repeats)
        elif value is None or isinstance(value, SCALARS) or (
                isinstance(value, list) and all(isinstance(v, SCALARS) for v in value) and path not in repeats):
            continue
        else:
            raise Invalid(f"{path}: a {type(value).__name__} cannot be a field's value here (use a string, number, "
                          "boolean, a list of choices, or a list of objects for a repeat)",
                          code="submission.invalid_value", details={"field": path})


def _expect(session: Session, submission: Submission,
            announced: list[BatchAttachment]) -> tuple[list[str], list[str]]:
    """Remember the announced hash of every attachment still missing; (missing hashes, unannounced names)."""
    rows = {r.name: r for r in session.exec(
        select(SubmissionAttachment).where(SubmissionAttachment.submission_id == submission.id))}
    missing: list[str] = []
    names = {a.name for a in announced}
    for claim in announced:
        row = rows.get(claim.name)
        if row is None:  # the XML does not reference it: ignored, like OpenRosa extra parts
            continue
        if row.received:
            if row.expected_sha256 is None:
                row.expected_sha256 = claim.sha256
                session.add(row)
            continue
        if row.expected_sha256 != claim.sha256:
            row.expected_sha256 = claim.sha256
            row.media_type = row.media_type or claim.media_type
            session.add(row)
        if claim.sha256 not in missing:
            missing.append(claim.sha256)
    session.flush()
    return missing, [name for name, row in rows.items() if not row.received and name not in names]


def _hashes_held(session: Session, actor: Actor, hashes: set[str]) -> set[str]:
    """The hashes whose bytes the caller has sent before (``BlobHolder``); admins included:
    knowing or announcing a hash proves nothing."""
    if not hashes:
        return set()
    return set(session.exec(select(BlobHolder.sha256).where(BlobHolder.user_id == actor.user.id,
                                                            col(BlobHolder.sha256).in_(hashes))))


def _holds(session: Session, actor: Actor, sha256: str) -> bool:
    return bool(_hashes_held(session, actor, {sha256}))


# == blobs ==================================================================================


@dataclass
class Spooled:
    """A request body written to a temp file, with its hash."""

    path: Path
    sha256: str
    size: int


async def spool(chunks: AsyncIterator[bytes], *, directory: Path, max_bytes: int) -> Spooled:
    """Write a body to a temp file in ``directory`` while hashing it; 413 past ``max_bytes``."""
    sha, size = hashlib.sha256(), 0
    fd, name = tempfile.mkstemp(dir=directory, prefix="put-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the file is larger than the limit of {max_bytes} bytes",
                                          code="blob.too_large", details={"limit": max_bytes})
                sha.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Spooled(path=Path(name), sha256=sha.hexdigest(), size=size)


def _waiting_query(sha256: str):  # noqa: ANN202
    return (select(SubmissionAttachment, Submission)
            .join(Submission, col(Submission.id) == col(SubmissionAttachment.submission_id))
            .where(SubmissionAttachment.expected_sha256 == sha256))


def authorise_blob(session: Session, *, actor: Actor, sha256: str) -> None:
    """Only a caller with a submission expecting ``sha256`` (or an admin) may PUT it (a refusal
    says nothing about whether the file exists)."""
    check_sha256(sha256)
    if actor.role == Role.admin:
        return
    mine = session.exec(_waiting_query(sha256).where(Submission.submitted_by_user_id == actor.user.id).limit(1)).first()
    if mine is None:
        raise Forbidden("none of your submissions expects a file with this sha256; announce it in a batch first",
                        code="blob.not_expected")


def blob_present(session: Session, *, actor: Actor, sha256: str) -> bool:
    """True when the caller need not upload ``sha256``: they sent these very bytes before and none
    of their attachments still waits for them (a case-form photo is stored stripped, under another
    hash). A file that is absent and one that is someone else's answer the same: False."""
    check_sha256(sha256)
    if not _holds(session, actor, sha256):
        return False
    waiting = session.exec(_waiting_query(sha256).where(Submission.submitted_by_user_id == actor.user.id,
                                                        SubmissionAttachment.received.is_(False)).limit(1)).first()
    return waiting is None


@dataclass
class BlobReceipt:
    sha256: str
    created: bool
    #: instance ids whose attachments this upload filled.
    attached: list[str] = field(default_factory=list)


def receive_blob(session: Session, *, blobs: FilesystemBlobStore, settings: Settings, actor: Actor, sha256: str,
                 upload: Spooled, media_type: str | None = None) -> BlobReceipt:
    """Verify an uploaded file against its hash and fill the caller's attachments waiting for it
    (never another user's: they must send the bytes themselves). The caller then holds the file.

    Images are checked (and stripped for case and sensitive forms) by ``sync.media`` exactly as
    OpenRosa parts are. Idempotent: a second upload of the same file fills nothing and is not an error.

    :raises Invalid: the body's sha256 differs from ``sha256`` (nothing is stored).
    """
    authorise_blob(session, actor=actor, sha256=sha256)
    if upload.sha256 != sha256:
        raise Invalid(f"the body's sha256 is {upload.sha256}, not {sha256}; nothing was stored",
                      code="blob.hash_mismatch", details={"expected": sha256, "received": upload.sha256})
    existed = blobs.exists(sha256)
    rows = [(att, sub) for att, sub in session.exec(
        _waiting_query(sha256).where(Submission.submitted_by_user_id == actor.user.id)).all() if not att.received]
    attached: list[str] = []
    with tempfile.TemporaryDirectory(dir=blobs.tmp, prefix="blob-") as workdir:
        #: One check and store per way of handling the file (stripped or not, image question or not).
        stored: dict[tuple[bool, bool, bool], Blob] = {}
        forms = _forms(session, {sub.form_id for _, sub in rows})
        images: dict[int, frozenset[str]] = {}
        for att, sub in rows:
            strip = media.strips_metadata(forms[sub.form_id])
            if sub.form_version_id not in images:
                version = session.get(FormVersion, sub.form_version_id)
                images[sub.form_version_id] = media.image_fields(version.fields if version else [])
            expects_image = att.field_path in images[sub.form_version_id]
            declared = att.media_type or media_type
            key = (strip, strip and expects_image, media.looks_like_image(att.name, declared))
            blob = stored.get(key)
            if blob is None:
                prepared = media.prepare(media.IncomingFile(name=att.name, path=upload.path, size=upload.size,
                                                            media_type=declared),
                                         settings=settings, strip_metadata=strip, expects_image=expects_image,
                                         workdir=Path(workdir))
                blob = stored[key] = media.store(session, blobs, prepared, settings=settings, holder=actor.user.id)
            att.sha256, att.size, att.media_type = blob.sha256, blob.size, blob.media_type
            att.received, att.received_at = True, utcnow()
            session.add(att)
            _recount(session, sub)
            attached.append(sub.instance_id)
            audit.record(session, "submission.attachment_add", actor=actor, object_type="submission",
                         object_id=sub.instance_id, name=att.name, sha256=blob.sha256, size=blob.size, via="blob")
        if not rows and not existed and actor.role == Role.admin and not _announced_anywhere(session, sha256):
            stored_blob = blobs.put_file(upload.path, max_bytes=settings.max_attachment_bytes)
            media.upsert_blob(session, sha256=stored_blob.sha256, size=stored_blob.size,
                              media_type=media_type or "application/octet-stream")
        media.record_holder(session, user_id=actor.user.id, sha256=sha256)
    session.flush()
    return BlobReceipt(sha256=sha256, created=not existed and blobs.exists(sha256), attached=attached)


def _announced_anywhere(session: Session, sha256: str) -> bool:
    return session.exec(_waiting_query(sha256).limit(1)).first() is not None


def _recount(session: Session, submission: Submission) -> None:
    session.flush()
    received = session.exec(select(SubmissionAttachment.received)
                            .where(SubmissionAttachment.submission_id == submission.id)).all()
    submission.attachments_expected = len(received)
    submission.attachments_present = sum(1 for r in received if r)
    submission.complete = submission.attachments_present >= submission.attachments_expected
    submission.updated_at = utcnow()
    session.add(submission)


def _forms(session: Session, form_ids: set[int]) -> dict[int, Form]:
    if not form_ids:
        return {}
    return {form.id: form for form in session.exec(select(Form).where(col(Form.id).in_(form_ids)))}


# == read API ===============================================================================


#: Who may list a case form's submissions at all; each row is then checked by the cases rule.
CASE_READERS = (Role.caseworker, Role.coordinator)


def _readable_form(session: Session, actor: Actor, xml_form_id: str) -> Form:
    form = get_form(session, xml_form_id)
    if form.kind in CASE_FORM_KINDS:
        if actor.role not in CASE_READERS:
            raise Forbidden(f"submissions of case form {xml_form_id!r} are readable only by the owning "
                            "organisation's caseworkers", code="submission.case_data")
    elif actor.role == Role.caseworker:
        raise Forbidden("caseworkers do not read site-visit data", code="submission.forbidden")
    return form


def _may_read(session: Session, actor: Actor, submission: Submission, form_kind: str) -> bool:
    """design.md §6. Case-form submissions never: they are read through /api/v1/cases (issue 9)."""
    if form_kind in CASE_FORM_KINDS:
        return False
    if actor.role == Role.caseworker:
        return False
    return actor.role in STAFF or submission.submitted_by_user_id == actor.user.id


def parse_when(value: str | None, *, name: str, end: bool = False) -> datetime | None:
    """An ISO date or datetime (naive = UTC); a bare date covers the whole day."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return as_utc(datetime.combine(date.fromisoformat(value), time.max if end else time.min))
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise Invalid(f"{name}={value[:40]!r} is not an ISO date (2026-03-01) or datetime", code="request.bad_date",
                      details={"field": name}) from exc


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"s{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise Invalid("cursor is not one this server gave out; start again without it", code="request.bad_cursor",
                      details={"field": "cursor"}) from exc


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def list_submissions(session: Session, *, actor: Actor, xml_form_id: str, limit: int = 100,
                     cursor: str | None = None, offset: int | None = None, since: str | None = None,
                     until: str | None = None, device: str | None = None, site: str | None = None) -> Page:
    """Current submissions of a form in the order received, filtered and paged.

    :param since: / :param until: ISO date or datetime on ``received_at`` (when the server got it).
    :param device: a device name (token devices) or the client's deviceID (``collect:...``).
    :param site: a site code; only submissions mapped to that site.
    :param cursor: the ``next_cursor`` of the previous page (keyset paging, stable under inserts);
        ``offset`` is accepted for simple clients.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}", code="request.bad_limit", details={"field": "limit"})
    if offset is not None and offset < 0:
        raise Invalid("offset must be 0 or more", code="request.bad_offset", details={"field": "offset"})
    form = _readable_form(session, actor, xml_form_id)
    case_form = form.kind in CASE_FORM_KINDS
    query = select(Submission).where(Submission.form_id == form.id, Submission.current.is_(True))
    if case_form:  # read through /api/v1/cases only: no row here, so no page or cursor counts them (issue 9, 11)
        query = query.where(false())
    elif actor.role not in STAFF:
        query = query.where(Submission.submitted_by_user_id == actor.user.id)
    start, end = parse_when(since, name="since"), parse_when(until, name="until", end=True)
    if start is not None:
        query = query.where(Submission.received_at >= start)
    if end is not None:
        query = query.where(Submission.received_at <= end)
    if device:
        device_row = session.exec(select(Device).where(Device.name == device)).first()
        query = query.where((Submission.client_device_id == device)
                            | (Submission.device_id == (device_row.id if device_row else -1)))
    if site:
        from geodata.models import Site

        site_row = session.exec(select(Site).where(Site.code == site)).first()
        query = query.where(Submission.site_id == (site_row.id if site_row else -1))
    if cursor:
        query = query.where(Submission.id > decode_cursor(cursor))
    query = query.order_by(col(Submission.id)).limit(limit + 1)
    if offset and not cursor:
        query = query.offset(offset)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor_row = rows[-1] if more and rows else None
    return Page(items=describe(session, rows, {form.id: form}),
                next_cursor=encode_cursor(cursor_row.id) if cursor_row is not None else None)


def get_submission(session: Session, *, actor: Actor, instance_id: str) -> dict[str, Any]:
    """One submission (any version) with its record's edit history, oldest first."""
    submission = session.exec(select(Submission).where(Submission.instance_id == instance_id)).first()
    form = session.get(Form, submission.form_id) if submission is not None else None
    if submission is None or form is None or not _may_read(session, actor, submission, form.kind):
        raise NotFound(f"no submission {instance_id!r} that you may read", code="submission.not_found")
    history = list(session.exec(select(Submission).where(Submission.root_instance_id == submission.root_instance_id)
                                .order_by(col(Submission.received_at), col(Submission.id))))
    history = [h for h in history if h.id == submission.id or _may_read(session, actor, h, form.kind)]
    described = describe(session, history, {form.id: form})
    by_id = {d["instance_id"]: d for d in described}
    out = dict(by_id[submission.instance_id])
    out["history"] = [{k: d[k] for k in ("instance_id", "deprecated_id", "current", "superseded_by", "received_at",
                                         "submitter", "device", "version")} for d in described]
    out["versions"] = described
    return out


def describe(session: Session, rows: list[Submission], forms: dict[int, Form]) -> list[dict[str, Any]]:
    """Submissions as JSON, with submitter, device, site and attachment URLs (a few queries per page)."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    attachments: dict[int, list[SubmissionAttachment]] = {}
    for att in session.exec(select(SubmissionAttachment).where(col(SubmissionAttachment.submission_id).in_(ids))
                            .order_by(col(SubmissionAttachment.id))):
        attachments.setdefault(att.submission_id, []).append(att)
    users = _names(session, User, User.username, {r.submitted_by_user_id for r in rows})
    devices = _names(session, Device, Device.name, {r.device_id for r in rows})
    versions = _names(session, FormVersion, FormVersion.version, {r.form_version_id for r in rows})
    from geodata.models import Site

    sites = _names(session, Site, Site.code, {r.site_id for r in rows})
    out = []
    for r in rows:
        form = forms.get(r.form_id) or session.get(Form, r.form_id)
        out.append({
            "instance_id": r.instance_id,
            "root_instance_id": r.root_instance_id,
            "deprecated_id": r.deprecated_id,
            "current": r.current,
            "superseded_by": r.superseded_by,
            "form_id": form.xml_form_id if form else None,
            "version": versions.get(r.form_version_id),
            "submitter": users.get(r.submitted_by_user_id),
            "device": devices.get(r.device_id),
            "client_device_id": r.client_device_id,
            "received_at": isoformat(r.received_at),
            "data": r.data,
            "lon": r.lon, "lat": r.lat, "altitude": r.altitude, "accuracy": r.accuracy,
            "site": sites.get(r.site_id), "site_distance_m": r.site_distance_m, "site_match": r.site_match,
            "site_flag": r.site_flag,
            "review_state": r.review_state,
            "complete": r.complete,
            "attachments_expected": r.attachments_expected,
            "attachments_present": r.attachments_present,
            "attachments": [{"name": a.name, "field": a.field_path, "received": a.received,
                             "sha256": a.sha256 if a.received else None, "size": a.size, "media_type": a.media_type,
                             "url": f"/api/v1/media/{a.sha256}" if a.received and a.sha256 else None}
                            for a in attachments.get(r.id, [])],
        })
    return out


def _names(session: Session, model: type, column: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.exec(select(model.id, column).where(col(model.id).in_(wanted))).all())


@dataclass
class MediaFile:
    path: Path
    media_type: str
    etag: str
    size: int


def media_file(session: Session, *, blobs: FilesystemBlobStore, actor: Actor, sha256: str,
               size: str | None = None) -> MediaFile:
    """A stored file the caller may read, or its derived ``thumb``/``web`` JPEG (issue 9, finding 5).

    Readable: bytes the caller sent themselves (``BlobHolder``), or an attachment of a submission
    they may read. Never a file of a case-form submission: those go out only through the case
    photo route, scoped and audited. Not readable and not stored look the same: 404.
    """
    check_sha256(sha256)
    if size is not None and size not in MEDIA_SIZES:
        raise Invalid(f"size must be one of {', '.join(MEDIA_SIZES)}", code="media.bad_size", details={"field": "size"})
    not_found = NotFound(f"no media {sha256} that you may read", code="media.not_found")
    query = (select(Submission, Form)
             .join(SubmissionAttachment, col(SubmissionAttachment.submission_id) == col(Submission.id))
             .join(Form, col(Form.id) == col(Submission.form_id))
             .where(SubmissionAttachment.sha256 == sha256, SubmissionAttachment.received.is_(True)))
    if session.exec(query.where(col(Form.kind).in_(CASE_FORM_KINDS)).limit(1)).first() is not None:
        raise not_found
    if actor.role == Role.monitor:
        query = query.where(Submission.submitted_by_user_id == actor.user.id)
    readable = any(_may_read(session, actor, sub, form.kind) for sub, form in session.exec(query.limit(50)))
    if not readable and not _holds(session, actor, sha256):
        raise not_found
    blob = session.get(Blob, sha256)
    if blob is None or not blobs.exists(sha256):
        raise not_found
    if size is None:
        path, media_type, etag = blobs.path(sha256), blob.media_type, f'"{sha256}"'
    else:
        path, media_type, etag = blobs.derived_path(sha256, size), "image/jpeg", f'"{sha256}-{size}"'
        if not path.exists():
            raise NotFound(f"media {sha256} has no {size} size (only images have one)", code="media.no_variant")
    return MediaFile(path=path, media_type=media_type, etag=etag, size=path.stat().st_size)
