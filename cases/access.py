"""Who sees which case and which fields (domain.md §3.5, §4.2; design.md §6).

* caseworker: cases owned by their NGO (all fields; identity reads audited);
* monitor: cases they created; identity only until the NGO accepts, then a status summary;
* coordinator: every case's status and pseudonymous facts; identity only while verifying and
  routing (submitted, verified, referred); duplicates, merges and the review queue;
* admin: aggregates only (the KPI), no case content.
"""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session

from app.identity import Actor
from cases import codes, journal, lifecycle, queries
from cases.errors import CaseForbidden, CaseNotFound, WrongRole
from cases.models import ChildCase
from forms.models import CASE_FORM_KINDS, Form
from sync.models import Submission

#: Intake fields that identify the child or the family; readable only as §3.5 says, and erased by purge.
IDENTIFYING_NAMES = ("child_given_name", "child_family_name", "date_of_birth", "caregiver_name",
                     "caregiver_phone", "residence_area", "school_grade", "monitor_notes", "notes",
                     "child_photo", "photo")

AccessLevel = Literal["full", "status", "summary"]


def owns(actor: Actor, case: ChildCase) -> bool:
    """Is ``actor`` a caseworker of the NGO that owns ``case``?"""
    return actor.role == "caseworker" and case.organisation_id is not None and case.organisation_id == actor.organisation_id


def access_level(actor: Actor, case: ChildCase) -> AccessLevel | None:
    """full | status | summary | None (not visible at all)."""
    if owns(actor, case):
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
    if owns(actor, case):
        return True
    if case.status in lifecycle.PRE_ACCEPTANCE_STATES:
        return actor.role == "coordinator" or (actor.role == "monitor" and case.created_by_user_id == actor.user.id)
    return False


def role_for(actor: Actor | None, case: ChildCase) -> str:
    """The lifecycle role ``actor`` plays on ``case`` (another NGO's caseworker plays none)."""
    if actor is None:
        return lifecycle.SYSTEM
    if actor.role == "caseworker":
        return "caseworker" if owns(actor, case) else "caseworker_other_org"
    return actor.role


def visible_case(session: Session, *, actor: Actor, code: str) -> ChildCase:
    """The case named ``code`` if the caller may see it; otherwise 404 (existence is not revealed)."""
    normal = codes.normalise(code)
    if not codes.is_valid(normal):
        raise CaseNotFound(f"no case {code!r}: case codes look like CL-7Q4K-M2XD (with a check character)")
    case = queries.case_by_code(session, normal)
    if case is None or access_level(actor, case) is None:
        raise CaseNotFound(f"no case {normal} visible to you")
    return case


def require_case_role(actor: Actor) -> None:
    if actor.role not in ("coordinator", "caseworker", "monitor"):
        raise CaseForbidden("case records are for coordinators, caseworkers and the monitors who created them; "
                            "administrators see aggregates only")


def require_coordinator(actor: Actor, message: str) -> None:
    if actor.role != "coordinator":
        raise CaseForbidden(message)


def require_owner(actor: Actor, case: ChildCase, what: str) -> None:
    """Only the owning NGO records ``what``; another NGO's caseworker does not even see the case."""
    if actor.role == "caseworker" and not owns(actor, case):
        raise CaseNotFound(f"no case {case.code} visible to you")
    if not owns(actor, case):
        raise WrongRole(f"{what} is recorded by the owning NGO's caseworkers")


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
        journal.record(session, "case.read_submission", actor=actor, object_type="submission",
                       object_id=submission.instance_id, case=case.code if case else None)
    return allowed
