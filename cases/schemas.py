"""JSON shapes of the cases API and of ``asmfield cases … --json``.

Requests are ``…In``; answers are ``…Public`` / ``…List``. A case is pseudonymous: identifying
fields appear only in ``IdentityPublic`` (an audited read). Fields a caller may not see are
*absent*, not null (a monitor's summary has only code, status and updated_at; events, services
and follow-ups only in the detail), so the case answers are dumped with ``exclude_unset``: build
them with every visible field passed explicitly, even when it is None.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.timeutil import isoformat
from cases.models import CaseEvent, CaseFollowup, CaseService, ChildCase

# -- requests --------------------------------------------------------------------------------


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
    reason: str | None = Field(default=None, max_length=400, description="why they are the same child")


class ReviewIn(BaseModel):
    decision: Literal["approved", "rejected"]
    note: str | None = Field(default=None, max_length=200)


# -- one case --------------------------------------------------------------------------------


class ConsentPublic(BaseModel):
    given_by: str | None
    services: bool | None
    share_partner: bool | None
    reporting: bool | None
    photo: bool | None

    @classmethod
    def from_case(cls, case: ChildCase) -> ConsentPublic:
        return cls(given_by=case.consent_giver, services=case.consent_services,
                   share_partner=case.consent_share_partner, reporting=case.consent_reporting,
                   photo=case.consent_photo)


class PendingRequestPublic(BaseModel):
    kind: str
    reason: str | None


class CaseEventPublic(BaseModel):
    """One immutable event: who (user, role, organisation, device, how authenticated) did what when."""

    model_config = ConfigDict(populate_by_name=True)

    action: str
    from_: str | None = Field(alias="from")
    to: str
    role: str | None
    actor: str | None
    organisation: str | None
    device: str | None
    auth: str | None
    at: str | None
    reason: str | None

    @classmethod
    def from_row(cls, e: CaseEvent, *, actor: str | None, organisation: str | None) -> CaseEventPublic:
        return cls(action=e.action, from_=e.from_status, to=e.to_status, role=e.actor_role, actor=actor,
                   organisation=organisation, device=e.actor_device, auth=e.actor_auth, at=isoformat(e.at),
                   reason=e.reason)


class CaseServicePublic(BaseModel):
    id: int
    type: str
    implemented: bool
    implemented_on: str | None
    organisation: str | None

    @classmethod
    def from_row(cls, s: CaseService, *, organisation: str | None) -> CaseServicePublic:
        return cls(id=s.id, type=s.service_type, implemented=s.implemented,
                   implemented_on=s.implemented_on.isoformat() if s.implemented_on else None,
                   organisation=organisation)


class CaseFollowupPublic(BaseModel):
    date: str
    child_found: bool
    in_hazardous_work: bool | None
    in_school_or_training: bool | None
    observed_by_role: str | None

    @classmethod
    def from_row(cls, f: CaseFollowup) -> CaseFollowupPublic:
        return cls(date=f.observed_on.isoformat(), child_found=f.child_found, in_hazardous_work=f.in_hazardous_work,
                   in_school_or_training=f.in_school_or_training, observed_by_role=f.observed_by_role)


class CasePublic(BaseModel):
    """A case as the caller may see it (``cases.reading.case_view``); unset fields are not shown."""

    code: str
    status: str
    updated_at: str | None
    person: str | None = None
    organisation: str | None = None
    proposed_organisation: str | None = None
    site: str | None = None
    province: str | None = None
    risk_level: str | None = None
    urgent: bool | None = None
    classification: str | None = None
    sex: str | None = None
    age_band: str | None = None
    date_identified: str | None = None
    consent: ConsentPublic | None = None
    pending_request: PendingRequestPublic | None = None
    closure_reason: str | None = None
    opened_at: str | None = None
    closed_at: str | None = None
    duplicate_of: str | None = None
    identity_erased: bool | None = None
    identity_readable: bool | None = None
    allowed_actions: list[str] | None = None
    referral_due_at: str | None = Field(default=None, description="referred or transferred cases only")
    events: list[CaseEventPublic] | None = Field(default=None, description="detail only")
    services: list[CaseServicePublic] | None = Field(default=None, description="detail only")
    followups: list[CaseFollowupPublic] | None = Field(default=None, description="detail only")


class CaseList(BaseModel):
    cases: list[CasePublic]


class IdentityPublic(BaseModel):
    """The identifying answers of the case's intake (audited read)."""

    code: str
    identity: dict[str, Any]
    photos: list[str]
    intake_instance_id: str | None


# -- coordinators: duplicates and the review queue -------------------------------------------


class DuplicatePublic(BaseModel):
    """Two cases of different persons sharing a keyed hash; pairs are [case, candidate]."""

    case: str
    candidate: str
    matched_on: list[str]
    statuses: list[str]
    sites: list[str | None]
    organisations: list[str | None]
    age_bands: list[str | None]
    identified_on: list[str]
    opened_at: list[str | None]


class DuplicateList(BaseModel):
    candidates: list[DuplicatePublic]


class ReviewItemPublic(BaseModel):
    instance_id: str
    form: str
    kind: str
    received_at: str | None
    submitted_by: str | None
    restricted: bool
    reason: str | None


class ReviewQueue(BaseModel):
    submissions: list[ReviewItemPublic]


class ReviewDecisionPublic(BaseModel):
    """The closed review; for an intake edit also its case, whether it was applied and what changed
    (absent otherwise: dumped with ``exclude_unset``)."""

    instance_id: str
    review_state: str
    case: str | None = None
    applied: bool | None = None
    changed: list[str] | None = None


# -- aggregates and retention ----------------------------------------------------------------

Count = int | str  # a number, or "<5" / "suppressed"


class KpiCompanions(BaseModel):
    identified: Count
    in_services: Count
    withdrawn: Count
    relapses: Count
    lost_to_follow_up: Count
    closed_by_reason: dict[str, Count]


class ChildLabourKpiPublic(BaseModel):
    """The child-labour KPI for whole calendar months, with companion figures and breakdowns."""

    model_config = ConfigDict(populate_by_name=True)

    indicator: str
    from_: str = Field(alias="from")
    to: str
    scope: str | None
    value: Count
    companions: KpiCompanions
    by_organisation: dict[str, Count]
    by_province: dict[str, Count]
    by_site: dict[str, Count]
    small_cells_suppressed_below: int | None
    suppression: str | None
    definition: str


class PurgeSummary(BaseModel):
    """What a retention purge erased (or, with ``dry_run``, would erase)."""

    cases: int
    submissions: int
    attachments: int
    files: int
    dry_run: bool
    photos_only: bool
    cutoff: str | None
    codes: list[str]
