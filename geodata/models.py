"""Sites (polygons as GeoJSON text + bbox columns, EPSG:4326) and their formalisation stages."""

from __future__ import annotations

from datetime import datetime
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
    source: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
