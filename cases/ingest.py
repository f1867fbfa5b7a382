"""Open or advance child-labour cases from case-form submissions (called by ``app.pipeline``
inside the ingest transaction).

Never raises for bad field data: data collected at cost in the field is kept. What cannot be
applied (an intake for an adult or without consent, a follow-up naming an unknown case or
another organisation's case) is stored restricted (readable only by coordinators), flagged
``needs_review`` with a reason, opens or advances nothing, and waits in the review queue.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from app.errors import DomainError
from cases import codes, dedup, lifecycle, queries, service

if TYPE_CHECKING:
    from app.auth import Actor
    from app.settings import Settings
    from forms.models import Form, FormVersion
    from sync.models import Submission

log = logging.getLogger("asmfield.cases")
#: Stored choice values (anything else from a custom form or a JSON client is not stored as is).
SEXES = ("female", "male")
CONSENT_GIVERS = ("child", "caregiver", "other_adult")


def on_submission(session: Session, *, submission: Submission, form: Form, version: FormVersion,
                  actor: Actor | None, settings: Settings) -> None:
    """Open a case from an intake, advance one from a follow-up; flag what cannot be applied."""
    from forms.models import FormKind

    if form.kind == FormKind.case_intake:
        _intake(session, submission=submission, actor=actor, settings=settings)
    elif form.kind == FormKind.case_followup:
        _followup(session, submission=submission, actor=actor)


def _answers(submission: Submission) -> dict[str, Any]:
    from sync.submission_xml import by_name

    return by_name(submission.data or {})


def flag(session: Session, submission: Submission, reason: str, *, restricted: bool = True, kind: str,
         minimise: Settings | None = None) -> None:
    """Keep the submission, hide it (restricted) and queue it for a coordinator's review.

    :param minimise: settings, to also erase the identifying answers and photos (an intake that
        opens no case: no consent, or not a child, gives no basis to keep a name).
    """
    if minimise is not None:
        from app.blobs import FilesystemBlobStore

        service.erase_submission_identity(session, submission, blobs=FilesystemBlobStore(minimise.media_path))
    submission.restricted = submission.restricted or restricted
    submission.review_state = "needs_review"
    submission.review_reason = reason[:500]
    session.add(submission)
    service.link_submission(session, submission=submission, case=None, kind=kind)


# -- intake ----------------------------------------------------------------------------------


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split()


def _yes(value: Any) -> bool:
    return str(value).lower() in ("yes", "true", "1")


def age_of(answers: dict[str, Any], on: date) -> tuple[int | None, int | None]:
    """(age in whole years at ``on``, birth year), from date_of_birth, else the estimated age."""
    dob = _date(answers.get("date_of_birth"))
    if dob is not None and dob <= on:
        age = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
        return age, dob.year
    estimated = _int(answers.get("age_estimated_years"))
    if estimated is not None and estimated >= 0:
        return estimated, on.year - estimated
    return None, None


def _intake(session: Session, *, submission: Submission, actor: Actor | None, settings: Settings) -> None:
    from geodata.models import Site

    a = _answers(submission)
    received = submission.received_at.date() if submission.received_at else date.today()
    intake_date = _date(a.get("intake_date")) or received
    age, birth_year = age_of(a, intake_date)
    existing = queries.case_by_intake(session, submission.root_instance_id)

    problem = None
    if age is None:
        problem = "intake without a date of birth or an estimated age: cannot tell whether this is a child"
    elif age >= 18:
        problem = f"age {age} at intake: 18 or over, not a child case"
    elif a.get("consent_giver") == "not_obtained" or not _yes(a.get("consent_services")):
        problem = "no consent to case-management services: only an anonymous count may be kept"
    elif intake_date > received:
        problem = f"intake date {intake_date.isoformat()} is after the day it was received"
    if problem is not None:
        if existing is not None:
            problem = f"edit of the intake of case {existing.code} not applied: {problem}"
        flag(session, submission, problem, kind="intake", minimise=settings)
        return

    site = None
    if a.get("site_id"):
        site = session.exec(select(Site).where(Site.code == str(a["site_id"]))).first()
    if site is None and submission.site_id:
        site = session.get(Site, submission.site_id)
    activities = _list(a.get("activities"))
    classification = lifecycle.classify(age=age, activities=activities, forced_signs=_list(a.get("forced_or_trafficked")),
                                        hours_per_day=_int(a.get("hours_per_day")), night_work=_yes(a.get("night_work")),
                                        works_for=a.get("works_for"))
    risk = lifecycle.default_risk(classification=classification, activities=activities,
                                  caregiver_relation=a.get("caregiver_relation"),
                                  injuries=_list(a.get("injuries_health")), declared=a.get("risk_level"))
    proposed = queries.organisation_by_ref(session, a.get("referral_partner"))
    if proposed is not None and proposed.kind != "ngo":
        proposed = None
    own_ngo = False
    if actor is not None and actor.role == "caseworker":
        from app.models import Organisation

        org = session.get(Organisation, actor.organisation_id)
        own_ngo = org is not None and org.kind == "ngo"
    fields = dict(
        site_id=site.id if site else None, site_code=site.code if site else (str(a["site_id"])[:100] if a.get("site_id") else None),
        province=site.province if site else None, risk_level=risk, urgent=_yes(a.get("immediate_danger")),
        classification=classification, classifier_version=lifecycle.CLASSIFIER_VERSION,
        sex=a.get("sex") if a.get("sex") in SEXES else None, age_at_identification=age, age_band=lifecycle.age_band(age), date_identified=intake_date,
        consent_giver=a.get("consent_giver") if a.get("consent_giver") in CONSENT_GIVERS else "other",
        consent_services=True,
        consent_share_partner=_yes(a.get("consent_share_partner")), consent_reporting=_yes(a.get("consent_reporting")),
        consent_photo=_yes(a.get("consent_photo")),
    )
    if existing is None:
        case = service.new_case(
            session, root_instance_id=submission.root_instance_id,
            created_by_user_id=actor.user.id if actor else submission.submitted_by_user_id,
            created_by_org_id=actor.organisation_id if actor else None,
            # An NGO's own caseworker identified the child: the case is theirs from the start.
            organisation_id=actor.organisation_id if own_ngo else None,
            proposed_organisation_id=proposed.id if proposed else (actor.organisation_id if own_ngo else None),
            **fields)
        session.add(lifecycle_event(case, submission, actor))
    else:
        case = existing
        for key, value in fields.items():
            setattr(case, key, value)
        session.add(case)
    keys = dedup.raw_keys(given=a.get("child_given_name"), family=a.get("child_family_name"), sex=a.get("sex"),
                          birth_year=birth_year, phone=a.get("caregiver_phone"), site_code=case.site_code)
    dedup.store_keys(session, secret=settings.secret, case=case, keys=keys)
    service.link_submission(session, submission=submission, case=case, kind="intake")
    if a.get("child_photo") and not case.consent_photo:
        # No consent to photos: the photo is not kept; the rest of the intake is.
        from app.blobs import FilesystemBlobStore

        service.erase_submission_identity(session, submission, blobs=FilesystemBlobStore(settings.media_path),
                                          photos_only=True)
        submission.review_state = "needs_review"
        submission.review_reason = f"photo of the child without consent to photos was not kept (case {case.code})"
        session.add(submission)


def lifecycle_event(case: Any, submission: Submission, actor: Actor | None) -> Any:
    from cases.models import CaseEvent

    return CaseEvent(case_id=case.id, action="submit", from_status=None, to_status=lifecycle.SUBMITTED,
                     actor_user_id=actor.user.id if actor else submission.submitted_by_user_id,
                     actor_role=actor.role if actor else "unknown",
                     actor_org_id=actor.organisation_id if actor else None, submission_id=submission.id,
                     details={"instance_id": submission.instance_id})


# -- follow-up -------------------------------------------------------------------------------


def _followup(session: Session, *, submission: Submission, actor: Actor | None) -> None:
    a = _answers(submission)
    raw_code = codes.normalise(str(a.get("case_id") or ""))
    case = queries.case_by_code(session, raw_code) if codes.is_valid(raw_code) else None
    if case is None:
        flag(session, submission, f"follow-up names an unknown case {raw_code or '(none)'}", kind="followup")
        return
    if actor is None or service.access_level(actor, case) != "full":
        flag(session, submission, f"follow-up names case {case.code}, which is not a case of the submitter's "
                                  "organisation", kind="followup")
        return
    service.link_submission(session, submission=submission, case=case, kind="followup")
    kind = a.get("followup_type")
    on = _date(a.get("followup_date")) or (submission.received_at.date() if submission.received_at else date.today())
    # Each service function validates before it writes: a refusal leaves nothing half-done.
    try:
        if kind == "service":
            service.record_service(session, actor=actor, case=case, service_type=str(a.get("service_type") or ""),
                                   implemented=_yes(a.get("service_implemented")), implemented_on=on,
                                   submission_root=submission.root_instance_id)
        elif kind == "observation":
            service.record_followup(session, actor=actor, case=case, observed_on=on,
                                    child_found=_yes(a.get("child_found")),
                                    in_hazardous_work=_yes(a.get("in_hazardous_work")) if a.get("in_hazardous_work") else None,
                                    in_school_or_training=(_yes(a.get("in_school_or_training"))
                                                           if a.get("in_school_or_training") else None),
                                    submission_root=submission.root_instance_id, submission_id=submission.id)
        elif kind == "closure_request":
            service.transition(session, actor=actor, case=case, action="request_closure",
                               reason=a.get("closure_reason"), submission_id=submission.id)
        else:
            raise DomainError(f"unknown follow-up type {kind!r}")
    except DomainError as exc:
        # Kept and linked (the owning NGO may read it), but flagged: the case did not move.
        submission.review_state = "needs_review"
        submission.review_reason = f"follow-up of case {case.code} not applied: {exc.message}"[:500]
        session.add(submission)
