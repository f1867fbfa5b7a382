"""Services planned or delivered and follow-up observations, recorded by the owning NGO; the
first implemented service starts monitoring, and a follow-up may meet the closure criteria."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from app.identity import Actor
from app.timeutil import utcnow
from cases import access, closure, journal, lifecycle, queries, transitions
from cases.errors import BadServiceType, DateInFuture, InvalidState
from cases.models import CaseFollowup, CaseService, ChildCase

SERVICE_TYPES = ("education", "vocational_training", "health", "psychosocial", "family_income",
                 "birth_registration", "food", "shelter", "legal", "awareness")
#: Awareness raising alone is not remediation (§3.6).
REMEDIATION_TYPES = tuple(t for t in SERVICE_TYPES if t != "awareness")
SERVICE_STATES = (lifecycle.ACCEPTED, lifecycle.ASSESSMENT, lifecycle.PLAN_PENDING, lifecycle.IN_SERVICES,
                  lifecycle.MONITORING)
FOLLOWUP_STATES = (lifecycle.IN_SERVICES, lifecycle.MONITORING, lifecycle.WITHDRAWN_PENDING)


def record_service(session: Session, *, actor: Actor, case: ChildCase, service_type: str, implemented: bool,
                   implemented_on: date | None = None, submission_root: str | None = None) -> CaseService:
    """Record a service (planned or implemented); the first implemented one moves in_services → monitoring."""
    access.require_owner(actor, case, "a service")
    if service_type not in SERVICE_TYPES:
        raise BadServiceType(f"unknown service type {service_type!r}; one of: {', '.join(SERVICE_TYPES)}")
    if case.status not in SERVICE_STATES:
        raise InvalidState(f"services are recorded in states {', '.join(SERVICE_STATES)}; case {case.code} is "
                           f"{case.status}", details={"status": case.status})
    if implemented and implemented_on is None:
        implemented_on = utcnow().date()
    if implemented_on is not None and implemented_on > utcnow().date() + timedelta(days=1):
        raise DateInFuture("implemented_on is in the future")
    row = queries.service_of_submission(session, submission_root) if submission_root else None
    row = row or CaseService(case_id=case.id, submission_root=submission_root)
    row.service_type, row.implemented = service_type, implemented
    row.implemented_on = implemented_on if implemented else None
    row.implementing_org_id, row.recorded_by_user_id = actor.organisation_id, actor.user.id
    session.add(row)
    session.flush()
    journal.record(session, "case.service", actor=actor, object_type="case", object_id=case.code,
                   service_type=service_type, implemented=implemented)
    if implemented and case.status == lifecycle.IN_SERVICES:
        transitions.transition(session, actor=actor, case=case, action="start_monitoring")
    return row


def record_followup(session: Session, *, actor: Actor, case: ChildCase, observed_on: date, child_found: bool,
                    in_hazardous_work: bool | None, in_school_or_training: bool | None,
                    submission_root: str | None = None, submission_id: int | None = None) -> CaseFollowup:
    """Record a follow-up observation and take the system transition when closure criteria are met."""
    access.require_owner(actor, case, "a follow-up")
    if case.status not in FOLLOWUP_STATES:
        raise InvalidState(f"follow-ups are recorded in states {', '.join(FOLLOWUP_STATES)}; case {case.code} is "
                           f"{case.status}", details={"status": case.status})
    row = queries.followup_of_submission(session, submission_root) if submission_root else None
    row = row or CaseFollowup(case_id=case.id, submission_root=submission_root, observed_on=observed_on)
    row.observed_on, row.child_found = observed_on, child_found
    row.in_hazardous_work = in_hazardous_work if child_found else None
    row.in_school_or_training = in_school_or_training if child_found else None
    row.observed_by_user_id, row.observed_by_role = actor.user.id, actor.role
    session.add(row)
    session.flush()
    journal.record(session, "case.followup", actor=actor, object_type="case", object_id=case.code)
    closure.evaluate_closure_criteria(session, case=case, requested_by=actor, submission_id=submission_id)
    return row
