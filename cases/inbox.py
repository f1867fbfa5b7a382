"""What waits for a person's decision: four-eyes requests they may approve (never their own) and
referrals or transfers waiting for their NGO to accept; for coordinators, the transfers they
ordered and where each stands. Reads only, scoped and audited as ``cases.reading.list_cases``;
the decisions themselves are ``cases.transitions.transition``, as through the API."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from app.identity import Actor
from app.timeutil import isoformat
from cases import access, journal, lifecycle, queries, reading
from cases.schemas import CasePublic

#: The decisions on a four-eyes request, in the order a page shows them.
DECISIONS = ("approve_plan", "reject_plan", "approve_closure", "reject_closure")
#: A referral or a transfer waits in one of these states for the receiving NGO.
INCOMING_STATES = (lifecycle.REFERRED, lifecycle.TRANSFERRED)


@dataclass
class Approval:
    """A four-eyes request the caller may decide: the case, who asked, and the decisions open to them."""

    case: CasePublic
    requested_by: str | None
    decisions: list[str] = field(default_factory=list)


@dataclass
class Transfer:
    """A transfer a coordinator ordered: to which NGO, when, and the case's state now."""

    code: str
    to_organisation: str | None
    from_organisation: str | None
    at: str | None
    status: str


def approvals(session: Session, *, actor: Actor) -> list[Approval]:
    """Plans and closures waiting for a second person, which ``actor`` may approve or send back:
    never a request ``actor`` made (four-eyes), only decisions ``cases.lifecycle`` gives their role."""
    access.require_case_role(actor)
    rows = queries.pending_requests(session, role=actor.role, organisation_id=actor.organisation_id)
    out = []
    for case in rows:
        if case.requested_by_user_id is not None and case.requested_by_user_id == actor.user.id:
            continue
        role = access.role_for(actor, case)
        allowed = lifecycle.allowed_actions(case.status, pending_request=case.pending_request, role=role)
        decisions = [a for a in DECISIONS if a in allowed]
        if decisions:
            out.append(Approval(case=reading.case_view(session, actor=actor, case=case, detail=False),
                                requested_by=queries.username(session, case.requested_by_user_id),
                                decisions=decisions))
    journal.record(session, "case.approvals", actor=actor, object_type="case", rows=len(out))
    return out


def incoming(session: Session, *, actor: Actor) -> list[CasePublic]:
    """Referrals and transfers waiting for an NGO to accept (a caseworker: their own NGO's, with
    accept / decline; a coordinator: every one, to follow the deadlines), oldest deadline first."""
    cases = [c for state in INCOMING_STATES for c in reading.list_cases(session, actor=actor, status=state, limit=500)]
    return sorted(cases, key=lambda c: c.referral_due_at or "")


def transfers_ordered(session: Session, *, actor: Actor, limit: int = 200) -> list[Transfer]:
    """The latest transfers between partner NGOs and each case's state now (coordinators: they order
    transfers and see every case's status; others get an empty list, not another NGO's case)."""
    if actor.role != "coordinator":
        return []
    out = []
    for event, case in queries.latest_events(session, "transfer", limit):
        before = [e for e in queries.events(session, case.id) if e.id < event.id and e.actor_role == "caseworker"]
        out.append(Transfer(code=case.code, to_organisation=(event.details or {}).get("organisation"),
                            from_organisation=queries.organisation_name(session, before[-1].actor_org_id)
                            if before else None, at=isoformat(event.at), status=case.status))
    journal.record(session, "case.transfers", actor=actor, object_type="case", rows=len(out))
    return out
