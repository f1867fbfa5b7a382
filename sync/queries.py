"""The SQL of the sync capability (ingest, form lookup, rights, batch, blob uploads, read API), in one place.

Functions take a session and plain values and return rows or plain collections; the rules that
decide what a row means live in the modules that call them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from app.rawsql import FastInsert, raw_rows
from forms.models import Form, FormVersion
from sync.models import BlobHolder, Submission, SubmissionAttachment, SubmissionGeopoint


def known_instances(session: Session, instance_ids: list[str]) -> list[tuple[str, int, str, bool, str | None]]:
    """(instance_id, form_id, xml_sha256, complete, deprecated_id) of the stored ones among ``instance_ids``."""
    if not instance_ids:
        return []
    return list(session.exec(select(Submission.instance_id, Submission.form_id, Submission.xml_sha256,
                                    Submission.complete, Submission.deprecated_id)
                             .where(col(Submission.instance_id).in_(instance_ids))))


def hashes_held(session: Session, user_id: int, hashes: set[str]) -> set[str]:
    """The hashes among ``hashes`` whose bytes ``user_id`` sent before (``BlobHolder``)."""
    if not hashes:
        return set()
    return set(session.exec(select(BlobHolder.sha256).where(BlobHolder.user_id == user_id,
                                                            col(BlobHolder.sha256).in_(hashes))))


def waiting_for(sha256: str):  # noqa: ANN201 (a select of (SubmissionAttachment, Submission) rows)
    """Attachments announced with ``sha256`` (``expected_sha256``) and their submissions; callers narrow it."""
    return (select(SubmissionAttachment, Submission)
            .join(Submission, col(Submission.id) == col(SubmissionAttachment.submission_id))
            .where(SubmissionAttachment.expected_sha256 == sha256))


def attachments_of_submission(session: Session, submission_id: int) -> list[SubmissionAttachment]:
    return list(session.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == submission_id)))


def received_flags(session: Session, submission_id: int) -> list[bool]:
    return list(session.exec(select(SubmissionAttachment.received)
                             .where(SubmissionAttachment.submission_id == submission_id)))


def forms_by_id(session: Session, form_ids: set[int]) -> dict[int, Form]:
    if not form_ids:
        return {}
    return {form.id: form for form in session.exec(select(Form).where(col(Form.id).in_(form_ids)))}


def attachments_by_submission(session: Session, submission_ids: list[int]) -> dict[int, list[SubmissionAttachment]]:
    """Each submission's attachments in the order they were recorded."""
    out: dict[int, list[SubmissionAttachment]] = {}
    for att in session.exec(select(SubmissionAttachment)
                            .where(col(SubmissionAttachment.submission_id).in_(submission_ids))
                            .order_by(col(SubmissionAttachment.id))):
        out.setdefault(att.submission_id, []).append(att)
    return out


def names_by_id(session: Session, model: type, column: Any, ids: set[int | None]) -> dict[int, str]:
    """``{id: column}`` of the rows of ``model`` with these ids (None ignored)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.exec(select(model.id, column).where(col(model.id).in_(wanted))).all())


def submission_by_instance_id(session: Session, instance_id: str) -> Submission | None:
    return session.exec(select(Submission).where(Submission.instance_id == instance_id)).first()


def record_history(session: Session, root_instance_id: str) -> list[Submission]:
    """Every version of one record, oldest first."""
    return list(session.exec(select(Submission).where(Submission.root_instance_id == root_instance_id)
                             .order_by(col(Submission.received_at), col(Submission.id))))


def readers_of_attachment(sha256: str):  # noqa: ANN201 (a select of (Submission, Form) rows)
    """Submissions (with their form) holding a received attachment with these bytes; callers narrow it."""
    return (select(Submission, Form)
            .join(SubmissionAttachment, col(SubmissionAttachment.submission_id) == col(Submission.id))
            .join(Form, col(Form.id) == col(Submission.form_id))
            .where(SubmissionAttachment.sha256 == sha256, SubmissionAttachment.received.is_(True)))


# -- ingest, form lookup, rights (sync.ingest, sync.form_lookup, sync.rights) ----------------


#: The XForm text is not needed to ingest; it stays unloaded (loaded on access if ever needed).
NO_XFORM = (defer(FormVersion.xform_xml),)  # type: ignore[arg-type]


def form_by_xml_id(session: Session, xml_form_id: str) -> Form | None:
    return session.exec(select(Form).where(Form.xml_form_id == xml_form_id)).first()


def version_of(session: Session, form_id: int, version: str) -> FormVersion | None:
    """The stored ``version`` of the form (XForm text deferred)."""
    return session.exec(select(FormVersion).where(FormVersion.form_id == form_id, FormVersion.version == version)
                        .options(*NO_XFORM)).first()


def fresh_submission_by_instance_id(session: Session, instance_id: str) -> Submission | None:
    """The submission with this instanceID as the database has it now (identity map refreshed). Asked
    first with one raw read: a new instanceID (nearly every upload) costs no ORM query (issue 13)."""
    if not raw_rows(session, _KNOWN_INSTANCE, (instance_id,)):
        return None
    return session.exec(select(Submission).where(Submission.instance_id == instance_id)
                        .execution_options(populate_existing=True)).first()


_KNOWN_INSTANCE = f"SELECT 1 FROM {Submission.__tablename__} WHERE instance_id = ?"


def attachments_in_order(session: Session, submission_id: int) -> list[SubmissionAttachment]:
    """One submission's attachments in the order they were recorded."""
    return list(session.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == submission_id)
                             .order_by(col(SubmissionAttachment.id))))


def submitter_of(session: Session, instance_id: str) -> int | None:
    """The user who sent the submission with this instanceID."""
    return session.exec(select(Submission.submitted_by_user_id).where(Submission.instance_id == instance_id)).first()


def form_kind(session: Session, form_id: int) -> str:
    """The form's kind as committed now (not the session's copy)."""
    return session.execute(select(Form.kind).where(Form.id == form_id)).scalar_one()


def supersede(session: Session, old_id: int, new_instance_id: str, now: datetime) -> int:
    """Mark the submission ``old_id`` replaced by ``new_instance_id`` if it is still current; rows changed (0 or 1)."""
    result = session.execute(update(Submission).where(col(Submission.id) == old_id, col(Submission.current).is_(True))
                             .values(current=False, superseded_by=new_instance_id, updated_at=now))
    return result.rowcount


def insert_submission(session: Session, values: dict[str, Any]) -> int | None:
    """``INSERT .. ON CONFLICT (instance_id) DO NOTHING RETURNING id``: the new row's id, None when the
    instanceID exists. One driver-level statement built once per dialect (``app.rawsql``, issue 13)."""
    return _INSERT_SUBMISSION.insert_one(session, values)


_INSERT_SUBMISSION = FastInsert(Submission.__table__, on_conflict=("instance_id",), returning="id")  # type: ignore[attr-defined]


def insert_geopoints(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert geopoint rows (one executemany) on the session's connection, outside the ORM unit of work."""
    _INSERT_GEOPOINTS.insert_many(session, rows)


_INSERT_GEOPOINTS = FastInsert(SubmissionGeopoint.__table__)  # type: ignore[attr-defined]


def insert_attachments(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert a new submission's attachment rows (one executemany), outside the ORM unit of work."""
    _INSERT_ATTACHMENTS.insert_many(session, rows)


_INSERT_ATTACHMENTS = FastInsert(SubmissionAttachment.__table__)  # type: ignore[attr-defined]
