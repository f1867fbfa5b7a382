"""JSON shapes of the sites API (and of ``asmfield sites ... --json``).

Sites are GeoJSON Features. What a role sees differs (design.md §6): caseworkers get the site
fields only; the visit fields (stage, visits, history...) are *absent*, not null, for them. So the
routes serialise with ``response_model_exclude_unset=True`` and the constructors here set only
what the caller may see; ``dump`` does the same for the CLI.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON object the API answers for ``model`` (fields never set are left out)."""
    return model.model_dump(mode="json", exclude_unset=True)


# -- the site list and one site ----------------------------------------------------------------


class SiteProperties(BaseModel):
    """A site's fields in the list; the stage fields only for admin, coordinator and monitor."""

    code: str
    name: str
    kind: str = Field(description="asm_site or other (legal areas are served by /api/v1/legal-areas)")
    province: str | None
    province_iso: str | None
    minerals: list[str]
    stage: int | None = Field(None, description="Formalisation stage 0-6 today (0 once the last on-site visit is stale).")
    last_known_stage: int | None = None
    stage_status: str | None = Field(None, description="assessed, unassessed or inactive")
    red_flag: bool | None = None
    last_visit: date | None = None
    visit_count: int | None = None
    zea_codes: list[str] | None = None
    permit_codes: list[str] | None = None


class SiteFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str = Field(description="The site code.")
    geometry: dict[str, Any] = Field(description="GeoJSON geometry (EPSG:4326).")
    properties: SiteProperties


class SiteCollection(BaseModel):
    """``GET /api/v1/sites``: a GeoJSON FeatureCollection (served as ``application/geo+json``)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[SiteFeature]


class LegalAreaRef(BaseModel):
    """A legal area as a site names it."""

    layer: str
    code: str
    kind: str = Field(description="zea, pe, pr, quarry, zin, protected or other")
    title_type: str | None = Field(None, description="The type as the source writes it (PEPM, AECP...).")
    name: str


class SiteDetailProperties(SiteProperties):
    territory: str | None
    area_m2: float | None
    source: str | None
    lon: float | None
    lat: float | None
    assurance_type: str | None = None
    assurance_valid_until: date | None = None
    stage_reasons: list[str] | None = None
    ladder_version: str | None = None
    attributes: dict[str, Any] | None = Field(None, description="The site file's other attributes.")
    status: str = Field("active", description="active, or retired (off tablets, statistics and placement; "
                        "visits and history kept)")
    retired_at: datetime | None = None
    legal_areas: list[LegalAreaRef] = Field(default_factory=list,
                                            description="The active legal areas containing the site's point.")
    nearest_zea: str | None = Field(None, description="Code of the nearest ZEA (any layer).")
    nearest_zea_m: float | None = Field(None, description="Metres to the nearest ZEA (0 inside one).")


class StageChange(BaseModel):
    effective_on: date
    stage: int
    last_known_stage: int
    status: str
    red_flag: bool
    submission_id: int | None
    ladder_version: str
    reasons: list[str]

    @classmethod
    def from_row(cls, row: Any) -> StageChange:
        return cls(effective_on=row.effective_on, stage=row.stage, last_known_stage=row.last_known_stage,
                   status=row.status, red_flag=row.red_flag, submission_id=row.submission_id,
                   ladder_version=row.ladder_version, reasons=row.reasons)


class VisitPhoto(BaseModel):
    name: str
    media_type: str | None
    received: bool
    url: str | None

    @classmethod
    def from_row(cls, att: Any) -> VisitPhoto:
        return cls(name=att.name, media_type=att.media_type, received=att.received,
                   url=f"/api/v1/media/{att.sha256}" if att.received and att.sha256 else None)


class SiteVisit(BaseModel):
    instance_id: str
    submission_id: int
    visit_date: date
    lon: float | None
    lat: float | None
    site_match: str | None
    site_distance_m: float | None
    site_flag: str | None
    on_site: bool
    red_flags: list[str]
    photos: list[VisitPhoto]


class SiteObservationPublic(BaseModel):
    """An older row of a point register (the site as observed that day)."""

    observed_on: date | None
    source: str | None
    properties: dict[str, Any]


class SiteDetail(BaseModel):
    """``GET /api/v1/sites/{code}``; ``stage_history`` and ``visits`` only for roles that see visits
    (a monitor's visits are their own only)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: SiteDetailProperties
    stage_history: list[StageChange] | None = None
    visits: list[SiteVisit] | None = None
    observations: list[SiteObservationPublic] | None = None


# -- review, statistics ------------------------------------------------------------------------


class UnmappedItem(BaseModel):
    instance_id: str
    form_id: int
    received_at: str | None = Field(description="ISO 8601, UTC (Z).")
    lon: float | None
    lat: float | None
    site_match: str | None
    site_flag: str | None
    site_code: str | None
    site_distance_m: float | None
    submitted_by_user_id: int | None


class UnmappedList(BaseModel):
    items: list[UnmappedItem]
    limit: int
    offset: int


class MonthStages(BaseModel):
    month: str = Field(description="YYYY-MM")
    stages: dict[str, int] = Field(description="Sites per stage ('0'-'6') at the end of the month.")


class SiteStats(BaseModel):
    sites: int
    by_stage: dict[str, int]
    by_province: dict[str, dict[str, int]]
    monthly: list[MonthStages]
    ladder_version: str


# -- changes -----------------------------------------------------------------------------------


class ImportProblem(BaseModel):
    row: int = Field(description="Row (feature) number in the file, from 1.")
    code: str | None
    problem: str


class ImportWarning(BaseModel):
    row: int
    code: str | None
    warning: str


class ImportItem(BaseModel):
    """One usable row of the file and what the import does (or would do) with its feature; or a feature
    the file no longer holds that ``replace`` retires (``row`` null)."""

    row: int | None = Field(description="Row (feature) number in the file, from 1; null for a retired feature.")
    code: str
    name: str
    action: Literal["created", "updated", "unchanged", "refused", "retired"]
    target: Literal["site", "legal_area"] = "site"
    layer: str | None = Field(None, description="The legal area's layer.")
    changed: list[str] = Field(description="For updates: which of the feature's fields change (status: restored).")
    reason: str | None = Field(None, description="For refusals: why, and how to import it anyway.")


class ImportReport(BaseModel):
    """What an import did (or, with ``dry_run``, would do, writing nothing: the same counts a real
    import of the file would report now). Refused rows are counted in ``skipped`` and listed in
    ``problems``; rows repeating a code with another polygon are merged into the first (``merged``)."""

    format: str
    rows: int
    created: int
    updated: int
    unchanged: int
    refused: int = Field(0, description="Rows refused because they would change a feature's kind or namespace "
                         "(``items`` say why; ``force`` accepts them).")
    retired: int = Field(0, description="Features absent from the file that ``replace`` retires.")
    skipped: int
    sites: int = Field(0, description="Rows that went (would go) to sites.")
    legal_areas: int = Field(0, description="Rows that went (would go) to legal areas.")
    layer: str | None = Field(None, description="The legal areas' layer.")
    target: str = "auto"
    replace: bool = False
    observations: int | None = Field(None, description="Older rows of the register stored as site observations.")
    merged: int = Field(0, description="Rows whose polygon was merged into an earlier row of the same code "
                        "(a multi-part site split across rows); each is also listed in warnings.")
    problems: list[ImportProblem] = Field(description="Rows skipped, with why.")
    warnings: list[ImportWarning] = Field(description="Rows imported with a remark.")
    would_import: int | None = None
    dry_run: bool = False
    items: list[ImportItem] = Field(default_factory=list, description="Each usable row's outcome, in file order.")


class RecomputeResult(BaseModel):
    remapped: int
    stage_changes: int


class AssuranceUpdate(BaseModel):
    assurance_type: str | None
    valid_until: date | None = None


class AssurancePublic(BaseModel):
    code: str
    assurance_type: str | None
    assurance_valid_until: date | None
    stage: int
    stage_status: str

    @classmethod
    def from_site(cls, site: Any) -> AssurancePublic:
        return cls(code=site.code, assurance_type=site.assurance_type,
                   assurance_valid_until=site.assurance_valid_until, stage=site.stage, stage_status=site.stage_status)


class StatusChange(BaseModel):
    """``POST /api/v1/sites/{code}/retire|restore`` (and legal areas): the feature's status now."""

    code: str
    layer: str | None
    status: Literal["active", "retired"]
    changed: bool = Field(description="False when it already had this status.")


class LegalAreaProperties(BaseModel):
    layer: str
    code: str
    name: str
    kind: str
    title_type: str | None
    holder: str | None


class LegalAreaFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str = Field(description="layer:code")
    geometry: dict[str, Any]
    properties: LegalAreaProperties


class LegalAreaCollection(BaseModel):
    """``GET /api/v1/legal-areas``: the active legal areas as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[LegalAreaFeature]
