"""Reading forms, versions and media. The only module of ``forms`` that builds SQL.

Sync (formList, form download, manifest, attachments, submission checks) reads through these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Boolean, Integer, column, func, table, text
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from app.snapshots import RowSnapshots
from forms.models import Form, FormMedia, FormVersion


def get_form(session: Session, xml_form_id: str) -> Form | None:
    """The form with this XML form id, or None."""
    return session.exec(select(Form).where(Form.xml_form_id == xml_form_id)).first()


def get_version(session: Session, form: Form, version: str | None) -> FormVersion | None:
    """One version of ``form`` by its version string (``None``/"" means the published one)."""
    if not version:
        return published_version(session, form)
    return session.exec(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == version)
    ).first()


def published_version(session: Session, form: Form) -> FormVersion | None:
    """The version offered to tablets (the newest upload)."""
    return session.get(FormVersion, form.published_version_id) if form.published_version_id else None


def published_schema(session: Session, form: Form) -> FormVersion | None:
    """A read-only copy of the published version without its XForm text (``app.snapshots``: one raw
    read per call; versions never change), for what only needs its fields (every upload's placement)."""
    return _VERSION_COPIES.get(session, form.published_version_id) if form.published_version_id else None


_VERSION_COPIES = RowSnapshots(FormVersion, stamp=("id", "form_id", "version"), exclude=("xform_xml",), max_entries=500)


def versions_of(session: Session, form: Form) -> list[FormVersion]:
    """All versions of ``form``, oldest first."""
    return list(session.exec(select(FormVersion).where(FormVersion.form_id == form.id).order_by(col(FormVersion.id))))


def media_for_version(session: Session, version: FormVersion) -> list[FormMedia]:
    """The files the server holds for ``version`` (uploaded and generated), by file name."""
    return list(session.exec(
        select(FormMedia).where(FormMedia.form_version_id == version.id).order_by(col(FormMedia.filename))
    ))


def get_media(session: Session, version: FormVersion, filename: str) -> FormMedia | None:
    """One media file of ``version`` by name."""
    return session.exec(
        select(FormMedia).where(FormMedia.form_version_id == version.id, FormMedia.filename == filename)
    ).first()


def list_forms(session: Session, *, kinds: Iterable[str] | None = None, open_only: bool = False) -> list[Form]:
    """Forms, optionally only some kinds and only open ones, by XML form id."""
    query = select(Form).order_by(col(Form.xml_form_id))
    if kinds is not None:
        query = query.where(col(Form.kind).in_(list(kinds)))
    if open_only:
        query = query.where(Form.state == "open")
    return list(session.exec(query))


def versions_referencing(session: Session, filename: str) -> list[FormVersion]:
    """Every version whose XForm references ``filename`` (as a media file)."""
    # media_names is a JSON list; filtering in Python keeps this portable (SQLite and PostgreSQL),
    # and only ids and names are loaded, not the XForms.
    rows = session.exec(select(FormVersion.id, FormVersion.media_names).order_by(col(FormVersion.id)))
    ids = [row_id for row_id, names in rows if filename in (names or [])]
    return [session.get(FormVersion, row_id) for row_id in ids]


def latest_generated(session: Session, filename: str) -> FormMedia | None:
    """The newest server-generated copy of ``filename`` on any version (e.g. the current sites.csv)."""
    return session.exec(
        select(FormMedia).where(FormMedia.filename == filename, col(FormMedia.generated_from).is_not(None))
        .order_by(col(FormMedia.updated_at).desc(), col(FormMedia.id).desc())
    ).first()


def lock_form(session: Session, form: Form) -> None:
    """Lock the form row until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite has one writer)."""
    session.exec(select(Form.id).where(Form.id == form.id).with_for_update()).first()


def has_submissions(session: Session, form: Form) -> bool:
    """Whether any submission (any version, any state) was stored for ``form``."""
    # Plain SQL on sync's table: forms does not import sync's models.
    return session.execute(text("SELECT 1 FROM submission WHERE form_id = :form_id LIMIT 1"),
                           {"form_id": form.id}).first() is not None


def submission_summary(session: Session, forms: Iterable[Form], *,
                       submitted_by: int | None = None) -> dict[int, tuple[int, datetime | None]]:
    """Per form id: how many current submissions (edits count once) and when the last was received.

    ``submitted_by`` counts only that user's submissions (a monitor sees their own visits). One grouped
    query over sync's table, read as plain SQL (forms does not import sync's models).
    """
    ids = [f.id for f in forms]
    if not ids:
        return {}
    submission = table("submission", column("form_id", Integer), column("current", Boolean),
                       column("received_at", UTCDateTime()), column("submitted_by_user_id", Integer))
    query = (select_core(submission.c.form_id, func.count(), func.max(submission.c.received_at))
             .where(submission.c.form_id.in_(ids), submission.c.current.is_(True))
             .group_by(submission.c.form_id))
    if submitted_by is not None:
        query = query.where(submission.c.submitted_by_user_id == submitted_by)
    return {form_id: (count, last) for form_id, count, last in session.execute(query)}
