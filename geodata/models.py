"""Sites (polygons as GeoJSON text + bbox columns, EPSG:4326), their formalisation stages, and the legal
areas (mining titles, ZEA, forbidden zones, quarry authorisations, protected areas) that give them context.

Sites are what monitors visit: only they go to tablets, pick lists, statistics and the ladder, and
only they capture visits. Legal areas are map layers and properties of sites (which ones contain a
site, how far the nearest ZEA is); their codes are unique per layer, a site's code across sites.
Neither is ever deleted: a feature that left its source is *retired* (``status``, ``retired_at``).

Geometry is plain GeoJSON text plus numeric bbox columns so the same schema runs on SQLite and
PostgreSQL without SpatiaLite/PostGIS; exact predicates are done in ``geodata.spatial``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    name: str = Field(max_length=300)
    #: asm_site | zea | pe | pr | other
    kind: str = Field(default="asm_site", max_length=30, index=True)
    province: str | None = Field(default=None, max_length=100, index=True)
    province_iso: str | None = Field(default=None, max_length=10)
    territory: str | None = Field(default=None, max_length=100)
    minerals: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: GeoJSON geometry in EPSG:4326 (Polygon/MultiPolygon).
    geometry: str = Field(sa_column=Column(Text, nullable=False))
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    #: A point inside the geometry (for CSV lists, labels and distances).
    lon: float | None = None
    lat: float | None = None
    area_m2: float | None = None
    source: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Codes of the ZEA / PE / PR polygons containing this site (derived on import).
    zea_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    permit_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Formalisation (geodata.ladder): effective stage (0 when unassessed), last known stage,
    #: status assessed | unassessed | inactive, red flag from the latest on-site visit.
    stage: int = Field(default=0, index=True)
    last_known_stage: int = 0
    stage_status: str = Field(default="unassessed", max_length=20)
    red_flag: bool = False
    ladder_version: str | None = Field(default=None, max_length=20)
    stage_computed_at: datetime | None = None
    visit_count: int = 0
    last_visit_on: date | None = None
    last_visit_submission_id: int | None = None
    #: Third-party attestation needed for stage 6 (set by staff, not by the visit form).
    assurance_type: str | None = Field(default=None, max_length=50)
    assurance_valid_until: date | None = None
    #: active | retired (retired: off tablets, statistics and placement; its visits and history stay)
    status: str = Field(default="active", max_length=20, index=True)
    retired_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LegalArea(SQLModel, table=True):
    """A polygon giving sites their legal context: a mining title (PE, PR, PEPM, PER), a ZEA, a
    forbidden zone (ZIN), a quarry authorisation (AECP, ARPC, AECT) or a protected area.

    ``layer`` names the source it came from (``cadastre`` by default); ``code`` is unique within it.
    ``kind`` is what the server reasons with (zea | pe | pr | quarry | zin | protected | other);
    ``title_type`` is the type as the source writes it (``PEPM``, ``AECP``...).
    """

    __table_args__ = (UniqueConstraint("layer", "code", name="uq_legalarea_layer_code"),)

    id: int | None = Field(default=None, primary_key=True)
    layer: str = Field(max_length=50, index=True)
    code: str = Field(max_length=100, index=True)
    kind: str = Field(max_length=30, index=True)
    title_type: str | None = Field(default=None, max_length=50)
    name: str = Field(max_length=300)
    holder: str | None = Field(default=None, max_length=300)
    #: GeoJSON geometry in EPSG:4326 (Polygon/MultiPolygon).
    geometry: str = Field(sa_column=Column(Text, nullable=False))
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    area_m2: float | None = None
    province: str | None = Field(default=None, max_length=100, index=True)
    province_iso: str | None = Field(default=None, max_length=10)
    source: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: active | retired (absent from the layer's latest replacing import, or retired by hand)
    status: str = Field(default="active", max_length=20, index=True)
    retired_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SiteObservation(SQLModel, table=True):
    """An older row of a point register (one row per visit over years): the site as observed that day."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    observed_on: date | None = Field(default=None, index=True)
    source: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class SiteStage(SQLModel, table=True):
    """One change of a site's stage, with the visit that caused it and the ladder version."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    stage: int
    last_known_stage: int
    status: str = Field(max_length=20)
    red_flag: bool = False
    #: The submission (visit) that caused the change; None for a lapse into "unassessed".
    submission_id: int | None = Field(default=None, index=True)
    effective_on: date = Field(index=True)
    ladder_version: str = Field(max_length=20)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(default_factory=utcnow)


class GeodataCounter(SQLModel, table=True):
    """Named counters shared by all processes, e.g. ``sites_version`` (bumped on any site change,
    so every process knows when its cached spatial index is stale)."""

    name: str = Field(sa_column=Column(String(50), primary_key=True))
    value: int = 0
