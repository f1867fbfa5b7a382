"""HTTP routes of the cases capability (thin: parse, authorise, call the service)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.auth import ApiActor
from app.deps import BlobsDep, SessionDep, SettingsDep
from app.timeutil import utcnow
from cases import kpi, service
from sync import media

router = APIRouter(prefix="/api/v1", tags=["cases"])


class TransitionIn(BaseModel):
    action: str = Field(max_length=40, description="e.g. verify, refer, accept, submit_plan, approve_plan")
    reason: str | None = Field(default=None, max_length=500)
    organisation: str | int | None = Field(default=None, description="target NGO of refer/transfer (name or id)")
    risk_level: Literal["low", "medium", "high"] | None = None


class ServiceIn(BaseModel):
    service_type: str = Field(max_length=40)
    implemented: bool = False
    implemented_on: date | None = None


class FollowupIn(BaseModel):
    observed_on: date
    child_found: bool = True
    in_hazardous_work: bool | None = None
    in_school_or_training: bool | None = None


class ConsentIn(BaseModel):
    purpose: Literal["services", "share_partner", "reporting", "photo"]
    given: bool
    given_by: Literal["child", "caregiver", "other_adult"] | None = None
    reason: str | None = Field(default=None, max_length=500)


class MergeIn(BaseModel):
    into: str = Field(max_length=20, description="code of the case this one duplicates")


class ReviewIn(BaseModel):
    decision: Literal["approved", "rejected"]
    note: str | None = Field(default=None, max_length=200)


@router.get("/cases")
def list_cases(actor: ApiActor, session: SessionDep, status: str | None = Query(None, max_length=40),
               limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict:
    """List the cases you may see (pseudonymous)."""
    return {"cases": service.list_cases(session, actor=actor, status=status, limit=limit, offset=offset)}


@router.get("/cases/duplicates")
def duplicates(actor: ApiActor, session: SessionDep) -> dict:
    """Duplicate candidates (coordinators)."""
    return {"candidates": service.duplicate_candidates(session, actor=actor)}


@router.get("/cases/review")
def review_queue(actor: ApiActor, session: SessionDep) -> dict:
    """Case-form submissions flagged for review (coordinators)."""
    return {"submissions": service.review_queue(session, actor=actor)}


@router.post("/cases/review/{instance_id}")
def resolve_review(instance_id: str, body: ReviewIn, actor: ApiActor, session: SessionDep,
                   settings: SettingsDep, blobs: BlobsDep) -> dict:
    """Close a review of a flagged case-form submission (coordinators); approving an intake edit applies it."""
    return service.resolve_review(session, actor=actor, instance_id=instance_id, decision=body.decision,
                                  note=body.note, settings=settings, blobs=blobs)


@router.get("/cases/{code}")
def get_case(code: str, actor: ApiActor, session: SessionDep) -> dict:
    """One case: status, pseudonymous facts, events, services, follow-ups."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    return service.case_view(session, actor=actor, case=case)


@router.get("/cases/{code}/identity")
def get_identity(code: str, actor: ApiActor, session: SessionDep) -> dict:
    """The child's identifying fields (owning NGO; audited)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    return service.read_identity(session, actor=actor, case=case)


@router.get("/cases/{code}/photos/{name}")
def get_photo(code: str, name: str, actor: ApiActor, session: SessionDep, blobs: BlobsDep) -> Response:
    """A photo of the case's intake (owning NGO; audited); inline only when it is a checked raster
    image, always with ``nosniff`` and a sandboxing CSP (``sync.media.served``)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    sha256, stored_type = service.case_photo(session, actor=actor, case=case, name=name)
    media_type, safety = media.served(blobs.local_path(sha256), filename=name, stored_type=stored_type)
    return blobs.response(sha256, media_type=media_type, headers={"Cache-Control": "private, no-store", **safety})


@router.post("/cases/{code}/transitions")
def post_transition(code: str, body: TransitionIn, actor: ApiActor, session: SessionDep) -> dict:
    """Move a case through its lifecycle (409 names the allowed actions)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    service.transition(session, actor=actor, case=case, action=body.action, reason=body.reason,
                       organisation=body.organisation, risk_level=body.risk_level)
    return service.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/services", status_code=201)
def post_service(code: str, body: ServiceIn, actor: ApiActor, session: SessionDep) -> dict:
    """Record a service planned or delivered (owning NGO)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    service.record_service(session, actor=actor, case=case, service_type=body.service_type,
                           implemented=body.implemented, implemented_on=body.implemented_on)
    return service.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/followups", status_code=201)
def post_followup(code: str, body: FollowupIn, actor: ApiActor, session: SessionDep) -> dict:
    """Record a follow-up observation (owning NGO)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    service.record_followup(session, actor=actor, case=case, observed_on=body.observed_on,
                            child_found=body.child_found, in_hazardous_work=body.in_hazardous_work,
                            in_school_or_training=body.in_school_or_training)
    return service.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/consent")
def post_consent(code: str, body: ConsentIn, actor: ApiActor, session: SessionDep, blobs: BlobsDep) -> dict:
    """Record consent given or withdrawn for one purpose (owning NGO or coordinator)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    service.record_consent(session, actor=actor, case=case, purpose=body.purpose, given=body.given,
                           given_by=body.given_by, reason=body.reason, blobs=blobs)
    return service.case_view(session, actor=actor, case=case)


@router.post("/cases/{code}/merge")
def post_merge(code: str, body: MergeIn, actor: ApiActor, session: SessionDep) -> dict:
    """Merge a case into the case it duplicates (coordinators)."""
    service.require_case_role(actor)
    case = service.visible_case(session, actor=actor, code=code)
    service.merge(session, actor=actor, case=case, into=body.into)
    return service.case_view(session, actor=actor, case=case)


@router.get("/kpis/child-labour")
def child_labour_kpi(actor: ApiActor, session: SessionDep,
                     date_from: str | None = Query(None, alias="from", max_length=20,
                                                   description="YYYY-MM, or the first day of a month"),
                     date_to: str | None = Query(None, alias="to", max_length=20,
                                                 description="YYYY-MM, or the last day of a month")) -> dict:
    """The child-labour KPI with companion figures, for whole calendar months (small counts, and
    whatever would reveal one by subtraction, are not shown)."""
    start, end = kpi.month_window(date_from, date_to, today=utcnow().date())
    return kpi.child_labour_kpi(session, actor=actor, date_from=start, date_to=end)


def install(app: FastAPI) -> None:
    app.include_router(router)
