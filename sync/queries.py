"""The SQL of the sync capability's JSON API (batch, blob uploads, read API), in one place.

Functions take a session and plain values and return rows or plain collections; the rules that
decide what a row means live in the modules that call them.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from forms.models import Form
from sync.models import BlobHolder, Submission, SubmissionAttachment


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
