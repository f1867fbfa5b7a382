"""Moving a case through its lifecycle: ``lifecycle`` decides what is allowed; this applies the
guards that need the database (consent, the target NGO, services, failed follow-ups), the
effects of each action, and writes the immutable event and the audit row."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.errors import DomainError
from app.events import announce
from app.identity import Actor
from app.models import Organisation
from app.timeutil import utcnow
from cases import access, journal, lifecycle, queries
from cases.errors import (
    BadRiskLevel,
    CaseNotFound,
    FourEyes,
    InvalidTransition,
    MissingReason,
    NoConsentToShare,
    NoImplementedService,
    NotAnNgo,
    NotLost,
    SameOrganisation,
    UnknownAction,
    UnknownOrganisation,
    UseMerge,
    WrongRole,
)
from cases.lifecycle import TransitionRefused
from cases.models import CaseEvent, ChildCase

#: Failed follow-ups (child not found) needed before closing as lost to follow-up.
LOST_MIN_FAILED_FOLLOWUPS = 2

_REFUSALS: dict[str, type[DomainError]] = {"state": InvalidTransition, "four_eyes": FourEyes, "role": WrongRole,
                                           "unknown": UnknownAction, "reason": MissingReason}


def _refusal(exc: TransitionRefused, case: ChildCase) -> DomainError:
    return _REFUSALS[exc.kind](exc.message, details={"status": case.status, "allowed": exc.allowed})


def _ngo(session: Session, ref: str | int | None, *, what: str) -> Organisation:
    org = queries.organisation_by_ref(session, ref)
    if org is None:
        raise UnknownOrganisation(f"{what}: no organisation {ref!r}")
    if org.kind != "ngo":
        raise NotAnNgo(f"{what}: {org.name} is not a partner NGO")
    return org


def transition(session: Session, *, actor: Actor | None, case: ChildCase, action: str, reason: str | None = None,
               organisation: str | int | None = None, into: str | None = None, risk_level: str | None = None,
               submission_id: int | None = None, details: dict[str, Any] | None = None) -> CaseEvent:
    """Take ``action`` on ``case`` as ``actor`` (None = the system) and write its immutable event.

    Refusals: wrong state or a missing second person → ``Conflict`` (409, naming the allowed
    actions); wrong role → ``Forbidden``; missing reason, consent or target → ``Invalid``.
    Nothing is changed when it refuses.
    """
    role = access.role_for(actor, case)
    if role == "caseworker_other_org":
        raise CaseNotFound(f"no case {case.code} visible to you")
    try:
        t = lifecycle.check(action, status=case.status, role=role, actor_user_id=actor.user.id if actor else None,
                            pending_request=case.pending_request, requested_by_user_id=case.requested_by_user_id,
                            reason=reason)
    except TransitionRefused as exc:
        raise _refusal(exc, case) from None
    extra: dict[str, Any] = dict(details or {})
    source = case.status
    now = utcnow()

    # Guards and effects that depend on more than the state machine.
    if action == "verify":
        if risk_level is not None:
            if risk_level not in ("low", "medium", "high"):
                raise BadRiskLevel("risk_level must be low, medium or high")
            extra["risk_level"] = [case.risk_level, risk_level]
            case.risk_level = risk_level
        case.verified_at = now
    elif action in ("refer", "transfer"):
        if not case.consent_share_partner:
            raise NoConsentToShare(f"{action} needs consent to share with the partner NGO "
                                   "(consent_share_partner = yes); this case has none")
        target = _ngo(session, organisation if organisation is not None else case.proposed_organisation_id,
                      what=f"{action} target")
        if action == "transfer" and target.id == case.organisation_id:
            raise SameOrganisation("transfer target is already the owning organisation")
        extra["organisation"] = target.name
        case.organisation_id = target.id
    elif action == "decline":
        extra["organisation"] = queries.organisation_name(session, case.organisation_id)
        case.organisation_id = None
    elif action == "merge":
        raise UseMerge("use POST /api/v1/cases/{code}/merge with the case it duplicates")
    elif action == "start_monitoring":
        if not any(s.implemented for s in queries.services(session, case.id)):
            raise NoImplementedService("monitoring starts when a first service is implemented; record one first")
    elif action == "request_closure":
        if reason == "lost_to_follow_up":
            failed = sum(1 for f in queries.followups(session, case.id) if not f.child_found)
            if failed < LOST_MIN_FAILED_FOLLOWUPS:
                raise NotLost(f"lost_to_follow_up needs at least {LOST_MIN_FAILED_FOLLOWUPS} failed follow-ups "
                              f"(child not found); this case has {failed}")
        case.pending_request, case.pending_reason = "closure", reason
        case.requested_by_user_id = actor.user.id if actor else None
    elif action == "submit_plan":
        case.pending_request, case.pending_reason = "plan", None
        case.requested_by_user_id = actor.user.id if actor else None
    elif action in ("approve_plan", "reject_plan", "reject_closure"):
        case.pending_request = case.pending_reason = case.requested_by_user_id = None
    elif action == "approve_closure":
        case.closure_reason = case.pending_reason
        case.pending_request = case.pending_reason = case.requested_by_user_id = None
        case.closed_at = now
    elif action == "close_consent_withdrawn":
        case.closure_reason = "consent_withdrawn"
        case.closed_at = now
    elif action == "reopen":
        case.closed_at = None
        case.closure_reason = None

    if t.target is not None:
        case.status = t.target
    case.updated_at = now
    session.add(case)
    event = journal.new_event(case, actor=actor, action=action, from_status=source, to_status=case.status, at=now,
                              reason=reason, submission_id=submission_id, details=extra)
    session.add(event)
    announce(session, "case.transition", {"case_id": case.id, "action": action, "from": source, "to": case.status, "at": now})
    session.flush()
    journal.record(session, f"case.{action}", actor=actor, object_type="case", object_id=case.code,
                   from_status=source, to_status=case.status)
    return event
