"""A new case (status ``submitted``) with fresh pseudonymous codes, and the links between case-form
submissions and their case (``cases.ingest`` opens cases from intakes through these)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from cases import codes, lifecycle, queries
from cases.models import CaseSubmission, ChildCase, ChildPerson
from sync.models import Submission


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


def _unique_code(session: Session, model: type, make: Callable[[], str]) -> str:
    for _ in range(20):
        code = make()
        if not queries.code_taken(session, model, code):
            return code
    raise RuntimeError("could not draw a free pseudonymous code")


def link_submission(session: Session, *, submission: Submission, case: ChildCase | None, kind: str) -> None:
    """Link a case-form submission to its case (None: linked to no case yet, e.g. flagged)."""
    link = queries.link_for_submission(session, submission.id)
    if link is None:
        link = CaseSubmission(submission_id=submission.id, root_instance_id=submission.root_instance_id, kind=kind)
    link.case_id = case.id if case else None
    session.add(link)
