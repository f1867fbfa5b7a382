"""The SQL of the cases capability: scoped case lists, events, services, follow-ups, links."""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import Session, select

from app.models import Organisation
from cases.lifecycle import PRE_ACCEPTANCE_STATES
from cases.models import CaseEvent, CaseFollowup, CaseService, CaseSubmission, ChildCase, ChildPerson


def case_by_code(session: Session, code: str) -> ChildCase | None:
    return session.exec(select(ChildCase).where(ChildCase.code == code)).first()


def case_by_intake(session: Session, root_instance_id: str) -> ChildCase | None:
    return session.exec(select(ChildCase).where(ChildCase.intake_root_instance_id == root_instance_id)).first()


def scoped_cases(session: Session, *, role: str, user_id: int, organisation_id: int, status: str | None = None,
                 limit: int = 100, offset: int = 0) -> list[ChildCase]:
    """Cases the caller may see at all (row-level scope; field-level rules are the service's)."""
    query = select(ChildCase)
    if role == "caseworker":
        query = query.where(ChildCase.organisation_id == organisation_id)
    elif role == "monitor":
        query = query.where(ChildCase.created_by_user_id == user_id)
    elif role != "coordinator":
        return []
    if status:
        query = query.where(ChildCase.status == status)
    return list(session.exec(query.order_by(ChildCase.id.desc()).offset(offset).limit(limit)).all())


def events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)).all())


def services(session: Session, case_id: int) -> list[CaseService]:
    return list(session.exec(select(CaseService).where(CaseService.case_id == case_id).order_by(CaseService.id)).all())


def followups(session: Session, case_id: int) -> list[CaseFollowup]:
    return list(session.exec(select(CaseFollowup).where(CaseFollowup.case_id == case_id)
                             .order_by(CaseFollowup.observed_on, CaseFollowup.id)).all())


def link_for_submission(session: Session, submission_id: int) -> CaseSubmission | None:
    return session.exec(select(CaseSubmission).where(CaseSubmission.submission_id == submission_id)).first()


def links_for_case(session: Session, case_id: int) -> list[CaseSubmission]:
    return list(session.exec(select(CaseSubmission).where(CaseSubmission.case_id == case_id)).all())


def person(session: Session, person_id: int) -> ChildPerson | None:
    return session.get(ChildPerson, person_id)


def organisation_by_ref(session: Session, ref: str | int | None) -> Organisation | None:
    """An organisation by id, exact name, or name slug (``pact_rdc`` for "PACT RDC")."""
    if ref is None or ref == "":
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return session.get(Organisation, int(ref)) if 0 < int(ref) < 2**31 else None
    wanted = str(ref).strip().lower()
    for org in session.exec(select(Organisation)).all():
        name = org.name.lower()
        if wanted in (name, "_".join(name.replace("-", " ").split())):
            return org
    return None


def open_cases_of(session: Session, organisation_id: int, states: tuple[str, ...]) -> list[ChildCase]:
    return list(session.exec(select(ChildCase).where(ChildCase.organisation_id == organisation_id,
                                                     ChildCase.status.in_(states)).order_by(ChildCase.code)).all())


def pre_acceptance_filter():  # noqa: ANN201
    return or_(*(ChildCase.status == s for s in PRE_ACCEPTANCE_STATES))
