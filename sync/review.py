"""Reviewing submissions as ODK Central does: a review state per record and comments, every step audited.

States (``Submission.review_state``): ``received`` (new), ``needs_review`` (Central's "has issues"),
``approved``, ``rejected``. Admins and coordinators set one of the last three, with an optional
comment, or add a comment alone. Whoever may read the submission (``sync.reading``: monitors their
own) reads its review steps. Case-form submissions are never reviewed here: the generic routes
refuse them (403 ``submission.case_data``) and the cases capability runs its own review queue.

A step applies to the record's current version (the one lists show) and is kept per record
(``root_instance_id``), so the review history survives edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app import audit
from app.events import Hooks
from app.identity import Actor, Role
from app.models import User
from forms.models import Form
from sync import queries, reading, rights
from sync.errors import ReviewBadState, ReviewEmpty, ReviewForbidden, ReviewTooLong
from sync.models import Submission, SubmissionComment

#: Every review state, in the order ODK Central shows them.
STATES = ("received", "needs_review", "approved", "rejected")
#: The states a reviewer may set (``received`` is only where a record starts).
SETTABLE = ("needs_review", "approved", "rejected")
#: ODK Central's names for the same states (accepted on input).
CENTRAL_NAMES = {"hasIssues": "needs_review", "has_issues": "needs_review"}
REVIEWERS = (Role.admin, Role.coordinator)
MAX_COMMENT = 2000


@dataclass(frozen=True)
class SubmissionReviewed:
    """The review state of a record changed (emitted through ``Hooks.emit`` in the caller's
    transaction), e.g. for a capability that leaves rejected submissions out of what it computes."""

    session: Session
    submission: Submission
    from_state: str
    to_state: str
    actor: Actor


@dataclass
class ReviewStep:
    """One line of a record's review history: who, when, from → to (both None for a comment alone), comment."""

    id: int
    instance_id: str
    author: str | None
    at: datetime
    from_state: str | None
    to_state: str | None
    comment: str | None


def may_review(actor: Actor) -> bool:
    """Whether ``actor``'s role may change review states and comment (admins and coordinators)."""
    return actor.role in REVIEWERS


def readable(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str) -> tuple[Submission, Form]:
    """The submission if the generic read API would serve it to ``actor``: case data 403, else 404 unless readable."""
    rights.refuse_case_submission(session, hooks=hooks, instance_id=instance_id)
    return reading.readable_submission(session, actor=actor, instance_id=instance_id)


def state_of(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str) -> str:
    """The review state of the record (its current version) of a submission ``actor`` may read."""
    submission, _ = readable(session, actor=actor, hooks=hooks, instance_id=instance_id)
    return _current_version(session, submission).review_state


def _current_version(session: Session, submission: Submission) -> Submission:
    if submission.current:
        return submission
    versions = queries.record_history(session, submission.root_instance_id)
    return next((v for v in reversed(versions) if v.current), submission)


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise ReviewTooLong(f"a comment has at most {MAX_COMMENT} characters", details={"field": "comment"})
    return text or None


def _reviewer(actor: Actor) -> None:
    if not may_review(actor):
        raise ReviewForbidden("only coordinators and administrators review submissions", details={"field": "state"})


def set_state(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str, state: str,
              comment: str | None = None) -> ReviewStep:
    """Set the review state of the record (its current version), with an optional comment; audited.

    Setting the state it already has records only the comment (nothing at all without one:
    400 ``review.empty``).
    """
    submission, _ = readable(session, actor=actor, hooks=hooks, instance_id=instance_id)
    _reviewer(actor)
    state = CENTRAL_NAMES.get(state, state)
    if state not in SETTABLE:
        raise ReviewBadState(f"state must be one of {', '.join(SETTABLE)} (or hasIssues)", details={"field": "state"})
    text = _clean_comment(comment)
    target = _current_version(session, submission)
    before = target.review_state
    if before == state and text is None:
        raise ReviewEmpty(f"the submission is already {state}; add a comment or choose another state",
                          details={"field": "state"})
    changed = before != state
    if changed:
        target.review_state = state
        session.add(target)
    step = _step(session, actor, target, from_state=before if changed else None, to_state=state if changed else None,
                 comment=text)
    if changed:
        hooks.emit(SubmissionReviewed(session=session, submission=target, from_state=before, to_state=state,
                                      actor=actor))
    return step


def add_comment(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str, comment: str | None) -> ReviewStep:
    """A comment on the record, without changing its state; audited. Empty: 400 ``review.empty``."""
    submission, _ = readable(session, actor=actor, hooks=hooks, instance_id=instance_id)
    _reviewer(actor)
    text = _clean_comment(comment)
    if text is None:
        raise ReviewEmpty("write a comment", details={"field": "comment"})
    return _step(session, actor, _current_version(session, submission), from_state=None, to_state=None, comment=text)


def history(session: Session, *, actor: Actor, hooks: Hooks, instance_id: str) -> list[ReviewStep]:
    """The review steps of the record, oldest first (for whoever may read the submission)."""
    submission, _ = readable(session, actor=actor, hooks=hooks, instance_id=instance_id)
    rows = list(session.exec(select(SubmissionComment, Submission.instance_id, User.username)
                             .join(Submission, col(Submission.id) == col(SubmissionComment.submission_id))
                             .outerjoin(User, col(User.id) == col(SubmissionComment.author_user_id))
                             .where(SubmissionComment.root_instance_id == submission.root_instance_id)
                             .order_by(col(SubmissionComment.created_at), col(SubmissionComment.id))))
    return [_as_step(row, iid, username) for row, iid, username in rows]


def _step(session: Session, actor: Actor, target: Submission, *, from_state: str | None, to_state: str | None,
          comment: str | None) -> ReviewStep:
    row = SubmissionComment(submission_id=target.id, root_instance_id=target.root_instance_id,
                            author_user_id=actor.user.id, from_state=from_state, to_state=to_state, body=comment)
    session.add(row)
    session.flush()
    if to_state is not None:
        audit.record(session, "submission.review", actor=actor, object_type="submission", object_id=target.instance_id,
                     from_state=from_state, to_state=to_state, comment_id=row.id)
    else:
        audit.record(session, "submission.comment", actor=actor, object_type="submission",
                     object_id=target.instance_id, comment_id=row.id)
    return _as_step(row, target.instance_id, actor.user.username)


def _as_step(row: SubmissionComment, instance_id: str, username: str | None) -> ReviewStep:
    return ReviewStep(id=row.id or 0, instance_id=instance_id, author=username, at=row.created_at,
                      from_state=row.from_state, to_state=row.to_state, comment=row.body)
