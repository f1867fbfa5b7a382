"""HTTP routes of the cases capability (thin: parse, authorise, call the service, answer a
``cases.schemas`` model)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import Response

from app.auth import ApiActor
from app.deps import BlobsDep, SessionDep, SettingsDep
from app.timeutil import utcnow
from cases import access, consent, duplicates, kpi, reading, remediation, review, transitions
from cases.schemas import (
    CaseList,
    CasePublic,
    ChildLabourKpiPublic,
    ConsentIn,
    DuplicateList,
    FollowupIn,
    IdentityPublic,
    MergeIn,
    ReviewDecisionPublic,
    ReviewIn,
    ReviewQueue,
    ServiceIn,
    TransitionIn,
)
from sync import media

router = APIRouter(prefix="/api/v1", tags=["cases"])
#: A case answer leaves out what the caller may not see (absent, not null): see ``cases.schemas``.
CASE = {"response_model_exclude_unset": True}


@router.get("/cases", response_model=CaseList, **CASE)
def list_cases(actor: ApiActor, session: SessionDep, status: str | None = Query(None, max_length=40),
               limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000_000)) -> CaseList:
    """List the cases you may see (pseudonymous)."""
    return CaseList(cases=reading.list_cases(session, actor=actor, status=status, limit=limit, offset=offset))


@router.get("/cases/duplicates")
def list_duplicates(actor: ApiActor, session: SessionDep) -> DuplicateList:
    """Duplicate candidates (coordinators)."""
    return DuplicateList(candidates=duplicates.duplicate_candidates(session, actor=actor))


@router.get("/cases/review")
def review_queue(actor: ApiActor, session: SessionDep) -> ReviewQueue:
    """Case-form submissions flagged for review (coordinators)."""
    return ReviewQueue(submissions=review.review_queue(session, actor=actor))


@router.post("/cases/review/{instance_id}", response_model=ReviewDecisionPublic, response_model_exclude_unset=True)
def resolve_review(instance_id: str, body: ReviewIn, actor: ApiActor, session: SessionDep,
                   settings: SettingsDep, blobs: BlobsDep) -> ReviewDecisionPublic:
    """Close a review of a flagged case-form submission (coordinators); approving an intake edit applies it."""
    return review.resolve_review(session, actor=actor, instance_id=instance_id, decision=body.decision,
                                 note=body.note, settings=settings, blobs=blobs)


@router.get("/cases/{code}", response_model=CasePublic, **CASE)
def get_case(code: str, actor: ApiActor, session: SessionDep) -> CasePublic:
    """One case: status, pseudonymous facts, events, services, follow-ups."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    return reading.case_view(session, actor=actor, case=case)


@router.get("/cases/{code}/identity")
def get_identity(code: str, actor: ApiActor, session: SessionDep) -> IdentityPublic:
    """The child's identifying fields (owning NGO; audited)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    return reading.read_identity(session, actor=actor, case=case)


@router.get("/cases/{code}/photos/{name}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "application/octet-stream": {}},
                             "description": "the photo's bytes"}})
def get_photo(code: str, name: str, actor: ApiActor, session: SessionDep, blobs: BlobsDep) -> Response:
    """A photo of the case's intake (owning NGO; audited); inline only when it is a checked raster
    image, always with ``nosniff`` and a sandboxing CSP (``sync.media.served``)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    sha256, stored_type = reading.case_photo(session, actor=actor, case=case, name=name)
    media_type, safety = media.served(blobs.local_path(sha256), filename=name, stored_type=stored_type)
    return blobs.response(sha256, media_type=media_type, headers={"Cache-Control": "private, no-store", **safety})


@router.post("/cases/{code}/transitions", response_model=CasePublic, **CASE)
def post_transition(code: str, body: TransitionIn, actor: ApiActor, session: SessionDep) -> CasePublic:
    """Move a case through its lifecycle (409 names the allowed actions)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    transitions.transition(session, actor=actor, case=case, action=body.action, reason=body.reason,
                           organisation=body.organisation, risk_level=body.risk_level)
    return reading.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/services", status_code=201, response_model=CasePublic, **CASE)
def post_service(code: str, body: ServiceIn, actor: ApiActor, session: SessionDep) -> CasePublic:
    """Record a service planned or delivered (owning NGO)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    remediation.record_service(session, actor=actor, case=case, service_type=body.service_type,
                               implemented=body.implemented, implemented_on=body.implemented_on)
    return reading.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/followups", status_code=201, response_model=CasePublic, **CASE)
def post_followup(code: str, body: FollowupIn, actor: ApiActor, session: SessionDep) -> CasePublic:
    """Record a follow-up observation (owning NGO)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    remediation.record_followup(session, actor=actor, case=case, observed_on=body.observed_on,
                                child_found=body.child_found, in_hazardous_work=body.in_hazardous_work,
                                in_school_or_training=body.in_school_or_training)
    return reading.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/consent", response_model=CasePublic, **CASE)
def post_consent(code: str, body: ConsentIn, actor: ApiActor, session: SessionDep, blobs: BlobsDep) -> CasePublic:
    """Record consent given or withdrawn for one purpose (owning NGO or coordinator)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    consent.record_consent(session, actor=actor, case=case, purpose=body.purpose, given=body.given,
                           given_by=body.given_by, reason=body.reason, blobs=blobs)
    return reading.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/merge", response_model=CasePublic, **CASE)
def post_merge(code: str, body: MergeIn, actor: ApiActor, session: SessionDep) -> CasePublic:
    """Merge a case into the case it duplicates (coordinators)."""
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    duplicates.merge(session, actor=actor, case=case, into=body.into, reason=body.reason)
    return reading.case_view(session, actor=actor, case=case)


@router.get("/kpis/child-labour")
def child_labour_kpi(actor: ApiActor, session: SessionDep,
                     date_from: str | None = Query(None, alias="from", max_length=20,
                                                   description="YYYY-MM, or the first day of a month"),
                     date_to: str | None = Query(None, alias="to", max_length=20,
                                                 description="YYYY-MM, or the last day of a month")
                     ) -> ChildLabourKpiPublic:
    """The child-labour KPI with companion figures, for whole calendar months (small counts, and
    whatever would reveal one by subtraction, are not shown)."""
    start, end = kpi.month_window(date_from, date_to, today=utcnow().date())
    return ChildLabourKpiPublic.model_validate(kpi.child_labour_kpi(session, actor=actor, date_from=start,
                                                                    date_to=end))


def install(app: FastAPI) -> None:
    app.include_router(router)
