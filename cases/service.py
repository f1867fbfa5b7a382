"""Case management rules: who sees which case and which fields, transitions (via ``lifecycle``),
services, follow-ups and the closure criteria, merges, the review queue and retention.

Plain functions over a session; they never commit and know nothing of HTTP. Access, in short
(domain.md §3.5, §4.2; design.md §6):

* caseworker: cases owned by their NGO (all fields; identity reads audited);
* monitor: cases they created; identity only until the NGO accepts, then a status summary;
* coordinator: every case's status and pseudonymous facts; identity only while verifying and
  routing (submitted, verified, referred); duplicates, merges and the review queue;
* admin: aggregates only (the KPI), no case content.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import union_all
from sqlmodel import Session, select

from app import audit
from app.blobs import delete_after_commit
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.identity import Actor
from app.models import Organisation, User
from app.timeutil import as_utc, isoformat, utcnow
from cases import codes, dedup, lifecycle, queries
from cases.lifecycle import TransitionRefused
from cases.models import (
    CaseDedupKey,
    CaseEvent,
    CaseFollowup,
    CaseService,
    CaseSubmission,
    ChildCase,
    ChildPerson,
)
from forms.models import CASE_FORM_KINDS, Form, FormMedia, FormVersion
from sync.media import DERIVED_SIZES
from sync.models import Blob, Submission, SubmissionAttachment
from sync.submission_xml import build_instance_xml, by_name

log = logging.getLogger("asmfield.cases")

#: Two good follow-ups at least this many days apart meet the closure criteria (§3.2, §3.6).
WITHDRAWAL_MIN_DAYS = 90
#: Failed follow-ups (child not found) needed before closing as lost to follow-up.
LOST_MIN_FAILED_FOLLOWUPS = 2
SERVICE_TYPES = ("education", "vocational_training", "health", "psychosocial", "family_income",
                 "birth_registration", "food", "shelter", "legal", "awareness")
#: Awareness raising alone is not remediation (§3.6).
REMEDIATION_TYPES = tuple(t for t in SERVICE_TYPES if t != "awareness")
#: Intake fields that identify the child or the family; readable only as §3.5 says, and erased by purge.
IDENTIFYING_NAMES = ("child_given_name", "child_family_name", "date_of_birth", "caregiver_name",
                     "caregiver_phone", "residence_area", "school_grade", "monitor_notes", "notes",
                     "child_photo", "photo")


# -- access ----------------------------------------------------------------------------------


def _owns(actor: Actor, case: ChildCase) -> bool:
    return actor.role == "caseworker" and case.organisation_id is not None and case.organisation_id == actor.organisation_id


def access_level(actor: Actor, case: ChildCase) -> str | None:
    """full | status | summary | None (not visible at all)."""
    if _owns(actor, case):
        return "full"
    if actor.role == "coordinator":
        return "status"
    if actor.role == "monitor" and case.created_by_user_id == actor.user.id:
        return "status" if case.status in lifecycle.PRE_ACCEPTANCE_STATES else "summary"
    return None


def may_read_identity(actor: Actor, case: ChildCase) -> bool:
    """Names, phone, notes, photos: the owning NGO; the coordinator and the creating monitor only
    before the NGO accepts (verification, routing and duplicate decisions)."""
    if case.identity_erased_at is not None:
        return False
    if _owns(actor, case):
        return True
    if case.status in lifecycle.PRE_ACCEPTANCE_STATES:
        return actor.role == "coordinator" or (actor.role == "monitor" and case.created_by_user_id == actor.user.id)
    return False


def visible_case(session: Session, *, actor: Actor, code: str) -> ChildCase:
    """The case named ``code`` if the caller may see it; otherwise 404 (existence is not revealed)."""
    normal = codes.normalise(code)
    if not codes.is_valid(normal):
        raise NotFound(f"no case {code!r}: case codes look like CL-7Q4K-M2XD (with a check character)",
                       code="case.not_found")
    case = queries.case_by_code(session, normal)
    if case is None or access_level(actor, case) is None:
        raise NotFound(f"no case {normal} visible to you", code="case.not_found")
    return case


def require_case_role(actor: Actor) -> None:
    if actor.role not in ("coordinator", "caseworker", "monitor"):
        raise Forbidden("case records are for coordinators, caseworkers and the monitors who created them; "
                        "administrators see aggregates only", code="case.forbidden")


# -- who acted ------------------------------------------------------------------------------


def actor_columns(actor: Actor | None, *, submitter_id: int | None = None) -> dict[str, Any]:
    """The columns of a case event naming who acted: the user, their role and organisation, the
    device the action came through (a device token acts for its user, so the event says which
    credential it was) and how they authenticated. ``actor`` None is the system, or, with
    ``submitter_id``, the stored submitter of a submission processed without a caller."""
    if actor is None:
        return {"actor_user_id": submitter_id, "actor_role": lifecycle.SYSTEM if submitter_id is None else "unknown",
                "actor_org_id": None, "actor_device_id": None, "actor_device": None, "actor_auth": None}
    return {"actor_user_id": actor.user.id, "actor_role": actor.role, "actor_org_id": actor.organisation_id,
            "actor_device_id": actor.device.id if actor.device else None,
            "actor_device": actor.device.name if actor.device else None, "actor_auth": actor.via}


def new_event(case: ChildCase, *, actor: Actor | None, action: str, from_status: str | None, to_status: str,
              submitter_id: int | None = None, **fields: Any) -> CaseEvent:
    """An immutable case event naming the real actor (see ``actor_columns``)."""
    return CaseEvent(case_id=case.id, action=action, from_status=from_status, to_status=to_status,
                     **actor_columns(actor, submitter_id=submitter_id), **fields)


def _audit(session: Session, action: str, *, actor: Actor | None, **fields: Any) -> None:
    """A case audit row: the audit log names the user and device; this adds how they authenticated."""
    audit.record(session, action, actor=actor, auth=actor.via if actor else None, **fields)


# -- reading ---------------------------------------------------------------------------------


def _org_name(session: Session, org_id: int | None) -> str | None:
    org = session.get(Organisation, org_id) if org_id else None
    return org.name if org else None


def list_cases(session: Session, *, actor: Actor, status: str | None = None, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
    """The caller's cases, newest first, as summaries without identifying fields."""
    require_case_role(actor)
    if status is not None and status not in lifecycle.STATES:
        raise Invalid(f"unknown status {status!r}; one of: {', '.join(lifecycle.STATES)}", code="case.bad_status")
    rows = queries.scoped_cases(session, role=actor.role, user_id=actor.user.id,
                                organisation_id=actor.organisation_id, status=status, limit=limit, offset=offset)
    _audit(session, "case.list", actor=actor, object_type="case", rows=len(rows))
    # Load the page's persons and organisations at once (later session.get calls hit the identity map).
    session.exec(select(ChildPerson).where(ChildPerson.id.in_({c.person_id for c in rows}))).all()
    session.exec(select(Organisation)).all()
    return [case_view(session, actor=actor, case=c, detail=False) for c in rows]


def case_view(session: Session, *, actor: Actor, case: ChildCase, detail: bool = True) -> dict[str, Any]:
    """A case as the caller may see it (pseudonymous; identity is a separate, audited read)."""
    level = access_level(actor, case)
    view: dict[str, Any] = {"code": case.code, "status": case.status, "updated_at": isoformat(case.updated_at)}
    if level == "summary" or level is None:
        return view
    person = queries.person(session, case.person_id)
    view.update(
        person=person.code if person else None,
        organisation=_org_name(session, case.organisation_id),
        proposed_organisation=_org_name(session, case.proposed_organisation_id),
        site=case.site_code, province=case.province, risk_level=case.risk_level, urgent=case.urgent,
        classification=case.classification, sex=case.sex, age_band=case.age_band,
        date_identified=case.date_identified.isoformat(),
        consent={"given_by": case.consent_giver, "services": case.consent_services,
                 "share_partner": case.consent_share_partner, "reporting": case.consent_reporting,
                 "photo": case.consent_photo},
        pending_request=({"kind": case.pending_request, "reason": case.pending_reason}
                         if case.pending_request else None),
        closure_reason=case.closure_reason, opened_at=isoformat(case.opened_at), closed_at=isoformat(case.closed_at),
        duplicate_of=_code_of(session, case.duplicate_of_id), identity_erased=case.identity_erased_at is not None,
        identity_readable=may_read_identity(actor, case),
        allowed_actions=[a for a in lifecycle.allowed_actions(case.status, pending_request=case.pending_request)
                         if _role_for(actor, case) in lifecycle.BY_ACTION[a].roles],
    )
    if case.status in (lifecycle.REFERRED, lifecycle.TRANSFERRED):
        view["referral_due_at"] = isoformat(referral_due_at(session, case))
    if detail:
        view["events"] = [
            {"action": e.action, "from": e.from_status, "to": e.to_status, "role": e.actor_role,
             "actor": _username(session, e.actor_user_id), "organisation": _org_name(session, e.actor_org_id),
             "device": e.actor_device, "auth": e.actor_auth,
             "at": isoformat(e.at), "reason": e.reason}
            for e in queries.events(session, case.id)]
        view["services"] = [
            {"id": s.id, "type": s.service_type, "implemented": s.implemented,
             "implemented_on": s.implemented_on.isoformat() if s.implemented_on else None,
             "organisation": _org_name(session, s.implementing_org_id)} for s in queries.services(session, case.id)]
        view["followups"] = [
            {"date": f.observed_on.isoformat(), "child_found": f.child_found, "in_hazardous_work": f.in_hazardous_work,
             "in_school_or_training": f.in_school_or_training, "observed_by_role": f.observed_by_role}
            for f in queries.followups(session, case.id)]
        _audit(session, "case.view", actor=actor, object_type="case", object_id=case.code)
    return view


#: How long a partner NGO has to accept a referral (§3.5): 48 hours when the risk is high.
REFERRAL_SLA = {"high": timedelta(hours=48), "medium": timedelta(days=7), "low": timedelta(days=7)}


def referral_due_at(session: Session, case: ChildCase) -> Any:
    """When the owning NGO should have accepted the current referral or transfer."""
    sent = max((as_utc(e.at) for e in queries.events(session, case.id) if e.to_status == case.status),
               default=as_utc(case.updated_at))
    return sent + REFERRAL_SLA.get(case.risk_level, timedelta(days=7))


def _code_of(session: Session, case_id: int | None) -> str | None:
    other = session.get(ChildCase, case_id) if case_id else None
    return other.code if other else None


def _username(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else None


def read_identity(session: Session, *, actor: Actor, case: ChildCase) -> dict[str, Any]:
    """The identifying fields of a case (from its intake), for those §3.5 allows; always audited."""
    if not may_read_identity(actor, case):
        _audit(session, "case.read_identity_denied", actor=actor, object_type="case", object_id=case.code)
        reason = ("its identifying fields were erased after the retention period" if case.identity_erased_at
                  else "only the owning NGO's caseworkers (and, before acceptance, the coordinator and the "
                       "creating monitor) may read them")
        raise Forbidden(f"identity of case {case.code} is not readable: {reason}", code="case.identity_forbidden")
    intake = session.exec(select(Submission).where(Submission.root_instance_id == case.intake_root_instance_id,
                                                   Submission.current == True)).first()  # noqa: E712
    answers = by_name(intake.data) if intake else {}
    identity = {name: answers.get(name) for name in IDENTIFYING_NAMES if answers.get(name) is not None}
    photos = []
    if intake is not None:
        photos = [a.name for a in session.exec(select(SubmissionAttachment).where(
            SubmissionAttachment.submission_id == intake.id)).all()]
    _audit(session, "case.read_identity", actor=actor, object_type="case", object_id=case.code,
           fields=sorted(identity), role=actor.role)
    return {"code": case.code, "identity": identity, "photos": photos,
            "intake_instance_id": intake.instance_id if intake else None}


def case_photo(session: Session, *, actor: Actor, case: ChildCase, name: str) -> tuple[str, str]:
    """(sha256, media type) of a photo attached to the case's intake, for those who may read the
    identity; audited. Case photos are served here only, never by the general media route."""
    if not may_read_identity(actor, case):
        raise Forbidden(f"photos of case {case.code} are readable only by the owning NGO's caseworkers",
                        code="case.identity_forbidden")
    if not case.consent_photo:
        raise Forbidden(f"case {case.code} has no consent to photos", code="case.no_consent_to_photo")
    intake = session.exec(select(Submission).where(Submission.root_instance_id == case.intake_root_instance_id,
                                                   Submission.current == True)).first()  # noqa: E712
    att = None if intake is None else session.exec(select(SubmissionAttachment).where(
        SubmissionAttachment.submission_id == intake.id, SubmissionAttachment.name == name)).first()
    if att is None or not att.sha256:
        raise NotFound(f"case {case.code} has no photo {name!r}", code="case.photo_not_found")
    _audit(session, "case.read_photo", actor=actor, object_type="case", object_id=case.code, name=name)
    return att.sha256, att.media_type or "application/octet-stream"


def may_read_case_submission(session: Session, actor: Actor, submission: Submission) -> bool:
    """May ``actor`` read this submission (data, XML, attachments)? True for non-case forms.

    For SYNC-API (submission lists, ``/api/v1/media``): case-form submissions are readable only by
    the owning NGO's caseworkers and, before acceptance, the coordinator and the creating monitor;
    restricted ones (flagged for review) only by coordinators. A granted read is audited.
    """
    form = session.get(Form, submission.form_id)
    if form is None or form.kind not in CASE_FORM_KINDS:
        return True
    link = queries.link_for_submission(session, submission.id) if submission.id else None
    case = session.get(ChildCase, link.case_id) if link and link.case_id else None
    if case is not None:
        allowed = may_read_identity(actor, case)
    else:
        allowed = actor.role == "coordinator"
    if allowed:
        _audit(session, "case.read_submission", actor=actor, object_type="submission",
               object_id=submission.instance_id, case=case.code if case else None)
    return allowed


# -- transitions ---------------------------------------------------------------------------


def _role_for(actor: Actor | None, case: ChildCase) -> str:
    if actor is None:
        return lifecycle.SYSTEM
    if actor.role == "caseworker":
        return "caseworker" if _owns(actor, case) else "caseworker_other_org"
    return actor.role


def _refusal(exc: TransitionRefused, case: ChildCase) -> Exception:
    details = {"status": case.status, "allowed": exc.allowed}
    if exc.kind in ("state", "four_eyes"):
        return Conflict(exc.message, code=f"case.{'invalid_transition' if exc.kind == 'state' else 'four_eyes'}",
                        details=details)
    if exc.kind == "role":
        return Forbidden(exc.message, code="case.wrong_role", details=details)
    return Invalid(exc.message, code="case.unknown_action" if exc.kind == "unknown" else f"case.{exc.kind}",
                   details=details)


def _ngo(session: Session, ref: str | int | None, *, what: str) -> Organisation:
    org = queries.organisation_by_ref(session, ref)
    if org is None:
        raise Invalid(f"{what}: no organisation {ref!r}", code="case.unknown_organisation")
    if org.kind != "ngo":
        raise Invalid(f"{what}: {org.name} is not a partner NGO", code="case.not_an_ngo")
    return org


def transition(session: Session, *, actor: Actor | None, case: ChildCase, action: str, reason: str | None = None,
               organisation: str | int | None = None, into: str | None = None, risk_level: str | None = None,
               submission_id: int | None = None, details: dict[str, Any] | None = None) -> CaseEvent:
    """Take ``action`` on ``case`` as ``actor`` (None = the system) and write its immutable event.

    Refusals: wrong state or a missing second person → ``Conflict`` (409, naming the allowed
    actions); wrong role → ``Forbidden``; missing reason, consent or target → ``Invalid``.
    Nothing is changed when it refuses.
    """
    role = _role_for(actor, case)
    if role == "caseworker_other_org":
        raise NotFound(f"no case {case.code} visible to you", code="case.not_found")
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
                raise Invalid("risk_level must be low, medium or high", code="case.bad_risk_level")
            extra["risk_level"] = [case.risk_level, risk_level]
            case.risk_level = risk_level
        case.verified_at = now
    elif action in ("refer", "transfer"):
        if not case.consent_share_partner:
            raise Invalid(f"{action} needs consent to share with the partner NGO (consent_share_partner = yes); "
                          "this case has none", code="case.no_consent_to_share")
        target = _ngo(session, organisation if organisation is not None else case.proposed_organisation_id,
                      what=f"{action} target")
        if action == "transfer" and target.id == case.organisation_id:
            raise Invalid("transfer target is already the owning organisation", code="case.same_organisation")
        extra["organisation"] = target.name
        case.organisation_id = target.id
    elif action == "decline":
        extra["organisation"] = _org_name(session, case.organisation_id)
        case.organisation_id = None
    elif action == "merge":
        raise Invalid("use POST /api/v1/cases/{code}/merge with the case it duplicates", code="case.use_merge")
    elif action == "start_monitoring":
        if not any(s.implemented for s in queries.services(session, case.id)):
            raise Invalid("monitoring starts when a first service is implemented; record one first",
                          code="case.no_implemented_service")
    elif action == "request_closure":
        if reason == "lost_to_follow_up":
            failed = sum(1 for f in queries.followups(session, case.id) if not f.child_found)
            if failed < LOST_MIN_FAILED_FOLLOWUPS:
                raise Invalid(f"lost_to_follow_up needs at least {LOST_MIN_FAILED_FOLLOWUPS} failed follow-ups "
                              f"(child not found); this case has {failed}", code="case.not_lost")
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
    event = new_event(case, actor=actor, action=action, from_status=source, to_status=case.status, at=now,
                      reason=reason, submission_id=submission_id, details=extra)
    session.add(event)
    session.flush()
    _audit(session, f"case.{action}", actor=actor, object_type="case", object_id=case.code,
           from_status=source, to_status=case.status)
    return event


# -- services and follow-ups -----------------------------------------------------------------

SERVICE_STATES = (lifecycle.ACCEPTED, lifecycle.ASSESSMENT, lifecycle.PLAN_PENDING, lifecycle.IN_SERVICES,
                  lifecycle.MONITORING)
FOLLOWUP_STATES = (lifecycle.IN_SERVICES, lifecycle.MONITORING, lifecycle.WITHDRAWN_PENDING)


def _require_owner(actor: Actor, case: ChildCase, what: str) -> None:
    if actor.role == "caseworker" and not _owns(actor, case):
        raise NotFound(f"no case {case.code} visible to you", code="case.not_found")
    if not _owns(actor, case):
        raise Forbidden(f"{what} is recorded by the owning NGO's caseworkers", code="case.wrong_role")


def record_service(session: Session, *, actor: Actor, case: ChildCase, service_type: str, implemented: bool,
                   implemented_on: date | None = None, submission_root: str | None = None) -> CaseService:
    """Record a service (planned or implemented); the first implemented one moves in_services → monitoring."""
    _require_owner(actor, case, "a service")
    if service_type not in SERVICE_TYPES:
        raise Invalid(f"unknown service type {service_type!r}; one of: {', '.join(SERVICE_TYPES)}",
                      code="case.bad_service_type")
    if case.status not in SERVICE_STATES:
        raise Conflict(f"services are recorded in states {', '.join(SERVICE_STATES)}; case {case.code} is "
                       f"{case.status}", code="case.invalid_state", details={"status": case.status})
    if implemented and implemented_on is None:
        implemented_on = utcnow().date()
    if implemented_on is not None and implemented_on > utcnow().date() + timedelta(days=1):
        raise Invalid("implemented_on is in the future", code="case.date_in_future")
    row = None
    if submission_root:
        row = session.exec(select(CaseService).where(CaseService.submission_root == submission_root)).first()
    row = row or CaseService(case_id=case.id, submission_root=submission_root)
    row.service_type, row.implemented = service_type, implemented
    row.implemented_on = implemented_on if implemented else None
    row.implementing_org_id, row.recorded_by_user_id = actor.organisation_id, actor.user.id
    session.add(row)
    session.flush()
    _audit(session, "case.service", actor=actor, object_type="case", object_id=case.code,
           service_type=service_type, implemented=implemented)
    if implemented and case.status == lifecycle.IN_SERVICES:
        transition(session, actor=actor, case=case, action="start_monitoring")
    return row


def record_followup(session: Session, *, actor: Actor, case: ChildCase, observed_on: date, child_found: bool,
                    in_hazardous_work: bool | None, in_school_or_training: bool | None,
                    submission_root: str | None = None, submission_id: int | None = None) -> CaseFollowup:
    """Record a follow-up observation and take the system transition when closure criteria are met."""
    _require_owner(actor, case, "a follow-up")
    if case.status not in FOLLOWUP_STATES:
        raise Conflict(f"follow-ups are recorded in states {', '.join(FOLLOWUP_STATES)}; case {case.code} is "
                       f"{case.status}", code="case.invalid_state", details={"status": case.status})
    row = None
    if submission_root:
        row = session.exec(select(CaseFollowup).where(CaseFollowup.submission_root == submission_root)).first()
    row = row or CaseFollowup(case_id=case.id, submission_root=submission_root, observed_on=observed_on)
    row.observed_on, row.child_found = observed_on, child_found
    row.in_hazardous_work = in_hazardous_work if child_found else None
    row.in_school_or_training = in_school_or_training if child_found else None
    row.observed_by_user_id, row.observed_by_role = actor.user.id, actor.role
    session.add(row)
    session.flush()
    _audit(session, "case.followup", actor=actor, object_type="case", object_id=case.code)
    evaluate_closure_criteria(session, case=case, requested_by=actor, submission_id=submission_id)
    return row


def withdrawal_date(followups: list[CaseFollowup], *, since: Any = None,
                    min_days: int = WITHDRAWAL_MIN_DAYS) -> date | None:
    """Date of the second qualifying follow-up: within the latest run of consecutive good
    observations (found, no hazardous work, in school or training), the first one at least
    ``min_days`` after the run began. None when the criteria are not met.

    :param since: only follow-ups recorded after this moment count (after a relapse).
    """
    seen = [f for f in followups if f.child_found and (since is None or as_utc(f.created_at) >= since)]
    seen.sort(key=lambda f: (f.observed_on, f.id or 0))
    run: list[CaseFollowup] = []
    for f in seen:
        if f.in_hazardous_work is False and f.in_school_or_training is True:
            run.append(f)
        else:
            run = []
    if not run:
        return None
    start = run[0].observed_on
    for f in run[1:]:
        if (f.observed_on - start).days >= min_days:
            return f.observed_on
    return None


def evaluate_closure_criteria(session: Session, *, case: ChildCase, requested_by: Actor | None = None,
                              submission_id: int | None = None) -> CaseEvent | None:
    """monitoring → withdrawn_pending_closure (system) when the criteria are met; the closure then
    awaits a coordinator other than the caseworker who recorded the qualifying follow-up."""
    if case.status != lifecycle.MONITORING:
        return None
    since = _last_resume_date(session, case)
    withdrawn_on = withdrawal_date(queries.followups(session, case.id), since=since)
    if withdrawn_on is None:
        return None
    event = transition(session, actor=None, case=case, action="criteria_met", submission_id=submission_id,
                       details={"withdrawn_on": withdrawn_on.isoformat()})
    if case.first_withdrawn_on is None:
        case.first_withdrawn_on = withdrawn_on
    case.pending_request, case.pending_reason = "closure", "withdrawn_and_supported"
    case.requested_by_user_id = requested_by.user.id if requested_by else None
    session.add(case)
    return event


def _last_resume_date(session: Session, case: ChildCase) -> Any:
    """After a relapse (or a rejected closure), only follow-ups recorded from then on count."""
    last = None
    for e in queries.events(session, case.id):
        if e.action in ("resume_services", "reject_closure"):
            last = as_utc(e.at)
    return last


# -- consent -------------------------------------------------------------------------------

CONSENT_PURPOSES = ("services", "share_partner", "reporting", "photo")


def record_consent(session: Session, *, actor: Actor, case: ChildCase, purpose: str, given: bool,
                   given_by: str | None = None, reason: str | None = None, blobs: Any = None) -> CaseEvent:
    """Record a change of consent for one purpose (immutable event) and act on a withdrawal:
    photos are erased at once; a withdrawal of consent to services asks for closure."""
    if not (_owns(actor, case) or actor.role == "coordinator"):
        if actor.role == "caseworker":
            raise NotFound(f"no case {case.code} visible to you", code="case.not_found")
        raise Forbidden("consent is recorded by the owning NGO's caseworkers or a coordinator", code="case.wrong_role")
    if purpose not in CONSENT_PURPOSES:
        raise Invalid(f"unknown consent purpose {purpose!r}; one of: {', '.join(CONSENT_PURPOSES)}",
                      code="case.bad_consent_purpose")
    if case.status in lifecycle.TERMINAL_STATES:
        raise Conflict(f"case {case.code} is {case.status}", code="case.invalid_state", details={"status": case.status})
    field = f"consent_{purpose}"
    before = getattr(case, field)
    setattr(case, field, given)
    if given_by:
        case.consent_giver = given_by[:30]
    case.updated_at = utcnow()
    session.add(case)
    event = new_event(case, actor=actor, action="consent", from_status=case.status, to_status=case.status,
                      reason=reason, details={"purpose": purpose, "given": given, "before": before,
                                              "given_by": given_by})
    session.add(event)
    session.flush()
    _audit(session, "case.consent", actor=actor, object_type="case", object_id=case.code, purpose=purpose,
           given=given)
    if not given and purpose == "photo" and blobs is not None:
        for sub in session.exec(select(Submission).where(
                Submission.root_instance_id == case.intake_root_instance_id)).all():
            erase_submission_identity(session, sub, blobs=blobs, photos_only=True)
    if (not given and purpose == "services" and case.pending_request != "closure"
            and "request_closure" in lifecycle.allowed_actions(case.status, pending_request=case.pending_request)):
        case.pending_request, case.pending_reason = "closure", "consent_withdrawn"
        case.requested_by_user_id = actor.user.id
        session.add(case)
    return event


# -- duplicates and merge ------------------------------------------------------------------

#: At most this many matching key pairs are read per request (common names match widely).
MAX_DUPLICATE_ROWS = 5000


def duplicate_candidates(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Pairs of cases of different persons that share a keyed hash (coordinators only; audited).

    Only cases opened by a partner NGO's caseworker are indexed (``dedup.store_keys``). A pair is
    shown without any identifying field: pseudonymous codes, organisations, sites, age bands,
    dates, statuses and the kind of match (``name_year``, ``name_site``, ``phone``) only.
    """
    if actor.role != "coordinator":
        raise Forbidden("duplicate candidates are shown to coordinators only", code="case.forbidden")
    a, b = CaseDedupKey.__table__.alias("a"), CaseDedupKey.__table__.alias("b")
    rows = session.exec(select(a.c.case_id, b.c.case_id, a.c.kind)
                        .join(b, (a.c.value == b.c.value) & (a.c.kind == b.c.kind) & (a.c.case_id < b.c.case_id))
                        .limit(MAX_DUPLICATE_ROWS)).all()
    pairs: dict[tuple[int, int], set[str]] = {}
    for left, right, kind in rows:
        pairs.setdefault((left, right), set()).add(kind)
    out = []
    ids = {i for pair in pairs for i in pair}
    cases = {c.id: c for c in session.exec(select(ChildCase).where(ChildCase.id.in_(ids))).all()} if ids else {}
    indexed = {i: dedup.opened_by_partner(session, c) for i, c in cases.items()}
    for (left, right), kinds in sorted(pairs.items()):
        ca, cb = cases.get(left), cases.get(right)
        if ca is None or cb is None or ca.person_id == cb.person_id or not (indexed[left] and indexed[right]):
            continue
        if ca.status in lifecycle.TERMINAL_STATES or cb.status in lifecycle.TERMINAL_STATES:
            continue
        out.append({"case": cb.code, "candidate": ca.code, "matched_on": sorted(kinds),
                    "statuses": [cb.status, ca.status], "sites": [cb.site_code, ca.site_code],
                    "organisations": [_org_name(session, c.organisation_id or c.created_by_org_id) for c in (cb, ca)],
                    "age_bands": [cb.age_band, ca.age_band],
                    "identified_on": [cb.date_identified.isoformat(), ca.date_identified.isoformat()],
                    "opened_at": [isoformat(cb.opened_at), isoformat(ca.opened_at)]})
    _audit(session, "case.duplicates", actor=actor, object_type="case", rows=len(out),
           pairs=[[p["case"], p["candidate"]] for p in out][:200])
    return out


def merge(session: Session, *, actor: Actor, case: ChildCase, into: str) -> CaseEvent:
    """Re-point ``case`` to the person of case ``into`` (coordinators). A case still ``submitted``
    becomes ``merged_duplicate`` of it; a case further along keeps its state and only its person."""
    if actor.role != "coordinator":
        raise Forbidden("merging duplicates is a coordinator's decision", code="case.wrong_role")
    target = queries.case_by_code(session, codes.normalise(into)) if codes.is_valid(codes.normalise(into)) else None
    if target is None:
        raise Invalid(f"merge target: no case {into!r}", code="case.unknown_merge_target")
    while target.duplicate_of_id is not None:
        target = session.get(ChildCase, target.duplicate_of_id)
    if target.id == case.id:
        raise Invalid("a case cannot be merged into itself", code="case.merge_self")
    if case.status in lifecycle.TERMINAL_STATES:
        raise Conflict(f"case {case.code} is {case.status}; nothing to merge", code="case.invalid_transition",
                       details={"status": case.status, "allowed": lifecycle.allowed_actions(case.status)})
    old_person = queries.person(session, case.person_id)
    new_person = queries.person(session, target.person_id)
    source = case.status
    case.person_id = target.person_id
    if source == lifecycle.SUBMITTED:
        case.status = lifecycle.MERGED
        case.duplicate_of_id = target.id
    case.updated_at = utcnow()
    session.add(case)
    event = new_event(case, actor=actor, action="merge", from_status=source, to_status=case.status,
                      reason=f"duplicate of {target.code}",
                      details={"into": target.code, "from_person": old_person.code if old_person else None,
                               "to_person": new_person.code if new_person else None})
    session.add(event)
    session.flush()
    _audit(session, "case.merge", actor=actor, object_type="case", object_id=case.code, into=target.code)
    return event


# -- review queue --------------------------------------------------------------------------


def review_queue(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Case-form submissions flagged for a coordinator (no identifying fields)."""
    if actor.role != "coordinator":
        raise Forbidden("the case review queue is for coordinators", code="case.forbidden")
    rows = session.exec(select(Submission, Form).join(Form, Form.id == Submission.form_id)
                        .where(Submission.review_state == "needs_review", Submission.current == True,  # noqa: E712
                               Form.kind.in_(CASE_FORM_KINDS)).order_by(Submission.received_at)).all()
    _audit(session, "case.review_queue", actor=actor, object_type="submission", rows=len(rows))
    return [{"instance_id": s.instance_id, "form": f.xml_form_id, "kind": f.kind, "received_at": isoformat(s.received_at),
             "submitted_by": _username(session, s.submitted_by_user_id), "restricted": s.restricted,
             "reason": s.review_reason} for s, f in rows]


def resolve_review(session: Session, *, actor: Actor, instance_id: str, decision: str,
                   note: str | None = None, settings: Any = None, blobs: Any = None) -> dict[str, Any]:
    """Close a review: ``rejected`` (kept restricted, nothing opened) or ``approved`` (acknowledged).
    For an intake edit held for review, ``approved`` applies it to its case and ``rejected`` leaves
    the case as it was (``cases.ingest.decide_intake_edit``)."""
    from cases import ingest  # ingest imports this module

    if actor.role != "coordinator":
        raise Forbidden("the case review queue is for coordinators", code="case.forbidden")
    if decision not in ("approved", "rejected"):
        raise Invalid("decision must be approved or rejected", code="case.bad_decision")
    sub = session.exec(select(Submission).where(Submission.instance_id == instance_id)).first()
    if sub is None or sub.review_state != "needs_review":
        raise NotFound(f"no submission {instance_id!r} awaiting review", code="case.review_not_found")
    edit = ingest.decide_intake_edit(session, actor=actor, submission=sub, decision=decision, note=note,
                                     settings=settings, blobs=blobs)
    sub.review_state = decision
    session.add(sub)
    _audit(session, "case.review", actor=actor, object_type="submission", object_id=instance_id,
           decision=decision, note=(note or "")[:200])
    return {"instance_id": instance_id, "review_state": decision, **(edit or {})}


# -- creation (from an intake) ---------------------------------------------------------------


def new_case(session: Session, *, root_instance_id: str, person: ChildPerson | None = None, **fields: Any) -> ChildCase:
    """A new case (status submitted) with fresh pseudonymous codes; codes are retried on collision."""
    if person is None:
        person = ChildPerson(code=_unique_code(session, ChildPerson, codes.new_person_code))
        session.add(person)
        session.flush()
    case = ChildCase(code=_unique_code(session, ChildCase, codes.new_case_code), person_id=person.id,
                     status=lifecycle.SUBMITTED, intake_root_instance_id=root_instance_id, **fields)
    session.add(case)
    session.flush()
    return case


def _unique_code(session: Session, model: type, make) -> str:  # noqa: ANN001
    for _ in range(20):
        code = make()
        if session.exec(select(model).where(model.code == code)).first() is None:
            return code
    raise RuntimeError("could not draw a free pseudonymous code")


def link_submission(session: Session, *, submission: Submission, case: ChildCase | None, kind: str) -> None:
    link = queries.link_for_submission(session, submission.id)
    if link is None:
        link = CaseSubmission(submission_id=submission.id, root_instance_id=submission.root_instance_id, kind=kind)
    link.case_id = case.id if case else None
    session.add(link)


# -- retention -----------------------------------------------------------------------------


def purge_identities(session: Session, *, settings: Any, blobs: Any, actor: Actor | None = None,
                     now: Any = None, dry_run: bool = False, photos_only: bool = False) -> dict[str, Any]:
    """Erase the identifying fields of cases closed longer than ``settings.case_retention_days``:
    in the case-form submissions (data, XML, attachment links and unreferenced photo files) and
    the dedup keys. Case rows, events, services and follow-ups stay, so every count survives.

    Files are removed only after the caller's transaction commits (``app.blobs.delete_after_commit``): a
    purge that fails leaves every row and every file as it was, and running it again redoes it.

    :param photos_only: erase only the photos (fields and files); names and the rest stay, and
        the case is not marked erased (a later full purge still erases them).
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.case_retention_days)
    due = [c for c in session.exec(select(ChildCase).where(ChildCase.status == lifecycle.CLOSED,
                                                           ChildCase.identity_erased_at == None)).all()  # noqa: E711
           if c.closed_at is not None and as_utc(c.closed_at) < cutoff]
    summary = {"cases": len(due), "submissions": 0, "attachments": 0, "files": 0, "dry_run": dry_run,
               "photos_only": photos_only, "cutoff": isoformat(cutoff), "codes": [c.code for c in due]}
    if dry_run or not due:
        return summary
    for case in due:
        roots = {link.root_instance_id for link in queries.links_for_case(session, case.id)}
        roots.add(case.intake_root_instance_id)
        subs = session.exec(select(Submission).where(Submission.root_instance_id.in_(sorted(roots)))).all()
        for sub in subs:
            attachments, files = erase_submission_identity(session, sub, blobs=blobs, photos_only=photos_only)
            summary["submissions"] += 1
            summary["attachments"] += attachments
            summary["files"] += files
        reason = f"retention: closed more than {settings.case_retention_days} days ago"
        if photos_only:
            session.add(new_event(case, actor=actor, action="erase_photos", from_status=case.status,
                                  to_status=case.status, reason=reason))
            continue
        for key in session.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all():
            session.delete(key)
        case.identity_erased_at = now
        session.add(case)
        session.add(new_event(case, actor=actor, action="erase_identity", from_status=case.status,
                              to_status=case.status, reason=reason))
    session.flush()
    _audit(session, "case.purge", actor=actor, object_type="case", cases=summary["cases"],
           submissions=summary["submissions"], attachments=summary["attachments"], files=summary["files"],
           photos_only=photos_only, codes=summary["codes"])
    return summary


def _form_media_uses(session: Session, sha: str) -> bool:
    return session.exec(select(FormMedia).where(FormMedia.sha256 == sha)).first() is not None


def _photo_fields(version: FormVersion | None) -> set[str]:
    """Paths of the form's image questions (``binary`` with an image media type)."""
    return {f["path"] for f in (version.fields if version else [])
            if f.get("type") == "binary" and str(f.get("mediatype") or "").startswith("image")}


def _is_photo(att: SubmissionAttachment, photo_fields: set[str]) -> bool:
    return att.field_path in photo_fields or str(att.media_type or "").startswith("image/")


def erase_submission_identity(session: Session, sub: Any, *, blobs: Any, photos_only: bool = False) -> tuple[int, int]:
    """Drop identifying answers and photos from one case-form submission: its data, its XML, its
    attachment rows and the files no one else references. ``xml_sha256`` keeps the hash of what
    was received, so a tablet resending it is still answered as a duplicate.

    With ``photos_only`` only the image answers and photo attachments go; other answers and
    attachments stay. Files are deleted after the transaction commits, never before.

    :returns: (attachment rows removed, files scheduled for deletion).
    """
    version = session.get(FormVersion, sub.form_version_id)
    binary = {f["path"] for f in (version.fields if version else []) if f.get("type") == "binary"}
    photos = _photo_fields(version)
    if photos_only:
        data = {k: v for k, v in (sub.data or {}).items() if k not in photos}
    else:
        data = {k: v for k, v in (sub.data or {}).items()
                if k.rsplit("/", 1)[-1] not in IDENTIFYING_NAMES and k not in binary}
    sub.data = data
    if version is not None:
        sub.xml = build_instance_xml(version, data, sub.instance_id, deprecated_id=sub.deprecated_id).decode("utf-8")
    freed: set[str] = set()
    removed = files = 0
    kept = 0
    for att in session.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).all():
        if photos_only and not _is_photo(att, photos):
            kept += 1
            continue
        if att.sha256:
            freed.add(att.sha256)
        session.delete(att)
        removed += 1
    if kept == 0:
        sub.attachments_expected = sub.attachments_present = 0
        sub.complete = True
    else:
        sub.attachments_expected = max(0, (sub.attachments_expected or 0) - removed)
        sub.attachments_present = max(0, (sub.attachments_present or 0) - removed)
    sub.updated_at = utcnow()
    session.add(sub)
    session.flush()
    for sha in sorted(freed):
        still_used = session.exec(select(SubmissionAttachment).where(SubmissionAttachment.sha256 == sha)).first()
        if still_used is not None or _form_media_uses(session, sha):
            continue
        files += blobs.exists(sha) + sum(blobs.derived_exists(sha, variant) for variant in DERIVED_SIZES)
        delete_after_commit(session, blobs, [sha], still_used=_blob_in_use)
        blob = session.get(Blob, sha)
        if blob is not None:
            session.delete(blob)
    return removed, files


# -- files after commit ----------------------------------------------------------------------


def _blob_in_use(conn: Any, sha: str) -> bool:
    """Asked after the purge committed (``app.blobs.delete_after_commit``): does a committed row
    still use the blob (a savepoint rolled back, or another submission stored the same bytes
    meanwhile)? Then its files stay. Missing files are fine: running a purge again is harmless."""
    attachments, media, blobs = SubmissionAttachment.__table__, FormMedia.__table__, Blob.__table__
    return conn.execute(union_all(sa_select(blobs.c.sha256).where(blobs.c.sha256 == sha),
                                  sa_select(attachments.c.sha256).where(attachments.c.sha256 == sha),
                                  sa_select(media.c.sha256).where(media.c.sha256 == sha))).first() is not None
