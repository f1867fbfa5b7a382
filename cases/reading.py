"""What a caller reads: the case list, one case (pseudonymous), its identity and its photos.

Every read is audited; the identity and photos only for those ``cases.access`` allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from app.identity import Actor
from app.timeutil import as_utc, isoformat, utcnow
from cases import access, journal, lifecycle, queries
from cases.errors import BadStatus, IdentityForbidden, NoConsentToPhoto, PhotoNotFound
from cases.models import ChildCase
from cases.schemas import (
    CaseEventPublic,
    CaseFollowupPublic,
    CasePublic,
    CaseServicePublic,
    ConsentPublic,
    IdentityPublic,
    PendingRequestPublic,
)
from sync.submission_xml import by_name

#: How long a partner NGO has to accept a referral (§3.5): 48 hours when the risk is high.
REFERRAL_SLA = {"high": timedelta(hours=48), "medium": timedelta(days=7), "low": timedelta(days=7)}
#: A case in services or monitoring is due a follow-up visit this long after the last one (or,
#: before any, after it entered that state).
FOLLOWUP_INTERVAL = timedelta(days=30)
#: The states in which follow-up visits are expected.
FOLLOWUP_DUE_STATES = (lifecycle.IN_SERVICES, lifecycle.MONITORING)


def list_cases(session: Session, *, actor: Actor, status: str | None = None, limit: int = 100,
               offset: int = 0) -> list[CasePublic]:
    """The caller's cases, newest first, as summaries without identifying fields."""
    access.require_case_role(actor)
    if status is not None and status not in lifecycle.STATES:
        raise BadStatus(f"unknown status {status!r}; one of: {', '.join(lifecycle.STATES)}")
    rows = queries.scoped_cases(session, role=actor.role, user_id=actor.user.id,
                                organisation_id=actor.organisation_id, status=status, limit=limit, offset=offset)
    journal.record(session, "case.list", actor=actor, object_type="case", rows=len(rows))
    # Load the page's persons and organisations at once (later session.get calls hit the identity map).
    queries.persons_by_ids(session, {c.person_id for c in rows})
    queries.organisations(session)
    return [case_view(session, actor=actor, case=c, detail=False) for c in rows]


def case_view(session: Session, *, actor: Actor, case: ChildCase, detail: bool = True) -> CasePublic:
    """A case as the caller may see it (pseudonymous; identity is a separate, audited read)."""
    level = access.access_level(actor, case)
    if level == "summary" or level is None:
        return CasePublic(code=case.code, status=case.status, updated_at=isoformat(case.updated_at))
    person = queries.person(session, case.person_id)
    role = access.role_for(actor, case)
    view = CasePublic(
        code=case.code, status=case.status, updated_at=isoformat(case.updated_at),
        person=person.code if person else None,
        organisation=queries.organisation_name(session, case.organisation_id),
        proposed_organisation=queries.organisation_name(session, case.proposed_organisation_id),
        site=case.site_code, province=case.province, risk_level=case.risk_level, urgent=case.urgent,
        classification=case.classification, sex=case.sex, age_band=case.age_band,
        date_identified=case.date_identified.isoformat(),
        consent=ConsentPublic.from_case(case),
        pending_request=(PendingRequestPublic(kind=case.pending_request, reason=case.pending_reason)
                         if case.pending_request else None),
        closure_reason=case.closure_reason, opened_at=isoformat(case.opened_at), closed_at=isoformat(case.closed_at),
        duplicate_of=queries.case_code(session, case.duplicate_of_id), identity_erased=case.identity_erased_at is not None,
        identity_readable=access.may_read_identity(actor, case),
        allowed_actions=[a for a in lifecycle.allowed_actions(case.status, pending_request=case.pending_request)
                         if role in lifecycle.BY_ACTION[a].roles],
    )
    if case.status in (lifecycle.REFERRED, lifecycle.TRANSFERRED):
        view.referral_due_at = isoformat(referral_due_at(session, case))
    if detail:
        view.events = [CaseEventPublic.from_row(e, actor=queries.username(session, e.actor_user_id),
                                                organisation=queries.organisation_name(session, e.actor_org_id))
                       for e in queries.events(session, case.id)]
        view.services = [CaseServicePublic.from_row(s, organisation=queries.organisation_name(session, s.implementing_org_id))
                         for s in queries.services(session, case.id)]
        view.followups = [CaseFollowupPublic.from_row(f) for f in queries.followups(session, case.id)]
        journal.record(session, "case.view", actor=actor, object_type="case", object_id=case.code)
    return view


def referral_due_at(session: Session, case: ChildCase) -> datetime:
    """When the owning NGO should have accepted the current referral or transfer."""
    sent = max((as_utc(e.at) for e in queries.events(session, case.id) if e.to_status == case.status),
               default=as_utc(case.updated_at))
    return sent + REFERRAL_SLA.get(case.risk_level, timedelta(days=7))


def read_identity(session: Session, *, actor: Actor, case: ChildCase, reason: str | None = None) -> IdentityPublic:
    """The identifying fields of a case (from its intake), for those §3.5 allows; always audited.

    :param reason: why the caller needs them (the web page asks; kept in the audit row).
    """
    why = {"reason": reason[:200]} if reason else {}
    if not access.may_read_identity(actor, case):
        journal.record(session, "case.read_identity_denied", actor=actor, object_type="case", object_id=case.code,
                       **why)
        reason = ("its identifying fields were erased after the retention period" if case.identity_erased_at
                  else "only the owning NGO's caseworkers (and, before acceptance, the coordinator and the "
                       "creating monitor) may read them")
        raise IdentityForbidden(f"identity of case {case.code} is not readable: {reason}")
    intake = queries.current_intake(session, case)
    answers = by_name(intake.data) if intake else {}
    identity = {name: answers.get(name) for name in access.IDENTIFYING_NAMES if answers.get(name) is not None}
    photos = [a.name for a in queries.attachments(session, intake.id)] if intake is not None else []
    journal.record(session, "case.read_identity", actor=actor, object_type="case", object_id=case.code,
                   fields=sorted(identity), role=actor.role, **why)
    return IdentityPublic(code=case.code, identity=identity, photos=photos,
                          intake_instance_id=intake.instance_id if intake else None)


def case_photo(session: Session, *, actor: Actor, case: ChildCase, name: str) -> tuple[str, str]:
    """(sha256, media type) of a photo attached to the case's intake, for those who may read the
    identity; audited. Case photos are served here only, never by the general media route."""
    if not access.may_read_identity(actor, case):
        raise IdentityForbidden(f"photos of case {case.code} are readable only by the owning NGO's caseworkers")
    if not case.consent_photo:
        raise NoConsentToPhoto(f"case {case.code} has no consent to photos")
    intake = queries.current_intake(session, case)
    att = None if intake is None else queries.attachment(session, intake.id, name)
    if att is None or not att.sha256:
        raise PhotoNotFound(f"case {case.code} has no photo {name!r}")
    journal.record(session, "case.read_photo", actor=actor, object_type="case", object_id=case.code, name=name)
    return att.sha256, att.media_type or "application/octet-stream"


# -- the caseworker's work list ------------------------------------------------------------


@dataclass
class WorkItem:
    """One case of the work list: its pseudonymous summary and what needs doing on it."""

    case: CasePublic
    #: referral_overdue | followup_due | my_approval | incoming
    needs: list[str] = field(default_factory=list)
    #: usernames of the caseworkers who acted on the case
    caseworkers: list[str] = field(default_factory=list)
    due_at: datetime | None = None


def worklist(session: Session, *, actor: Actor, now: datetime | None = None, limit: int = 500) -> list[WorkItem]:
    """The caller's cases (scoped and audited as ``list_cases``), newest first, each with what needs
    doing: a referral or transfer past its deadline, a follow-up visit due, a four-eyes request
    the caller may approve (never their own), a referral or transfer waiting for the caller's NGO."""
    now = now or utcnow()
    access.require_case_role(actor)
    rows = queries.scoped_cases(session, role=actor.role, user_id=actor.user.id,
                                organisation_id=actor.organisation_id, limit=limit)
    journal.record(session, "case.list", actor=actor, object_type="case", rows=len(rows))
    queries.persons_by_ids(session, {c.person_id for c in rows})
    queries.organisations(session)
    items = []
    for case in rows:
        item = WorkItem(case=case_view(session, actor=actor, case=case, detail=False))
        if access.access_level(actor, case) == "full" or actor.role == "coordinator":
            events = queries.events(session, case.id)
            item.caseworkers = sorted({name for e in events if e.actor_role == "caseworker"
                                       and (name := queries.username(session, e.actor_user_id))})
            item.needs, item.due_at = _needs(session, actor, case, events, now)
        items.append(item)
    return items


def _needs(session: Session, actor: Actor, case: ChildCase, events: list, now: datetime
           ) -> tuple[list[str], datetime | None]:
    needs: list[str] = []
    due = None
    if case.status in (lifecycle.REFERRED, lifecycle.TRANSFERRED):
        sent = max((as_utc(e.at) for e in events if e.to_status == case.status), default=as_utc(case.updated_at))
        due = sent + REFERRAL_SLA.get(case.risk_level, timedelta(days=7))
        if due < now:
            needs.append("referral_overdue")
        if access.owns(actor, case):
            needs.append("incoming")
    if case.status in FOLLOWUP_DUE_STATES:
        started = max((as_utc(e.at) for e in events if e.to_status == case.status and e.from_status != case.status),
                      default=as_utc(case.updated_at))
        seen = [f.observed_on for f in queries.followups(session, case.id)]
        last = max(seen) if seen else started.date()
        due = datetime.combine(last, datetime.min.time(), tzinfo=now.tzinfo) + FOLLOWUP_INTERVAL
        if due < now:
            needs.append("followup_due")
    if case.pending_request and case.requested_by_user_id != actor.user.id:
        action = "approve_plan" if case.pending_request == "plan" else "approve_closure"
        if (action in lifecycle.allowed_actions(case.status, pending_request=case.pending_request,
                                                role=access.role_for(actor, case))):
            needs.append("my_approval")
    return needs, due
