"""The sync read API: submission lists and detail, and the media of submissions.

Read access (design.md §6): admins and coordinators read all site-visit and general
submissions, monitors only their own (made by them or their devices), caseworkers none.
Case-form submissions and their files are never served here, to anyone: they are read through
``/api/v1/cases`` (scoped by organisation, identity reads audited; issue 9).

Sync does not know sites: the ``site=CODE`` filter and each submission's site code come from the
capability that maps submissions onto sites (geodata), through ``Hooks.submission_filter`` and
``Hooks.submission_extras``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import false, func
from sqlmodel import Session, col, select

from app.blobs import BlobStore
from app.events import Hooks
from app.identity import Actor, Role
from app.models import Device, User
from app.timeutil import as_utc, isoformat
from forms.models import CASE_FORM_KINDS, Form, FormVersion
from sync import media, queries
from sync.blob_uploads import check_sha256, holds
from sync.errors import (
    MediaBadSize,
    MediaNotFound,
    MediaNoVariant,
    RequestBadCursor,
    RequestBadDate,
    RequestBadLimit,
    RequestBadOffset,
    SubmissionCaseData,
    SubmissionForbidden,
    SubmissionNotFound,
)
from sync.form_lookup import get_form
from sync.models import Blob, Submission
from sync.schemas import SubmissionDetail, SubmissionHistoryEntry, SubmissionPublic

STAFF = (Role.admin, Role.coordinator)
MAX_PAGE = 1000
MEDIA_SIZES = ("thumb", "web")
#: Who may list a case form's submissions at all; each row is then checked by the cases rule.
CASE_READERS = (Role.caseworker, Role.coordinator)


def _readable_form(session: Session, actor: Actor, xml_form_id: str) -> Form:
    form = get_form(session, xml_form_id)
    if form.kind in CASE_FORM_KINDS:
        if actor.role not in CASE_READERS:
            raise SubmissionCaseData(f"submissions of case form {xml_form_id!r} are readable only by the owning "
                                     "organisation's caseworkers")
    elif actor.role == Role.caseworker:
        raise SubmissionForbidden("caseworkers do not read site-visit data")
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
        raise RequestBadDate(f"{name}={value[:40]!r} is not an ISO date (2026-03-01) or datetime",
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
        raise RequestBadCursor("cursor is not one this server gave out; start again without it",
                               details={"field": "cursor"}) from exc


@dataclass
class Page:
    items: list[SubmissionPublic]
    next_cursor: str | None


def list_submissions(session: Session, *, actor: Actor, hooks: Hooks, xml_form_id: str, limit: int = 100,
                     cursor: str | None = None, offset: int | None = None, since: str | None = None,
                     until: str | None = None, device: str | None = None, site: str | None = None) -> Page:
    """Current submissions of a form in the order received, filtered and paged.

    :param since: / :param until: ISO date or datetime on ``received_at`` (when the server got it).
    :param device: a device name (token devices) or the client's deviceID (``collect:...``).
    :param site: a site code; only submissions mapped to that site (the ``site`` filter a capability
        answers through ``hooks``: geodata).
    :param cursor: the ``next_cursor`` of the previous page (keyset paging, stable under inserts);
        ``offset`` is accepted for simple clients.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise RequestBadLimit(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
    if offset is not None and offset < 0:
        raise RequestBadOffset("offset must be 0 or more", details={"field": "offset"})
    form = _readable_form(session, actor, xml_form_id)
    case_form = form.kind in CASE_FORM_KINDS
    query = select(Submission).where(Submission.form_id == form.id, Submission.current.is_(True))
    if case_form:  # read through /api/v1/cases only: no row here, so no page or cursor counts them (issue 9, 11)
        query = query.where(false())
    else:
        query = _own_unless_staff(query, actor)
    query = _filtered(session, hooks, query, since=since, until=until, device=device, site=site)
    if cursor:
        query = query.where(Submission.id > decode_cursor(cursor))
    query = query.order_by(col(Submission.id)).limit(limit + 1)
    if offset and not cursor:
        query = query.offset(offset)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor_row = rows[-1] if more and rows else None
    return Page(items=describe(session, hooks, rows, {form.id: form}),
                next_cursor=encode_cursor(cursor_row.id) if cursor_row is not None else None)


def _own_unless_staff(query, actor: Actor):  # noqa: ANN001, ANN202 (a select of Submission rows)
    """design.md §6: staff read every row, anyone else only their own."""
    if actor.role in STAFF:
        return query
    return query.where(Submission.submitted_by_user_id == actor.user.id)


def _filtered(session: Session, hooks: Hooks, query, *, since: str | None, until: str | None,  # noqa: ANN001, ANN202
              device: str | None, site: str | None):
    """The list filters of the read API (received date, device, site) on a select of Submission rows."""
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
        condition = hooks.submission_filter(session, "site", site)
        query = query.where(condition if condition is not None else false())
    return query


@dataclass
class Search:
    """One page of ``search_submissions``: the rows as the API describes them, and how many match."""

    items: list[SubmissionPublic]
    total: int
    page: int
    pages: int


def searchable_forms(session: Session, *, actor: Actor, hooks: Hooks) -> list[Form]:
    """The forms whose submissions the generic read API serves to ``actor``: never case forms nor a
    form holding case data (``rights.refuse_case_data``); none for caseworkers."""
    if actor.role == Role.caseworker:
        return []
    out = []
    for form in session.exec(select(Form).order_by(col(Form.title))):
        if form.kind in CASE_FORM_KINDS or hooks.is_restricted_data(session, form=form):
            continue
        out.append(form)
    return out


def search_submissions(session: Session, *, actor: Actor, hooks: Hooks, xml_form_id: str | None = None,
                       review_state: str | None = None, submitter: str | None = None, since: str | None = None,
                       until: str | None = None, device: str | None = None, site: str | None = None,
                       attachments_missing: bool = False, unmapped: bool = False, page: int = 1,
                       per_page: int = 50) -> Search:
    """Current submissions of every form the caller may read (or one form), newest first, in numbered pages.

    The same rules and filters as ``list_submissions`` (a caseworker is refused, monitors see their
    own, case data never), plus: ``review_state``, ``submitter`` (a username), ``attachments_missing``
    (files announced but not received) and ``unmapped`` (not mapped onto a site).
    """
    if actor.role == Role.caseworker:
        raise SubmissionForbidden("caseworkers do not read site-visit data")
    if page < 1:
        raise RequestBadOffset("page must be 1 or more", details={"field": "page"})
    if xml_form_id:
        chosen = _readable_form(session, actor, xml_form_id)
        forms = [f for f in searchable_forms(session, actor=actor, hooks=hooks) if f.id == chosen.id]
    else:
        forms = searchable_forms(session, actor=actor, hooks=hooks)
    query = select(Submission).where(col(Submission.form_id).in_([f.id for f in forms]),
                                     Submission.current.is_(True))
    query = _filtered(session, hooks, _own_unless_staff(query, actor), since=since, until=until, device=device,
                      site=site)
    if review_state:
        query = query.where(Submission.review_state == review_state)
    if submitter:
        user_id = session.exec(select(User.id).where(User.username == submitter)).first()
        query = query.where(Submission.submitted_by_user_id == (user_id if user_id is not None else -1))
    if attachments_missing:
        query = query.where(Submission.attachments_present < Submission.attachments_expected)
    if unmapped:
        query = query.where(col(Submission.site_id).is_(None))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    pages = max(1, -(-total // per_page))
    rows = list(session.exec(query.order_by(col(Submission.received_at).desc(), col(Submission.id).desc())
                             .offset((page - 1) * per_page).limit(per_page)))
    return Search(items=describe(session, hooks, rows, {f.id: f for f in forms}), total=total, page=page,
                  pages=pages)


def readable_submission(session: Session, *, actor: Actor, instance_id: str) -> tuple[Submission, Form]:
    """The submission with this instanceID and its form, if ``actor`` may read it; else 404
    ``submission.not_found`` (absent and not yours look the same)."""
    submission = queries.submission_by_instance_id(session, instance_id)
    form = session.get(Form, submission.form_id) if submission is not None else None
    if submission is None or form is None or not _may_read(session, actor, submission, form.kind):
        raise SubmissionNotFound(f"no submission {instance_id!r} that you may read")
    return submission, form


def get_submission(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str) -> SubmissionDetail:
    """One submission (any version) with its record's edit history, oldest first."""
    submission, form = readable_submission(session, actor=actor, instance_id=instance_id)
    history = queries.record_history(session, submission.root_instance_id)
    history = [h for h in history if h.id == submission.id or _may_read(session, actor, h, form.kind)]
    described = describe(session, hooks, history, {form.id: form})
    by_id = {d.instance_id: d for d in described}
    return SubmissionDetail(**dict(by_id[submission.instance_id]),
                            history=[SubmissionHistoryEntry.model_validate(d, from_attributes=True) for d in described],
                            versions=described)


def describe(session: Session, hooks: Hooks, rows: list[Submission], forms: dict[int, Form]) -> list[SubmissionPublic]:
    """Submissions as JSON, with submitter, device, attachment URLs and what capabilities add
    (``hooks.submission_extras``: geodata's site code), in a few queries per page."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    attachments = queries.attachments_by_submission(session, ids)
    users = queries.names_by_id(session, User, User.username, {r.submitted_by_user_id for r in rows})
    devices = queries.names_by_id(session, Device, Device.name, {r.device_id for r in rows})
    versions = queries.names_by_id(session, FormVersion, FormVersion.version, {r.form_version_id for r in rows})
    extras = hooks.submission_extras(session, rows)
    out = []
    for r in rows:
        form = forms.get(r.form_id) or session.get(Form, r.form_id)
        out.append(SubmissionPublic.model_validate({
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
            "site": None, "site_distance_m": r.site_distance_m, "site_match": r.site_match,
            "site_flag": r.site_flag,
            "review_state": r.review_state,
            "complete": r.complete,
            "attachments_expected": r.attachments_expected,
            "attachments_present": r.attachments_present,
            "attachments": [{"name": a.name, "field": a.field_path, "received": a.received,
                             "sha256": a.sha256 if a.received else None, "size": a.size, "media_type": a.media_type,
                             "url": f"/api/v1/media/{a.sha256}" if a.received and a.sha256 else None}
                            for a in attachments.get(r.id, [])],
            **extras.get(r.id, {}),
        }))
    return out


@dataclass
class MediaFile:
    sha256: str
    variant: str | None  # None: the stored file; else a derived size (``thumb``/``web``)
    media_type: str
    etag: str
    size: int


def media_file(session: Session, *, blobs: BlobStore, actor: Actor, sha256: str,
               size: str | None = None) -> MediaFile:
    """A stored file the caller may read, or its derived ``thumb``/``web`` JPEG (issue 9, finding 5).

    Readable: bytes the caller sent themselves (``BlobHolder``), or an attachment of a submission
    they may read. Never a file of a case-form submission: those go out only through the case
    photo route, scoped and audited. Not readable and not stored look the same: 404.
    """
    check_sha256(sha256)
    if size is not None and size not in MEDIA_SIZES:
        raise MediaBadSize(f"size must be one of {', '.join(MEDIA_SIZES)}", details={"field": "size"})
    not_found = MediaNotFound(f"no media {sha256} that you may read")
    query = queries.readers_of_attachment(sha256)
    if session.exec(query.where(col(Form.kind).in_(CASE_FORM_KINDS)).limit(1)).first() is not None:
        raise not_found
    if actor.role == Role.monitor:
        query = query.where(Submission.submitted_by_user_id == actor.user.id)
    readable = any(_may_read(session, actor, sub, form.kind) for sub, form in session.exec(query.limit(50)))
    if not readable and not holds(session, actor, sha256):
        raise not_found
    blob = session.get(Blob, sha256)
    if blob is None or not blobs.exists(sha256):
        raise not_found
    if size is None:
        media_type, etag = blob.media_type, f'"{sha256}"'
    else:
        media_type, etag = "image/jpeg", f'"{sha256}-{size}"'
        if not media.derived(blobs, sha256, size):  # made on the first read (issue 13)
            raise MediaNoVariant(f"media {sha256} has no {size} size (only images have one)")
    return MediaFile(sha256=sha256, variant=size, media_type=media_type, etag=etag,
                     size=blobs.size(sha256, variant=size))
