"""The review queue: case-form submissions flagged for a coordinator (kept restricted meanwhile),
and the coordinator's decision (for an intake edit: apply it, or leave the case as it was)."""

from __future__ import annotations

from sqlmodel import Session

from app.blobs import BlobStore
from app.identity import Actor
from app.settings import Settings
from app.timeutil import isoformat
from cases import access, ingest, journal, queries
from cases.errors import BadDecision, ReviewNotFound
from cases.schemas import ReviewDecisionPublic, ReviewItemPublic


def review_queue(session: Session, *, actor: Actor | None) -> list[ReviewItemPublic]:
    """Case-form submissions flagged for a coordinator (no identifying fields); ``actor`` None is
    the server's shell (``asmfield cases review``)."""
    if actor is not None:
        access.require_coordinator(actor, "the case review queue is for coordinators")
    rows = queries.review_queue(session)
    journal.record(session, "case.review_queue", actor=actor, label=None if actor else "cli",
                   object_type="submission", rows=len(rows))
    return [ReviewItemPublic(instance_id=s.instance_id, form=f.xml_form_id, kind=f.kind,
                             received_at=isoformat(s.received_at),
                             submitted_by=queries.username(session, s.submitted_by_user_id),
                             restricted=s.restricted, reason=s.review_reason) for s, f in rows]


def resolve_review(session: Session, *, actor: Actor, instance_id: str, decision: str,
                   note: str | None = None, settings: Settings, blobs: BlobStore) -> ReviewDecisionPublic:
    """Close a review: ``rejected`` (kept restricted, nothing opened) or ``approved`` (acknowledged).
    For an intake edit held for review, ``approved`` applies it to its case and ``rejected`` leaves
    the case as it was (``cases.ingest.decide_intake_edit``)."""
    access.require_coordinator(actor, "the case review queue is for coordinators")
    if decision not in ("approved", "rejected"):
        raise BadDecision("decision must be approved or rejected")
    sub = queries.submission_by_instance(session, instance_id)
    if sub is None or sub.review_state != "needs_review":
        raise ReviewNotFound(f"no submission {instance_id!r} awaiting review")
    edit = ingest.decide_intake_edit(session, actor=actor, submission=sub, decision=decision, note=note,
                                     settings=settings, blobs=blobs)
    sub.review_state = decision
    session.add(sub)
    journal.record(session, "case.review", actor=actor, object_type="submission", object_id=instance_id,
                   decision=decision, note=(note or "")[:200])
    return ReviewDecisionPublic(instance_id=instance_id, review_state=decision, **(edit or {}))
