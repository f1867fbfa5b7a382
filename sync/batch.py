"""JSON batch sync for our own clients and integrations (``POST /api/v1/sync/batches``).

Both paths share every rule: JSON ``data`` is turned into instance XML with ``build_instance_xml``
first and read back as the OpenRosa ingest reads it. Items are stored in order, two ways (issue 13):

* a *run* of consecutive plain new submissions (no edit, no attachment, not a case form, not yet on
  the server) is stored together in one SAVEPOINT: one multi-row insert per table, each item read and
  checked as ``receive_submission`` does, the same events (``SubmissionInserting``/``SubmissionStored``)
  and audit entry per submission; if anything in the run fails, the run is rolled back and its items
  go the second way;
* every other item goes through ``sync.ingest.receive_submission`` in its own SAVEPOINT.

A refused item is rolled back alone and reported as ``conflict`` (409 rules: same instanceID with
different content, an edit of a replaced version) or ``invalid`` (anything else, with the error
code and message), while the others are stored.

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

Blob uploads (``HEAD``/``PUT /api/v1/blobs``) are ``sync.blob_uploads``; the read API (submission
lists and detail, media) is ``sync.reading``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from app import audit
from app.blobs import BlobStore
from app.errors import DomainError
from app.events import Hooks, SubmissionInserting, SubmissionStored
from app.identity import Actor
from app.models import AuditLog
from app.rawsql import FastInsert, loaded
from app.settings import Settings
from forms.models import CASE_FORM_KINDS, Form, FormState, FormVersion
from forms.service import may_submit
from sync import media, queries, submission_xml
from sync.blob_uploads import SHA256_RE, hashes_held
from sync.errors import BatchBadData, BatchItemMismatch, BatchTooManyItems, SubmissionInvalidValue
from sync.form_lookup import get_form, get_version
from sync.ingest import new_row, receive_submission
from sync.models import Submission
from sync.submission_xml import build_instance_xml

#: Longer JSON integers are refused item by item (Python refuses to convert past 4300 digits).
MAX_INT_DIGITS = 100


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


def sync_batch(session: Session, *, blobs: BlobStore, settings: Settings, hooks: Hooks, actor: Actor,
               items: list[Any], device: str | None = None, user_agent: str | None = None) -> list[ItemResult]:
    """Store a batch of submissions, one result per item, in order.

    :param items: raw JSON objects (validated one by one, so one malformed item only fails itself).
    :param device: the client's own device name/id, kept like OpenRosa's ``?deviceID=``.
    :raises PayloadTooLarge: more than ``settings.max_batch_items`` items.
    """
    if len(items) > settings.max_batch_items:
        raise BatchTooManyItems(f"a batch may hold at most {settings.max_batch_items} items; this one has {len(items)}",
                                details={"limit": settings.max_batch_items})
    problems = [unfit(raw) for raw in items]
    fit = [raw for raw, bad in zip(items, problems, strict=True) if bad is None and isinstance(raw, dict)]
    announced = {a.get("sha256") for item in fit for a in _listed(item.get("attachments"))
                 if isinstance(a, dict) and isinstance(a.get("sha256"), str)}
    _begin_write(session)
    held = hashes_held(session, actor, {h for h in announced if isinstance(h, str) and SHA256_RE.match(h)})
    client_device = device or (actor.device.name if actor.device else None)
    versions: dict[tuple[str, str | None], tuple[Form, FormVersion | None]] = {}
    known = _known(session, [raw.get("instance_id") for raw in fit])
    context = _Context(session=session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, held=held,
                       device=client_device, user_agent=user_agent, versions=versions, known=known)
    results: list[ItemResult | None] = [None] * len(items)
    run: list[_NewSubmission] = []  # consecutive plain new submissions, stored together
    in_run: set[str] = set()
    for index, (raw, bad) in enumerate(zip(items, problems, strict=True)):
        if bad is not None:
            results[index] = ItemResult(instance_id=_reported_id(raw), status="invalid", code=bad[0], reason=bad[1])
            continue
        outcome = _prepare_item(context, index, raw, pending=in_run)
        if isinstance(outcome, _NewSubmission):
            run.append(outcome)
            in_run.add(outcome.instance_id)
        elif isinstance(outcome, ItemResult):  # decided without reading or writing what the run writes
            results[index] = outcome
        else:
            # An item for the ingest waits for the run before it: items keep their order's effects (an
            # edit of a submission created earlier in the batch finds it).
            _store_run(context, run, results)
            run, in_run = [], set()
            results[index] = _sync_item(context, raw, outcome)
    _store_run(context, run, results)
    return results  # type: ignore[return-value]


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
    return {iid: _Known(form_id, sha, complete, dep)
            for iid, form_id, sha, complete, dep in queries.known_instances(session, wanted)}


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


@dataclass
class _Context:
    """What every item of one batch is stored with."""

    session: Session
    blobs: BlobStore
    settings: Settings
    hooks: Hooks
    actor: Actor
    held: set[str]
    device: str | None
    user_agent: str | None
    versions: dict[tuple[str, str | None], tuple[Form, FormVersion | None]]
    known: dict[str, _Known]
    #: (form id, version named in the XML) -> the version, for the bulk path's lookups.
    xml_versions: dict[tuple[int, str], FormVersion] = field(default_factory=dict)


@dataclass
class _NewSubmission:
    """A batch item that is a plain new submission (no edit, no attachment, not a case form, not
    known to the server), read and checked like ``receive_submission`` does before its insert."""

    index: int
    raw: dict[str, Any]
    instance_id: str
    form: Form
    version: FormVersion
    values: dict[str, Any]
    geopoints: list[submission_xml.Geopoint]


def _validated(raw: Any) -> BatchItem | ItemResult:
    raw_id = raw.get("instance_id") if isinstance(raw, dict) else None
    try:
        return BatchItem.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ItemResult(instance_id=raw_id if isinstance(raw_id, str) else None, status="invalid",
                          code="batch.item_invalid", reason=f"{where}: {first.get('msg')}" if where else first.get("msg"))


@dataclass(frozen=True)
class _Read:
    """An item validated and turned into instance XML, for the per-item path (read only once)."""

    item: BatchItem
    form: Form
    xml: bytes


def _prepare_item(context: _Context, index: int, raw: dict[str, Any], *, pending: set[str]
                  ) -> _NewSubmission | ItemResult | _Read:
    """The item's result when it is decided without writing (invalid, a complete duplicate), a
    ``_NewSubmission`` for the bulk path, or ``_Read``: the item goes through ``receive_submission``
    alone (edits, attachments, case forms, resends, and every refusal, so its answer is exactly the
    ingest's)."""
    item = _validated(raw)
    if isinstance(item, ItemResult):
        return item
    try:
        form, xml = _item_xml(context.session, item, context.versions)
    except DomainError as exc:
        return _refused(item, exc)
    known = context.known.get(item.instance_id)
    if _already_complete(known, form=form, xml=xml, item=item, actor=context.actor):
        return ItemResult(instance_id=item.instance_id, status="duplicate", complete=True)
    if (known is not None or item.instance_id in pending or item.deprecated_id or item.attachments
            or form.kind in CASE_FORM_KINDS or form.state == FormState.closed or not may_submit(context.actor, form)):
        return _Read(item, form, xml)
    return _new_submission(context, index, raw, item, form, xml) or _Read(item, form, xml)


def _new_submission(context: _Context, index: int, item_raw: dict[str, Any], item: BatchItem, form: Form,
                    xml: bytes) -> _NewSubmission | None:
    """The row ``receive_submission`` would insert for this item, or None when any of its checks
    would refuse it or the item needs more than an insert (the per-item path then answers)."""
    try:
        instance = submission_xml.parse_instance(xml)
        if (instance.form_id != form.xml_form_id or instance.instance_id != item.instance_id
                or instance.deprecated_id is not None):
            return None
        key = (form.id, instance.version)
        version = context.xml_versions.get(key)
        if version is None:
            version = context.xml_versions[key] = get_version(context.session, form, instance.version)
        if item.xml is not None and item.version is not None and version.version != item.version:
            return None
        parsed = submission_xml.read_data(instance, version.fields or [])
        xml_text = xml.decode("utf-8")
    except (DomainError, UnicodeDecodeError):
        return None
    if parsed.attachments:
        return None
    values = new_row(instance=instance, parsed=parsed, form=form, version=version, actor=context.actor,
                     xml_text=xml_text, xml_sha=hashlib.sha256(xml).hexdigest(), root=None,
                     client_device_id=context.device, user_agent=context.user_agent)
    return _NewSubmission(index=index, raw=item_raw, instance_id=instance.instance_id, form=form, version=version, values=values,
                          geopoints=parsed.geopoints)


@contextmanager
def _savepoint(session: Session) -> Iterator[None]:
    """A SAVEPOINT whose rollback also takes out of the session the submissions attached inside it.

    Their rows are gone, but a reference held elsewhere (a subscriber's) would keep the stale object in
    the identity map, and the next insert, which on SQLite reuses the rolled-back row id, could not
    attach its own submission (InvalidRequestError: a 500 for the whole batch).
    """
    before = {key for key in session.identity_map.keys() if key[0] is Submission}
    try:
        with session.begin_nested():
            yield
    except BaseException:
        for key in [k for k in session.identity_map.keys() if k[0] is Submission and k not in before]:
            stale = session.identity_map.get(key)
            if stale is not None:
                session.expunge(stale)
        raise


def _store_run(context: _Context, run: list[_NewSubmission], results: list[ItemResult | None]) -> None:
    """Store a run of new submissions with one statement per table instead of one per item.

    The run gets one SAVEPOINT: if anything in it is refused (a hook's refusal, a deadlock, any
    database error), the run is rolled back and every item goes through the per-item path, each in
    its own SAVEPOINT as before, so a refused item is still refused alone and answers exactly as
    before. An instanceID a concurrent upload inserted first is left to the per-item path too (it
    answers as a resend).
    """
    if not run:
        return
    session = context.session
    stored: dict[str, Submission] = {}
    try:
        with _savepoint(session):
            _insert_run(context, run, stored)
    except (DomainError, DBAPIError):
        stored = {}
    for new in run:
        submission = stored.get(new.instance_id)
        results[new.index] = (ItemResult(instance_id=new.instance_id, status="created", complete=submission.complete)
                              if submission is not None else None)
    for new in run:
        if results[new.index] is None:
            results[new.index] = _sync_item(context, new.raw)


def _insert_run(context: _Context, run: list[_NewSubmission], stored: dict[str, Submission]) -> None:
    """Insert the run's rows; ``stored`` gets each new submission by instanceID as it is attached."""
    session, actor = context.session, context.actor
    for new in run:  # capabilities fill the columns they own (geodata: the site), as for one upload
        context.hooks.emit(SubmissionInserting(session=session, values=new.values, form=new.form, version=new.version,
                                               settings=context.settings))
    # Pending changes (a device's last_seen_at) go first, as the per-item insert does.
    session.flush()
    ids = _insert_submissions(session, [new.values for new in run])
    for new in run:
        new_id = ids.get(new.instance_id)
        if new_id is not None:
            stored[new.instance_id] = submission = loaded(Submission, {"id": new_id, **new.values})
            session.add(submission)
    _insert_geopoints(session, [
        {"submission_id": stored[new.instance_id].id, "field_path": p.field_path, "repeat_index": p.ordinal,
         "lon": p.lon, "lat": p.lat, "altitude": p.altitude, "accuracy": p.accuracy}
        for new in run if new.instance_id in stored for p in new.geopoints])
    entries = []
    for new in run:
        submission = stored.get(new.instance_id)
        if submission is None:
            continue
        context.hooks.emit(SubmissionStored(session=session, submission=submission, form=new.form, version=new.version,
                                            actor=actor, settings=context.settings, blobs=context.blobs))
        entries.append(audit.entry_values("submission.create", actor=actor, object_type="submission",
                                          object_id=submission.instance_id,
                                          details={"form": new.form.xml_form_id, "version": new.version.version}))
    _insert_audit(session, entries)
    session.flush()


_AUDIT_INSERT = FastInsert(AuditLog.__table__)  # type: ignore[attr-defined]


_SQLITE_INSERT = (sqlite.insert(Submission.__table__)  # type: ignore[attr-defined]
                  .on_conflict_do_nothing(index_elements=["instance_id"])
                  .returning(Submission.__table__.c.instance_id, Submission.__table__.c.id))  # type: ignore[attr-defined]


def _insert_submissions(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """``INSERT .. ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id, id`` for many rows in
    one statement: {instanceID: new id}; a known instanceID is absent. SQLite: SQLAlchemy's multi-row
    VALUES ("insertmanyvalues"); PostgreSQL: ``_json_insert``."""
    if _is_postgresql(session):
        result = _json_insert(session, "submission", rows, "ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id, id")
    else:
        result = session.execute(_SQLITE_INSERT, rows)
    return {instance_id: new_id for instance_id, new_id in result}


def _insert_geopoints(session: Session, rows: list[dict[str, Any]]) -> None:
    if _is_postgresql(session):
        _json_insert(session, "submissiongeopoint", rows)
    else:
        queries.insert_geopoints(session, rows)


def _insert_audit(session: Session, rows: list[dict[str, Any]]) -> None:
    if _is_postgresql(session):
        _json_insert(session, "auditlog", rows)
    else:
        _AUDIT_INSERT.insert_many(session, rows)


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_JSON_INSERTS: dict[tuple[str, tuple[str, ...], str], Any] = {}


def _json_insert(session: Session, table: str, rows: list[dict[str, Any]], tail: str = "") -> Any:
    """PostgreSQL: insert ``rows`` (same keys) with ONE statement and ONE parameter, the rows as a JSON
    array read by ``json_populate_recordset``. A multi-row VALUES has a placeholder per value, which
    psycopg split in Python for longer than the server took to insert (0.4 ms per submission row), and
    an executemany is one execution per row. Times go as ISO text with their offset (the columns are
    ``timestamptz``); JSON columns get the value's own JSON. Statements are cached per table, column
    list and tail (this cache holds statements, never data)."""
    if not rows:
        return None
    columns = tuple(rows[0])
    key = (table, columns, tail)
    stmt = _JSON_INSERTS.get(key)
    if stmt is None:
        names = ", ".join(f'"{c}"' for c in columns)
        stmt = _JSON_INSERTS[key] = text(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM '
                                         f'json_populate_recordset(NULL::"{table}", CAST(:rows AS json)) {tail}')
    return session.execute(stmt, {"rows": json.dumps(rows, default=_json_value)})


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a row for json_populate_recordset")


def _refused(item: BatchItem, exc: DomainError) -> ItemResult:
    return ItemResult(instance_id=item.instance_id, status="conflict" if exc.status_code == 409 else "invalid",
                      code=exc.code, reason=exc.message)


def _sync_item(context: _Context, raw: Any, read: _Read | None = None) -> ItemResult:
    """One item through ``receive_submission`` in its own SAVEPOINT (``read``: already validated and
    turned into XML by ``_prepare_item``)."""
    session, blobs, settings, hooks, actor = context.session, context.blobs, context.settings, context.hooks, context.actor
    held, device, user_agent, versions, known = (context.held, context.device, context.user_agent, context.versions,
                                                 context.known)
    if read is None:
        item = _validated(raw)
        if isinstance(item, ItemResult):
            return item
    else:
        item = read.item
    try:
        if read is None:
            form, xml = _item_xml(session, item, versions)
            if _already_complete(known.get(item.instance_id), form=form, xml=xml, item=item, actor=actor):
                return ItemResult(instance_id=item.instance_id, status="duplicate", complete=True)
        else:
            form, xml = read.form, read.xml
        with _savepoint(session):
            files = [media.IncomingFile(name=a.name, path=blobs.local_path(a.sha256), size=a.size, media_type=a.media_type)
                     for a in item.attachments if a.sha256 in held and blobs.exists(a.sha256)]
            result = receive_submission(session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, xml=xml, files=files,
                                        client_device_id=device, user_agent=user_agent)
            submission = result.submission
            if submission.instance_id != item.instance_id or submission.form_id != form.id:
                raise BatchItemMismatch(f"the XML is instance {submission.instance_id!r} of another form or id than the item "
                                        f"says ({item.form_id!r}, {item.instance_id!r})")
            if item.xml is not None and item.version is not None and result.status != "duplicate":
                stored_version = session.get(FormVersion, submission.form_version_id)
                if stored_version is not None and stored_version.version != item.version:
                    raise BatchItemMismatch(f"the XML is on version {stored_version.version!r} of {item.form_id!r}, not "
                                            f"{item.version!r} as the item says")
            if item.deprecated_id and submission.deprecated_id != item.deprecated_id:
                raise BatchItemMismatch(f"the XML's meta/deprecatedID is {submission.deprecated_id!r}, not "
                                        f"{item.deprecated_id!r}")
            if item.attachments:
                missing, missing_names = _expect(session, submission, item.attachments)
            else:
                missing, missing_names = [], list(result.missing)
    except DomainError as exc:
        return _refused(item, exc)
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
        raise BatchBadData(f"data cannot be turned into instance XML: {exc}") from exc


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
            raise SubmissionInvalidValue(f"{path}: a {type(value).__name__} cannot be a field's value here (use a string, number, "
                                         "boolean, a list of choices, or a list of objects for a repeat)",
                                         details={"field": path})


def _expect(session: Session, submission: Submission,
            announced: list[BatchAttachment]) -> tuple[list[str], list[str]]:
    """Remember the announced hash of every attachment still missing; (missing hashes, unannounced names)."""
    rows = {r.name: r for r in queries.attachments_of_submission(session, submission.id)}
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
