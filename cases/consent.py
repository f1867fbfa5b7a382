"""Consent per purpose (services, sharing with the partner NGO, reporting, photos): each change is
an immutable event; a withdrawal acts at once (photos erased, closure asked for)."""

from __future__ import annotations

from sqlmodel import Session

from app.blobs import BlobStore
from app.identity import Actor
from app.timeutil import utcnow
from cases import access, journal, lifecycle, queries, retention
from cases.errors import BadConsentPurpose, CaseNotFound, InvalidState, WrongRole
from cases.models import CaseEvent, ChildCase

CONSENT_PURPOSES = ("services", "share_partner", "reporting", "photo")


def record_consent(session: Session, *, actor: Actor, case: ChildCase, purpose: str, given: bool,
                   given_by: str | None = None, reason: str | None = None, blobs: BlobStore | None = None) -> CaseEvent:
    """Record a change of consent for one purpose (immutable event) and act on a withdrawal:
    photos are erased at once; a withdrawal of consent to services asks for closure."""
    if not (access.owns(actor, case) or actor.role == "coordinator"):
        if actor.role == "caseworker":
            raise CaseNotFound(f"no case {case.code} visible to you")
        raise WrongRole("consent is recorded by the owning NGO's caseworkers or a coordinator")
    if purpose not in CONSENT_PURPOSES:
        raise BadConsentPurpose(f"unknown consent purpose {purpose!r}; one of: {', '.join(CONSENT_PURPOSES)}")
    if case.status in lifecycle.TERMINAL_STATES:
        raise InvalidState(f"case {case.code} is {case.status}", details={"status": case.status})
    field = f"consent_{purpose}"
    before = getattr(case, field)
    setattr(case, field, given)
    if given_by:
        case.consent_giver = given_by[:30]
    case.updated_at = utcnow()
    session.add(case)
    event = journal.new_event(case, actor=actor, action="consent", from_status=case.status, to_status=case.status,
                              reason=reason, details={"purpose": purpose, "given": given, "before": before,
                                                      "given_by": given_by})
    session.add(event)
    session.flush()
    journal.record(session, "case.consent", actor=actor, object_type="case", object_id=case.code, purpose=purpose,
                   given=given)
    if not given and purpose == "photo" and blobs is not None:
        for sub in queries.intake_versions(session, case):
            retention.erase_submission_identity(session, sub, blobs=blobs, photos_only=True)
    if (not given and purpose == "services" and case.pending_request != "closure"
            and "request_closure" in lifecycle.allowed_actions(case.status, pending_request=case.pending_request)):
        case.pending_request, case.pending_reason = "closure", "consent_withdrawn"
        case.requested_by_user_id = actor.user.id
        session.add(case)
    return event
