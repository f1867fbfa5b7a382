"""Web pages of cases: the work list (``/cases``) and the case page (``/cases/{code}``) with every
lifecycle step the caller may take (see app.web.render for the page conventions).

The pages call what the JSON API calls (``cases.routes``): ``access.require_case_role`` and
``access.visible_case`` first (another NGO's case is a 404), then ``reading``, ``transitions``,
``remediation``, ``consent``, ``duplicates``. A refused step re-renders the case page with the
reason next to the field and what was typed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import Response

from app.deps import BlobsDep, SessionDep
from app.errors import DomainError
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.timeutil import utcnow
from app.web.i18n import N_, gettext
from app.web.render import NavLink, WebActorDep, field_errors, redirect, render, web_router
from cases import access, consent, duplicates, lifecycle, queries, reading, remediation, transitions
from cases.models import ChildCase

router = web_router()
#: this module's entries in the top navigation (README: case facts for coordinators and the NGO's caseworkers)
NAV: tuple[NavLink, ...] = (NavLink("/cases", N_("Cases"), roles=("coordinator", "caseworker"), order=50),)
PER_PAGE = 50
FORM = {"openapi_extra": takes(FORM_URLENCODED, MULTIPART)}

# -- words on the pages (message ids; the services speak in codes) ----------------------------

STATE_LABELS = {
    "submitted": N_("Submitted"), "verified": N_("Verified"), "rejected_not_eligible": N_("Rejected (not eligible)"),
    "merged_duplicate": N_("Merged (duplicate)"), "referred": N_("Referred"), "accepted": N_("Accepted"),
    "assessment": N_("Assessment"), "case_plan_pending_approval": N_("Case plan awaiting approval"),
    "in_services": N_("In services"), "transferred": N_("Transferred"), "monitoring": N_("Monitoring"),
    "withdrawn_pending_closure": N_("Withdrawn, closure pending"), "closed": N_("Closed"), "reopened": N_("Reopened"),
}
ACTION_LABELS = {
    "submit": N_("Intake received"), "verify": N_("Verify"), "reject": N_("Reject as not eligible"),
    "merge": N_("Merge into another case"), "refer": N_("Refer to a partner NGO"),
    "close_consent_withdrawn": N_("Close: consent withdrawn"), "accept": N_("Accept the case"),
    "decline": N_("Decline the case"), "submit_plan": N_("Submit the case plan for approval"),
    "approve_plan": N_("Approve the case plan"), "reject_plan": N_("Send the case plan back"),
    "start_monitoring": N_("Start monitoring"), "transfer": N_("Transfer to another NGO"),
    "resume_services": N_("Resume services"), "criteria_met": N_("Closure criteria met"),
    "request_closure": N_("Request closure"), "approve_closure": N_("Approve the closure"),
    "reject_closure": N_("Send the closure back"), "reopen": N_("Reopen"),
    "resume_assessment": N_("Resume assessment"), "consent": N_("Consent changed"),
    "intake_edit": N_("Intake corrected"), "erase_photos": N_("Photos erased"),
    "erase_identity": N_("Identity erased"),
}
REASON_LABELS = {
    "age_18_or_over": N_("18 or over"), "no_child_labour": N_("No child labour"), "no_consent": N_("No consent"),
    "other": N_("Other"), "relapse": N_("Relapse"), "new_need": N_("New need"),
    "withdrawn_and_supported": N_("Withdrawn from work and supported"), "turned_18": N_("Turned 18"),
    "lost_to_follow_up": N_("Lost to follow-up"), "consent_withdrawn": N_("Consent withdrawn"), "death": N_("Death"),
    "transferred_out": N_("Transferred out of the programme"), "duplicate": N_("Duplicate"),
}
RISK_LABELS = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")}
SEX_LABELS = {"female": N_("Female"), "male": N_("Male")}
SERVICE_LABELS = {
    "education": N_("Education"), "vocational_training": N_("Vocational training"), "health": N_("Health"),
    "psychosocial": N_("Psychosocial care"), "family_income": N_("Family income"),
    "birth_registration": N_("Birth registration"), "food": N_("Food"), "shelter": N_("Shelter"),
    "legal": N_("Legal aid"), "awareness": N_("Awareness raising"),
}
PURPOSE_LABELS = {"services": N_("Case-management services"), "share_partner": N_("Sharing with the partner NGO"),
                  "reporting": N_("De-identified statistics"), "photo": N_("Identification photo")}
GIVER_LABELS = {"child": N_("Child"), "caregiver": N_("Caregiver"), "other_adult": N_("Other responsible adult")}
NEED_LABELS = {"referral_overdue": N_("Referral past its deadline"), "followup_due": N_("Follow-up due"),
               "my_approval": N_("Waiting for my approval"), "incoming": N_("Waiting for us to accept")}
IDENTITY_LABELS = {
    "child_given_name": N_("Given name"), "child_family_name": N_("Family name"), "date_of_birth": N_("Date of birth"),
    "caregiver_name": N_("Caregiver"), "caregiver_phone": N_("Caregiver phone"),
    "residence_area": N_("Area of residence"), "school_grade": N_("Class or grade"), "monitor_notes": N_("Notes"),
    "notes": N_("Notes"), "child_photo": N_("Photo"), "photo": N_("Photo"),
}
#: Refusals shown often, in the user's language (others show the service's English message).
ERROR_MESSAGES = {
    "case.four_eyes": N_("A second person must approve: you made this request."),
    "case.no_consent_to_share": N_("There is no consent to share this case with a partner NGO."),
    "case.no_implemented_service": N_("Record an implemented service first."),
    "case.not_lost": N_("Lost to follow-up needs at least two follow-ups where the child was not found."),
    "case.reason": N_("Give a reason."),
    "case.same_organisation": N_("The case already belongs to this organisation."),
    "case.date_in_future": N_("The date cannot be in the future."),
}
#: Steps that end or undo something: red buttons.
DANGER = {"reject", "decline", "reject_plan", "reject_closure", "close_consent_withdrawn", "merge"}


def label(table: dict[str, str], key: str | None) -> str:
    """The translated word for a service code, or the code itself when we have no word for it."""
    if key is None:
        return "—"
    return gettext(table[key]) if key in table else key


def when(value: str | datetime | date | None) -> str:
    """A timestamp as people read it: ``2026-03-01 14:05`` (UTC)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value.isoformat()


def refusal(exc: DomainError, default_field: str) -> dict[str, str]:
    """``field_errors`` with the message translated when it is one we show often."""
    errors = field_errors(exc, default_field)
    if exc.code in ERROR_MESSAGES:
        errors = {k: gettext(ERROR_MESSAGES[exc.code]) for k in errors}
    return errors


# -- the work list -------------------------------------------------------------------------


@router.get("/cases")
def case_list(request: Request, actor: WebActorDep, session: SessionDep, state: str = "", site: str = "",
              risk: str = "", caseworker: str = "", overdue: str = "", q: str = "", page: str = "1") -> Response:
    """My cases: what needs doing first, counts by state, filters kept in the URL."""
    access.require_case_role(actor)
    items = reading.worklist(session, actor=actor, now=utcnow())
    q = q.strip()[:40]
    wanted = [i for i in items
              if (not state or i.case.status == state) and (not site or i.case.site == site)
              and (not risk or i.case.risk_level == risk) and (not caseworker or caseworker in i.caseworkers)
              and (not overdue or {"referral_overdue", "followup_due"} & set(i.needs))
              and (not q or q.upper().replace(" ", "") in i.case.code.replace("-", "").upper().replace(" ", "")
                   or q.upper() in i.case.code)]
    pages = max(1, (len(wanted) + PER_PAGE - 1) // PER_PAGE)
    number = min(max(int(page) if page.isdigit() and len(page) < 6 else 1, 1), pages)
    filters = {"state": state, "site": site, "risk": risk, "caseworker": caseworker, "overdue": overdue, "q": q}
    kept = {k: v for k, v in filters.items() if v}
    counts: dict[str, int] = {}
    for item in items:
        counts[item.case.status] = counts.get(item.case.status, 0) + 1
    first = {need: [i for i in items if need in i.needs] for need in NEED_LABELS}
    return render(request, "cases/list.html", {
        "items": wanted[(number - 1) * PER_PAGE: number * PER_PAGE], "total": len(items), "shown": len(wanted),
        "page": number, "pages": pages, "filters": filters,
        "here_without_page": "/cases?" + urlencode(kept) + ("&" if kept else ""),
        "counts": [(s, counts[s]) for s in lifecycle.STATES if s in counts], "first": first,
        "state_options": [(s, label(STATE_LABELS, s)) for s in lifecycle.STATES],
        "site_options": [(s, s) for s in sorted({i.case.site for i in items if i.case.site})],
        "risk_options": [(r, label(RISK_LABELS, r)) for r in RISK_LABELS],
        "caseworker_options": [(u, u) for u in sorted({u for i in items for u in i.caseworkers})],
        "label": label, "when": when, "STATES": STATE_LABELS, "RISKS": RISK_LABELS, "SEXES": SEX_LABELS,
        "NEEDS": NEED_LABELS,
    })


# -- one case --------------------------------------------------------------------------------


def _ngos(session: SessionDep) -> list[tuple[str, str]]:
    return [(str(o.id), o.name) for o in sorted(queries.organisations(session), key=lambda o: o.name) if o.kind == "ngo"]


def _steps(session: SessionDep, actor: Any, case: ChildCase, allowed: list[str]) -> tuple[list[dict], bool]:
    """The forms of the steps the caller may take now, and whether a request waits for someone else."""
    steps, waiting = [], False
    for action in allowed:
        t = lifecycle.BY_ACTION[action]
        if t.four_eyes and case.requested_by_user_id == actor.user.id:
            waiting = True  # the approver must be another person
            continue
        step: dict[str, Any] = {"action": action, "label": label(ACTION_LABELS, action), "danger": action in DANGER,
                                "reason": None, "reasons": [], "organisations": [], "risk": action == "verify",
                                "into": action == "merge"}
        if t.needs_reason or action in ("request_closure", "merge"):
            step["reason"] = "select" if t.reasons else "text"
            step["reasons"] = [(r, label(REASON_LABELS, r)) for r in t.reasons]
        if action in ("refer", "transfer"):
            step["organisations"] = [(k, v) for k, v in _ngos(session)
                                     if action == "refer" or k != str(case.organisation_id)]
        steps.append(step)
    if case.pending_request and not any(lifecycle.BY_ACTION[s["action"]].needs_request for s in steps):
        waiting = True
    return steps, waiting


def _event_note(details: dict[str, Any]) -> str | None:
    """What an event's details add to its line on the timeline (consent purpose, target NGO, risk)."""
    if "purpose" in details:
        given = gettext("Given") if details.get("given") else gettext("Withdrawn")
        return f"{label(PURPOSE_LABELS, details['purpose'])}: {given}"
    if isinstance(details.get("risk_level"), list) and len(details["risk_level"]) == 2:
        before, after = details["risk_level"]
        return f"{gettext('Risk')}: {label(RISK_LABELS, before)} → {label(RISK_LABELS, after)}"
    if details.get("organisation"):
        return str(details["organisation"])
    if details.get("withdrawn_on"):
        return gettext("Withdrawn from work on %(date)s", date=details["withdrawn_on"])
    return None


def _case_page(request: Request, actor: Any, session: SessionDep, code: str, *, errors: dict[str, str] | None = None,
               failed: str | None = None, values: dict[str, Any] | None = None, identity: Any = None,
               status_code: int = 200) -> Response:
    case = access.visible_case(session, actor=actor, code=code)
    view = reading.case_view(session, actor=actor, case=case)
    full = access.access_level(actor, case) == "full"
    rows = queries.events(session, case.id) if view.events is not None else []
    timeline = [(e, _event_note(row.details or {})) for e, row in zip(view.events or [], rows, strict=False)]
    steps, waiting = _steps(session, actor, case, view.allowed_actions or []) if view.allowed_actions is not None \
        else ([], False)
    return render(request, "cases/case.html", {
        "case": view, "timeline": list(reversed(timeline)), "steps": steps,
        "late": bool(view.referral_due_at) and datetime.fromisoformat(
            str(view.referral_due_at).replace("Z", "+00:00")) < utcnow(), "waiting": waiting and case.pending_request is not None,
        "pending_by_me": case.pending_request is not None and case.requested_by_user_id == actor.user.id,
        "can_service": full and case.status in remediation.SERVICE_STATES,
        "can_followup": full and case.status in remediation.FOLLOWUP_STATES,
        "can_consent": (full or actor.role == "coordinator") and case.status not in lifecycle.TERMINAL_STATES
        and view.consent is not None,
        "identity": identity, "errors": errors or {}, "failed": failed, "values": values or {},
        "today": utcnow().date().isoformat(), "label": label, "when": when,
        "STATES": STATE_LABELS, "ACTIONS": ACTION_LABELS, "REASONS": REASON_LABELS, "RISKS": RISK_LABELS,
        "SEXES": SEX_LABELS, "SERVICES": SERVICE_LABELS, "PURPOSES": PURPOSE_LABELS, "GIVERS": GIVER_LABELS,
        "IDENTITY": IDENTITY_LABELS,
        "service_options": [(s, label(SERVICE_LABELS, s)) for s in remediation.SERVICE_TYPES],
        "purpose_options": [(p, label(PURPOSE_LABELS, p)) for p in consent.CONSENT_PURPOSES],
        "giver_options": [(g, label(GIVER_LABELS, g)) for g in GIVER_LABELS],
        "risk_options": [(r, label(RISK_LABELS, r)) for r in RISK_LABELS],
    }, status_code=status_code)


def _refused(request: Request, actor: Any, session: SessionDep, code: str, exc: DomainError, *, form: str,
             field: str, values: dict[str, Any]) -> Response:
    """The case page again after a refusal: nothing of it was kept (rollback), the reason by the field."""
    session.rollback()
    if exc.status_code == 404:
        raise exc
    errors = {f"{form}.{k}": v for k, v in refusal(exc, field).items()}
    return _case_page(request, actor, session, code, errors=errors, failed=form, values=values,
                      status_code=exc.status_code)


@router.get("/cases/{code}")
def case_page(code: str, request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    """One case: pseudonymous header, timeline, services, follow-ups, consent and the next steps."""
    access.require_case_role(actor)
    return _case_page(request, actor, session, code)


@router.post("/cases/{code}/transitions", **FORM)
def post_transition(code: str, request: Request, actor: WebActorDep, session: SessionDep, action: str = Form(""),
                    reason: str = Form(""), organisation: str = Form(""), risk_level: str = Form("")) -> Response:
    """Take one lifecycle step (the API's ``POST …/transitions``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    values = {"reason": reason, "organisation": organisation, "risk_level": risk_level}
    try:
        if risk_level and risk_level not in RISK_LABELS:
            raise DomainError(gettext("Choose a risk level."), code="case.bad_risk_level", status_code=422,
                              details={"field": "risk_level"})
        transitions.transition(session, actor=actor, case=case, action=action[:40], reason=reason.strip()[:500] or None,
                               organisation=organisation or None, risk_level=risk_level or None)
    except DomainError as exc:
        field = "organisation" if exc.code in ("case.unknown_organisation", "case.not_an_ngo",
                                               "case.same_organisation") else "reason"
        return _refused(request, actor, session, code, exc, form=action[:40], field=field, values=values)
    return redirect(f"/cases/{case.code}#timeline")


@router.post("/cases/{code}/merge", **FORM)
def post_merge(code: str, request: Request, actor: WebActorDep, session: SessionDep, into: str = Form(""),
               reason: str = Form("")) -> Response:
    """Merge the case into the one it duplicates (coordinators; the API's ``POST …/merge``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    try:
        duplicates.merge(session, actor=actor, case=case, into=into.strip()[:20], reason=reason.strip()[:500] or None)
    except DomainError as exc:
        return _refused(request, actor, session, code, exc, form="merge", field="into",
                        values={"into": into, "reason": reason})
    return redirect(f"/cases/{case.code}#timeline")


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _date(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(gettext("Give a date as YYYY-MM-DD."), code="case.bad_date", status_code=422,
                          details={"field": field}) from None


@router.post("/cases/{code}/services", **FORM)
def post_service(code: str, request: Request, actor: WebActorDep, session: SessionDep, service_type: str = Form(""),
                 implemented: str = Form(""), implemented_on: str = Form("")) -> Response:
    """Record a service planned or delivered (the API's ``POST …/services``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    values = {"service_type": service_type, "implemented": implemented, "implemented_on": implemented_on}
    try:
        on = _date(implemented_on, "implemented_on")
        remediation.record_service(session, actor=actor, case=case, service_type=service_type[:40],
                                   implemented=implemented == "yes", implemented_on=on)
    except DomainError as exc:
        field = "implemented_on" if exc.code in ("case.date_in_future", "case.bad_date") else "service_type"
        return _refused(request, actor, session, code, exc, form="service", field=field, values=values)
    return redirect(f"/cases/{case.code}#services")


@router.post("/cases/{code}/followups", **FORM)
def post_followup(code: str, request: Request, actor: WebActorDep, session: SessionDep, observed_on: str = Form(""),
                  child_found: str = Form("yes"), in_hazardous_work: str = Form(""),
                  in_school_or_training: str = Form("")) -> Response:
    """Record a follow-up observation (the API's ``POST …/followups``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    values = {"observed_on": observed_on, "child_found": child_found, "in_hazardous_work": in_hazardous_work,
              "in_school_or_training": in_school_or_training}
    try:
        on = _date(observed_on, "observed_on")
        if on is None:
            raise DomainError(gettext("Give the date of the visit."), code="case.bad_date", status_code=422,
                              details={"field": "observed_on"})
        remediation.record_followup(session, actor=actor, case=case, observed_on=on,
                                    child_found=child_found != "no", in_hazardous_work=_yes_no(in_hazardous_work),
                                    in_school_or_training=_yes_no(in_school_or_training))
    except DomainError as exc:
        return _refused(request, actor, session, code, exc, form="followup", field="observed_on", values=values)
    return redirect(f"/cases/{case.code}#followups")


@router.post("/cases/{code}/consent", **FORM)
def post_consent(code: str, request: Request, actor: WebActorDep, session: SessionDep, blobs: BlobsDep,
                 purpose: str = Form(""),
                 given: str = Form(""), given_by: str = Form(""), reason: str = Form("")) -> Response:
    """Record consent given or withdrawn for one purpose (the API's ``POST …/consent``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    values = {"purpose": purpose, "given": given, "given_by": given_by, "reason": reason}
    try:
        if given not in ("yes", "no"):
            raise DomainError(gettext("Say whether consent is given or withdrawn."), code="case.bad_consent",
                              status_code=422, details={"field": "given"})
        consent.record_consent(session, actor=actor, case=case, purpose=purpose[:20], given=given == "yes",
                               given_by=given_by if given_by in GIVER_LABELS else None,
                               reason=reason.strip()[:500] or None, blobs=blobs)
    except DomainError as exc:
        return _refused(request, actor, session, code, exc, form="consent", field="purpose", values=values)
    return redirect(f"/cases/{case.code}#consent")


@router.post("/cases/{code}/identity", **FORM)
def post_identity(code: str, request: Request, actor: WebActorDep, session: SessionDep,
                  reason: str = Form("")) -> Response:
    """Show the child's identity, once, for a stated reason (audited as ``GET …/identity``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    if not reason.strip():
        return _case_page(request, actor, session, code, errors={"identity.reason": gettext("Give a reason.")},
                          failed="identity", status_code=422)
    try:
        identity = reading.read_identity(session, actor=actor, case=case, reason=reason.strip())
    except DomainError as exc:
        # reason: the refusal is audited (read_identity_denied) and must stay in the log: no rollback
        errors = {"identity.reason": exc.message}
        return _case_page(request, actor, session, code, errors=errors, failed="identity",
                          values={"reason": reason}, status_code=exc.status_code)
    return _case_page(request, actor, session, code, identity=identity)
