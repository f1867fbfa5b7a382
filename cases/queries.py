"""The SQL of the cases capability: scoped case lists, events, services, follow-ups, links, the
intake behind a case, the review queue, duplicate key pairs and what retention erases."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import or_, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Row
from sqlmodel import Session, select

from app.models import Organisation, User
from cases.lifecycle import CLOSED, MERGED, PRE_ACCEPTANCE_STATES, REJECTED
from cases.models import (
    CaseDedupKey,
    CaseEvent,
    CaseFollowup,
    CaseService,
    CaseSubmission,
    ChildCase,
    ChildPerson,
)
from forms.models import CASE_FORM_KINDS, Form, FormMedia
from geodata.models import Site
from sync.models import Blob, Submission, SubmissionAttachment


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


def organisation_name(session: Session, org_id: int | None) -> str | None:
    org = session.get(Organisation, org_id) if org_id else None
    return org.name if org else None


def username(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else None


def case_code(session: Session, case_id: int | None) -> str | None:
    other = session.get(ChildCase, case_id) if case_id else None
    return other.code if other else None


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


def code_taken(session: Session, model: type, code: str) -> bool:
    """Is the pseudonymous ``code`` already used by a ``model`` row (a case or a person)?"""
    return session.exec(select(model).where(model.code == code)).first() is not None


def cases_by_ids(session: Session, ids: Iterable[int]) -> dict[int, ChildCase]:
    ids = set(ids)
    return {c.id: c for c in session.exec(select(ChildCase).where(ChildCase.id.in_(ids))).all()} if ids else {}


def persons_by_ids(session: Session, ids: Iterable[int]) -> list[ChildPerson]:
    return list(session.exec(select(ChildPerson).where(ChildPerson.id.in_(set(ids)))).all())


def organisations(session: Session) -> list[Organisation]:
    return list(session.exec(select(Organisation)).all())


def service_of_submission(session: Session, submission_root: str) -> CaseService | None:
    return session.exec(select(CaseService).where(CaseService.submission_root == submission_root)).first()


def followup_of_submission(session: Session, submission_root: str) -> CaseFollowup | None:
    return session.exec(select(CaseFollowup).where(CaseFollowup.submission_root == submission_root)).first()


# -- the submissions behind a case -----------------------------------------------------------


def current_intake(session: Session, case: ChildCase) -> Submission | None:
    """The current version of the case's intake submission."""
    return session.exec(select(Submission).where(Submission.root_instance_id == case.intake_root_instance_id,
                                                 Submission.current == True)).first()  # noqa: E712


def intake_versions(session: Session, case: ChildCase) -> list[Submission]:
    """Every stored version of the case's intake."""
    return list(session.exec(select(Submission).where(
        Submission.root_instance_id == case.intake_root_instance_id)).all())


def submissions_of_roots(session: Session, roots: Iterable[str]) -> list[Submission]:
    return list(session.exec(select(Submission).where(Submission.root_instance_id.in_(sorted(roots)))).all())


def submission_by_instance(session: Session, instance_id: str) -> Submission | None:
    return session.exec(select(Submission).where(Submission.instance_id == instance_id)).first()


def attachments(session: Session, submission_id: int) -> list[SubmissionAttachment]:
    return list(session.exec(select(SubmissionAttachment).where(
        SubmissionAttachment.submission_id == submission_id)).all())


def attachment(session: Session, submission_id: int, name: str) -> SubmissionAttachment | None:
    return session.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == submission_id,
                                                           SubmissionAttachment.name == name)).first()


def blob_still_used(session: Session, sha256: str) -> bool:
    """Does an attachment or a form media file still use these bytes?"""
    return (session.exec(select(SubmissionAttachment).where(SubmissionAttachment.sha256 == sha256)).first()
            is not None
            or session.exec(select(FormMedia).where(FormMedia.sha256 == sha256)).first() is not None)


def blob_in_use(conn: Connection, sha256: str) -> bool:
    """Asked after a purge committed (``app.blobs.delete_after_commit``), on a fresh connection: does
    a committed row still use the blob (a savepoint rolled back, or another submission stored the
    same bytes meanwhile)? Then its files stay. Missing files are fine: a purge again is harmless."""
    attachments, media, blobs = SubmissionAttachment.__table__, FormMedia.__table__, Blob.__table__
    return conn.execute(union_all(sa_select(blobs.c.sha256).where(blobs.c.sha256 == sha256),
                                  sa_select(attachments.c.sha256).where(attachments.c.sha256 == sha256),
                                  sa_select(media.c.sha256).where(media.c.sha256 == sha256))).first() is not None


def review_queue(session: Session) -> list[tuple[Submission, Form]]:
    """Current case-form submissions flagged ``needs_review``, oldest first."""
    return list(session.exec(select(Submission, Form).join(Form, Form.id == Submission.form_id)
                             .where(Submission.review_state == "needs_review",
                                    Submission.current == True,  # noqa: E712
                                    Form.kind.in_(CASE_FORM_KINDS)).order_by(Submission.received_at)).all())


# -- duplicates and retention ----------------------------------------------------------------


def dedup_key_pairs(session: Session, limit: int) -> list[tuple[int, int, str]]:
    """(lower case id, higher case id, kind) of every two cases sharing a keyed hash, at most ``limit``."""
    a, b = CaseDedupKey.__table__.alias("a"), CaseDedupKey.__table__.alias("b")
    return list(session.exec(select(a.c.case_id, b.c.case_id, a.c.kind)
                             .join(b, (a.c.value == b.c.value) & (a.c.kind == b.c.kind) & (a.c.case_id < b.c.case_id))
                             .limit(limit)).all())


def dedup_keys(session: Session, case_id: int) -> list[CaseDedupKey]:
    return list(session.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case_id)).all())


def closed_not_erased(session: Session) -> list[ChildCase]:
    """Closed cases whose identifying fields are still kept (retention decides by ``closed_at``)."""
    return list(session.exec(select(ChildCase).where(ChildCase.status == CLOSED,
                                                     ChildCase.identity_erased_at == None)).all())  # noqa: E711


def key_matches(session: Session, case_id: int) -> list[tuple[int, str]]:
    """(other case id, kind) of every dedup key another case shares with case ``case_id``."""
    mine = CaseDedupKey.__table__.alias("mine")
    return list(session.exec(select(CaseDedupKey.case_id, CaseDedupKey.kind)
                             .join(mine, (mine.c.value == CaseDedupKey.value) & (mine.c.kind == CaseDedupKey.kind))
                             .where(mine.c.case_id == case_id, CaseDedupKey.case_id != case_id)).all())


# -- intake processing -----------------------------------------------------------------------


def site_by_code(session: Session, code: str) -> Site | None:
    return session.exec(select(Site).where(Site.code == code)).first()


def took_in_case_data(session: Session, *, form_id: int, submission_id: int | None = None) -> bool:
    """Did case management link this submission (or, without one, any submission of the form)?"""
    query = select(CaseSubmission.id)
    if submission_id is not None:
        query = query.where(CaseSubmission.submission_id == submission_id)
    else:
        query = query.join(Submission, Submission.id == CaseSubmission.submission_id).where(
            Submission.form_id == form_id)
    return session.exec(query.limit(1)).first() is not None


# -- the KPI (plain rows, not ORM objects: 10,000 cases in well under a second) ---------------

#: The case columns the KPI reads.
KPI_COLUMNS = (ChildCase.id, ChildCase.person_id, ChildCase.organisation_id, ChildCase.province, ChildCase.site_code,
               ChildCase.classification, ChildCase.verified_at, ChildCase.age_at_identification,
               ChildCase.first_withdrawn_on, ChildCase.date_identified, ChildCase.closed_at, ChildCase.closure_reason)


def counted_cases(session: Session) -> list[Row]:
    """Cases the KPI may count: not merged or rejected duplicates, with consent to statistics."""
    return list(session.exec(select(*KPI_COLUMNS).where(
        ChildCase.duplicate_of_id == None,  # noqa: E711
        ChildCase.status.notin_((MERGED, REJECTED)),
        ChildCase.consent_reporting == True)).all())  # noqa: E712


def implemented_services(session: Session, service_types: tuple[str, ...]) -> list[tuple[int, date]]:
    """(case id, implemented on) of every implemented service of these types."""
    return list(session.exec(select(CaseService.case_id, CaseService.implemented_on).where(
        CaseService.implemented == True, CaseService.implemented_on != None,  # noqa: E711, E712
        CaseService.service_type.in_(service_types))).all())


def progress_events(session: Session) -> list[Row]:
    """(case id, action, reason, at, details) of every ``criteria_met`` and ``resume_services`` event."""
    return list(session.exec(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.reason, CaseEvent.at, CaseEvent.details)
        .where(CaseEvent.action.in_(("criteria_met", "resume_services")))).all())


# -- decisions waiting (``cases.inbox``) -----------------------------------------------------


def pending_requests(session: Session, *, role: str, organisation_id: int, limit: int = 500) -> list[ChildCase]:
    """Cases with a four-eyes request (plan or closure) the caller's row scope covers, oldest first."""
    query = select(ChildCase).where(ChildCase.pending_request != None)  # noqa: E711
    if role == "caseworker":
        query = query.where(ChildCase.organisation_id == organisation_id)
    elif role != "coordinator":
        return []
    return list(session.exec(query.order_by(ChildCase.updated_at, ChildCase.id).limit(limit)).all())


def latest_events(session: Session, action: str, limit: int = 200) -> list[tuple[CaseEvent, ChildCase]]:
    """The newest ``limit`` events of one action (e.g. ``transfer``) with their cases."""
    return list(session.exec(select(CaseEvent, ChildCase).join(ChildCase, ChildCase.id == CaseEvent.case_id)
                             .where(CaseEvent.action == action).order_by(CaseEvent.id.desc()).limit(limit)).all())
