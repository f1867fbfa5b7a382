"""Open or advance child-labour cases from case-form submissions (on ``SubmissionStored``
inside the ingest transaction).

Never raises for bad field data: data collected at cost in the field is kept. What cannot be
applied (an intake for an adult or without consent, a follow-up naming an unknown case or
another organisation's case) is stored restricted (readable only by coordinators), flagged
``needs_review`` with a reason, opens or advances nothing, and waits in the review queue.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlmodel import Session

from app.blobs import BlobStore
from app.errors import DomainError
from app.events import SubmissionStored, announce
from app.identity import Actor
from app.models import Organisation
from app.settings import Settings
from app.timeutil import utcnow
from cases import (
    access,
    codes,
    consent,
    dedup,
    journal,
    lifecycle,
    opening,
    queries,
    remediation,
    retention,
    transitions,
)
from cases.errors import EditSuperseded
from cases.models import ChildCase
from forms.models import CASE_FORM_KINDS, Form, FormKind, FormVersion
from geodata.models import Site
from sync.models import Submission
from sync.submission_xml import by_name

log = logging.getLogger("asmfield.cases")
#: Stored choice values (anything else from a custom form or a JSON client is not stored as is).
SEXES = ("female", "male")
CONSENT_GIVERS = ("child", "caregiver", "other_adult")


def on_submission_stored(event: SubmissionStored) -> None:
    """The ``SubmissionStored`` subscriber (registered by ``cases.capability``)."""
    on_submission(event.session, submission=event.submission, form=event.form, version=event.version,
                  actor=event.actor, settings=event.settings, blobs=event.blobs)


def on_submission(session: Session, *, submission: Submission, form: Form, version: FormVersion,
                  actor: Actor | None, settings: Settings, blobs: BlobStore) -> None:
    """Open a case from an intake, advance one from a follow-up; flag what cannot be applied."""
    if form.kind == FormKind.case_intake:
        _intake(session, submission=submission, actor=actor, settings=settings, blobs=blobs)
    elif form.kind == FormKind.case_followup:
        _followup(session, submission=submission, actor=actor)


def _answers(submission: Submission) -> dict[str, Any]:
    return by_name(submission.data or {})


def flag(session: Session, submission: Submission, reason: str, *, restricted: bool = True, kind: str,
         minimise: BlobStore | None = None) -> None:
    """Keep the submission, hide it (restricted) and queue it for a coordinator's review.

    :param minimise: the blob store, to also erase the identifying answers and photos (an intake that
        opens no case: no consent, or not a child, gives no basis to keep a name).
    """
    if minimise is not None:
        retention.erase_submission_identity(session, submission, blobs=minimise)
    submission.restricted = submission.restricted or restricted
    submission.review_state = "needs_review"
    submission.review_reason = reason[:500]
    session.add(submission)
    opening.link_submission(session, submission=submission, case=None, kind=kind)


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


#: Case facts an intake edit may not change by itself (issue 9, finding 1): the edit is stored as
#: the record's current version, but the case keeps these until a coordinator decides (review).
DECIDED_FIELDS = ("consent_giver", "consent_services", "consent_share_partner", "consent_reporting", "consent_photo",
                  "age_band", "site_code", "proposed_organisation")
#: Link kind of an intake edit waiting for that decision (``CaseSubmission.kind``).
PENDING_EDIT = "intake_edit"


def _case_facts(session: Session, submission: Submission, a: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    """(case fields from the intake's answers, the problem that keeps it from opening a case, birth year)."""
    received = submission.received_at.date() if submission.received_at else date.today()
    intake_date = _date(a.get("intake_date")) or received
    age, birth_year = age_of(a, intake_date)
    problem = None
    if age is None:
        problem = "intake without a date of birth or an estimated age: cannot tell whether this is a child"
    elif age >= 18:
        problem = f"age {age} at intake: 18 or over, not a child case"
    elif a.get("consent_giver") == "not_obtained" or not _yes(a.get("consent_services")):
        problem = "no consent to case-management services: only an anonymous count may be kept"
    elif intake_date > received:
        problem = f"intake date {intake_date.isoformat()} is after the day it was received"

    site = None
    if a.get("site_id"):
        site = queries.site_by_code(session, str(a["site_id"]))
    if site is None and submission.site_id:
        site = session.get(Site, submission.site_id)
    activities = _list(a.get("activities"))
    classification = lifecycle.classify(age=age, activities=activities, forced_signs=_list(a.get("forced_or_trafficked")),
                                        hours_per_day=_int(a.get("hours_per_day")), night_work=_yes(a.get("night_work")),
                                        works_for=a.get("works_for"))
    risk = lifecycle.default_risk(classification=classification, activities=activities,
                                  caregiver_relation=a.get("caregiver_relation"),
                                  injuries=_list(a.get("injuries_health")), declared=a.get("risk_level"))
    fields = dict(
        site_id=site.id if site else None, site_code=site.code if site else (str(a["site_id"])[:100] if a.get("site_id") else None),
        province=site.province if site else None, risk_level=risk, urgent=_yes(a.get("immediate_danger")),
        classification=classification, classifier_version=lifecycle.CLASSIFIER_VERSION,
        sex=a.get("sex") if a.get("sex") in SEXES else None, age_at_identification=age, age_band=lifecycle.age_band(age), date_identified=intake_date,
        consent_giver=a.get("consent_giver") if a.get("consent_giver") in CONSENT_GIVERS else "other",
        consent_services=_yes(a.get("consent_services")) and a.get("consent_giver") != "not_obtained",
        consent_share_partner=_yes(a.get("consent_share_partner")), consent_reporting=_yes(a.get("consent_reporting")),
        consent_photo=_yes(a.get("consent_photo")),
    )
    return fields, problem, birth_year


def _proposed(session: Session, a: dict[str, Any]) -> Any:
    """The partner NGO the intake proposes (``referral_partner``), if it names one."""
    proposed = queries.organisation_by_ref(session, a.get("referral_partner"))
    return proposed if proposed is not None and proposed.kind == "ngo" else None


def _intake(session: Session, *, submission: Submission, actor: Actor | None, settings: Settings,
            blobs: BlobStore) -> None:
    a = _answers(submission)
    existing = queries.case_by_intake(session, submission.root_instance_id)
    if existing is not None:
        _intake_edit(session, submission=submission, case=existing, answers=a, settings=settings, blobs=blobs)
        return
    fields, problem, birth_year = _case_facts(session, submission, a)
    if problem is not None:
        flag(session, submission, problem, kind="intake", minimise=blobs)
        return

    proposed = _proposed(session, a)
    own_ngo = False
    if actor is not None and actor.role == "caseworker":
        org = session.get(Organisation, actor.organisation_id)
        own_ngo = org is not None and org.kind == "ngo"
    case = opening.new_case(
        session, root_instance_id=submission.root_instance_id,
        created_by_user_id=actor.user.id if actor else submission.submitted_by_user_id,
        created_by_org_id=actor.organisation_id if actor else None,
        # An NGO's own caseworker identified the child: the case is theirs from the start.
        organisation_id=actor.organisation_id if own_ngo else None,
        proposed_organisation_id=proposed.id if proposed else (actor.organisation_id if own_ngo else None),
        **fields)
    session.add(lifecycle_event(case, submission, actor))
    announce(session, "case.transition", {"case_id": case.id, "action": "submit", "from": None,
                                          "to": lifecycle.SUBMITTED, "at": utcnow()})
    _store_keys(session, case=case, answers=a, birth_year=birth_year, settings=settings)
    opening.link_submission(session, submission=submission, case=case, kind="intake")
    _photo_consent(session, submission, case=case, answers=a, blobs=blobs)


def _store_keys(session: Session, *, case: Any, answers: dict[str, Any], birth_year: int | None,
                settings: Settings) -> None:
    a = answers
    keys = dedup.raw_keys(given=a.get("child_given_name"), family=a.get("child_family_name"), sex=a.get("sex"),
                          birth_year=birth_year, phone=a.get("caregiver_phone"), site_code=case.site_code)
    dedup.store_keys(session, secret=settings.secret, case=case, keys=keys)


def _photo_consent(session: Session, submission: Submission, *, case: Any, answers: dict[str, Any],
                   blobs: BlobStore, consent: bool | None = None) -> None:
    """No consent to photos: the photo is not kept; the rest of the intake is."""
    if not answers.get("child_photo") or (case.consent_photo if consent is None else consent):
        return
    retention.erase_submission_identity(session, submission, blobs=blobs, photos_only=True)
    if submission.review_state != "needs_review":
        submission.review_state = "needs_review"
        submission.review_reason = f"photo of the child without consent to photos was not kept (case {case.code})"
    session.add(submission)


def _decided_changes(session: Session, case: Any, fields: dict[str, Any],
                     answers: dict[str, Any]) -> dict[str, list[Any]]:
    """The facts of ``DECIDED_FIELDS`` this intake edit would change: {field: [case value, edited value]}."""
    changes = {name: [getattr(case, name), fields[name]] for name in DECIDED_FIELDS
               if name in fields and getattr(case, name) != fields[name]}
    proposed = _proposed(session, answers)
    if proposed is not None and proposed.id != case.proposed_organisation_id:
        changes["proposed_organisation"] = [case.proposed_organisation_id, proposed.id]
    return changes


def _intake_edit(session: Session, *, submission: Submission, case: Any, answers: dict[str, Any],
                 settings: Settings, blobs: BlobStore) -> None:
    """An edit of the intake of ``case``: applied at once unless it changes what a person must decide
    (consent, age band, proposed organisation, site) or cannot open a case; then the case keeps its
    state and values and the edit waits in the review queue (``decide_intake_edit``)."""
    fields, problem, birth_year = _case_facts(session, submission, answers)
    changes = _decided_changes(session, case, fields, answers)
    if problem is None and not changes:
        for key, value in fields.items():
            if key not in DECIDED_FIELDS:
                setattr(case, key, value)
        case.updated_at = utcnow()
        session.add(case)
        _store_keys(session, case=case, answers=answers, birth_year=birth_year, settings=settings)
        opening.link_submission(session, submission=submission, case=case, kind="intake")
        _photo_consent(session, submission, case=case, answers=answers, blobs=blobs)
        return
    reasons = [f"changes {', '.join(sorted(changes))}"] if changes else []
    if problem is not None:
        reasons.append(problem)
    submission.review_state = "needs_review"
    submission.review_reason = (f"edit of the intake of case {case.code} not applied until a coordinator decides: "
                                f"{'; '.join(reasons)}")[:500]
    session.add(submission)
    opening.link_submission(session, submission=submission, case=case, kind=PENDING_EDIT)
    # The latest answer about photos holds at once; the case's own consent decides what is served.
    _photo_consent(session, submission, case=case, answers=answers, blobs=blobs,
                   consent=fields["consent_photo"])


def decide_intake_edit(session: Session, *, actor: Actor, submission: Submission, decision: str,
                       note: str | None, settings: Settings, blobs: BlobStore) -> dict[str, Any] | None:
    """A coordinator's decision on an intake edit waiting for review: ``approved`` applies it to the
    case (consent through consent events, the other facts at once, an ``intake_edit`` event naming
    the coordinator); ``rejected`` leaves the case as it was. None when ``submission`` is not such an edit.

    :raises EditSuperseded: approving an edit that a newer edit replaced since (decide the newest).
    """
    link = queries.link_for_submission(session, submission.id)
    if link is None or link.kind != PENDING_EDIT or link.case_id is None:
        return None
    case = session.get(ChildCase, link.case_id)
    answers = _answers(submission)
    if decision != "approved":
        _photo_consent(session, submission, case=case, answers=answers, blobs=blobs)
        link.kind = "intake"
        session.add(link)
        return {"case": case.code, "applied": False}
    if not submission.current:
        raise EditSuperseded(f"this edit of the intake of case {case.code} was replaced by "
                             f"{submission.superseded_by!r}; decide the newest version")
    fields, _, birth_year = _case_facts(session, submission, answers)
    changes = _decided_changes(session, case, fields, answers)
    for purpose in consent.CONSENT_PURPOSES:
        given = fields[f"consent_{purpose}"]
        if given != getattr(case, f"consent_{purpose}"):
            consent.record_consent(session, actor=actor, case=case, purpose=purpose, given=given,
                                   given_by=fields["consent_giver"], reason=f"intake edit {submission.instance_id}",
                                   blobs=blobs)
    if "proposed_organisation" in changes:
        case.proposed_organisation_id = changes["proposed_organisation"][1]
    for key, value in fields.items():
        if not key.startswith("consent_"):
            setattr(case, key, value)
    case.consent_giver = fields["consent_giver"]
    case.updated_at = utcnow()
    session.add(case)
    _store_keys(session, case=case, answers=answers, birth_year=birth_year, settings=settings)
    session.add(journal.new_event(case, actor=actor, action="intake_edit", from_status=case.status,
                                  to_status=case.status, reason=note, submission_id=submission.id,
                                  details={"instance_id": submission.instance_id,
                                           "changed": {k: [str(v) if v is not None else None for v in pair]
                                                       for k, pair in changes.items()}}))
    link.kind = "intake"
    session.add(link)
    _photo_consent(session, submission, case=case, answers=answers, blobs=blobs)
    return {"case": case.code, "applied": True, "changed": sorted(changes)}


def edit_policy(session: Session, actor: Actor, form: Form, submission: Submission) -> bool | None:
    """The record policy for edits (``Hooks.may_edit_record``): ``may_edit`` for case forms, no opinion otherwise."""
    if form.kind not in CASE_FORM_KINDS:
        return None
    return may_edit(session, actor=actor, submission=submission)


def holds_case_data(session: Session, form: Form, submission: Submission | None = None) -> bool:
    """Did case management take in ``submission`` (or, without one, any submission of ``form``)?
    A sticky fact of the data itself, whatever the form's kind says now (``Hooks.is_restricted_data``)."""
    return queries.took_in_case_data(session, form_id=form.id,
                                     submission_id=submission.id if submission is not None else None)


def may_edit(session: Session, *, actor: Actor, submission: Submission) -> bool:
    """Who may replace a case-form submission by an edit (issue 9, finding 1).

    While the record belongs to a case: the caseworkers of the NGO that owns the case (as every
    other write to a case), or, while no NGO owns it yet, whoever sent the record's first version.
    A record that opened or advanced no case (kept for review): its original submitter only.
    Nobody edits the intake of a case whose identity was erased. Coordinators and admins do not
    rewrite a child's record: they decide through the review queue and the case routes.
    """
    link = queries.link_for_submission(session, submission.id)
    case = session.get(ChildCase, link.case_id) if link is not None and link.case_id else None
    if case is not None:
        if case.identity_erased_at is not None:
            return False
        if case.organisation_id is not None:
            return access.access_level(actor, case) == "full"
    root = submission if submission.instance_id == submission.root_instance_id else queries.submission_by_instance(
        session, submission.root_instance_id)
    return root is not None and root.submitted_by_user_id == actor.user.id


def lifecycle_event(case: Any, submission: Submission, actor: Actor | None) -> Any:
    return journal.new_event(case, actor=actor, action="submit", from_status=None, to_status=lifecycle.SUBMITTED,
                             submitter_id=submission.submitted_by_user_id, submission_id=submission.id,
                             details={"instance_id": submission.instance_id})


# -- follow-up -------------------------------------------------------------------------------


def _followup(session: Session, *, submission: Submission, actor: Actor | None) -> None:
    a = _answers(submission)
    raw_code = codes.normalise(str(a.get("case_id") or ""))
    case = queries.case_by_code(session, raw_code) if codes.is_valid(raw_code) else None
    if case is None:
        flag(session, submission, f"follow-up names an unknown case {raw_code or '(none)'}", kind="followup")
        return
    if actor is None or access.access_level(actor, case) != "full":
        flag(session, submission, f"follow-up names case {case.code}, which is not a case of the submitter's "
                                  "organisation", kind="followup")
        return
    opening.link_submission(session, submission=submission, case=case, kind="followup")
    kind = a.get("followup_type")
    on = _date(a.get("followup_date")) or (submission.received_at.date() if submission.received_at else date.today())
    # Each service function validates before it writes: a refusal leaves nothing half-done.
    try:
        if kind == "service":
            remediation.record_service(session, actor=actor, case=case, service_type=str(a.get("service_type") or ""),
                                   implemented=_yes(a.get("service_implemented")), implemented_on=on,
                                   submission_root=submission.root_instance_id)
        elif kind == "observation":
            remediation.record_followup(session, actor=actor, case=case, observed_on=on,
                                    child_found=_yes(a.get("child_found")),
                                    in_hazardous_work=_yes(a.get("in_hazardous_work")) if a.get("in_hazardous_work") else None,
                                    in_school_or_training=(_yes(a.get("in_school_or_training"))
                                                           if a.get("in_school_or_training") else None),
                                    submission_root=submission.root_instance_id, submission_id=submission.id)
        elif kind == "closure_request":
            transitions.transition(session, actor=actor, case=case, action="request_closure",
                               reason=a.get("closure_reason"), submission_id=submission.id)
        else:
            raise DomainError(f"unknown follow-up type {kind!r}")
    except DomainError as exc:
        # Kept and linked (the owning NGO may read it), but flagged: the case did not move.
        submission.review_state = "needs_review"
        submission.review_reason = f"follow-up of case {case.code} not applied: {exc.message}"[:500]
        session.add(submission)
