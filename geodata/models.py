"""Sites (polygons as GeoJSON text + bbox columns, EPSG:4326) and their formalisation stages.

Geometry is plain GeoJSON text plus numeric bbox columns so the same schema runs on SQLite and
PostgreSQL without SpatiaLite/PostGIS; exact predicates are done in ``geodata.spatial``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, String, Text
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
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


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
