"""Forms, their versions (XForm + field schema) and media files."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class FormState(StrEnum):
    open = "open"
    closed = "closed"


class FormKind(StrEnum):
    """What a form is for; drives access (design.md §6) and what happens to its submissions."""

    site_visit = "site_visit"
    case_intake = "case_intake"
    case_followup = "case_followup"
    general = "general"


CASE_FORM_KINDS = (FormKind.case_intake, FormKind.case_followup)


class Form(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    xml_form_id: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    title: str = Field(max_length=300)
    kind: str = Field(default=FormKind.general, max_length=30, index=True)
    state: str = Field(default=FormState.open, max_length=20)
    #: The version offered by /formList (newest upload); older versions keep accepting submissions.
    published_version_id: int | None = None
    #: Per-form options, e.g. {"location_field": "/data/gps", "site_mapping": true, "site_field": "/data/site"}.
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")


class FormVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("form_id", "version", name="uq_formversion_form_version"),)

    id: int | None = Field(default=None, primary_key=True)
    form_id: int = Field(foreign_key="form.id", index=True)
    version: str = Field(max_length=100)
    title: str = Field(max_length=300)
    xform_xml: str = Field(sa_column=Column(Text, nullable=False))
    #: MD5 of the XForm bytes, as OpenRosa's formList hash.
    md5: str = Field(max_length=32)
    xform_sha256: str = Field(max_length=64)
    #: sha256 of the uploaded file (XLSForm or XForm) and its name.
    source_sha256: str = Field(max_length=64)
    source_filename: str | None = Field(default=None, max_length=300)
    #: The field schema: list of {path, name, type, repeat, group, binary, geo, choices, required}.
    fields: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Media file names the XForm references (jr://images/..., instance src=jr://file-csv/...).
    media_names: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(default_factory=utcnow)
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")


class FormMedia(SQLModel, table=True):
    """A file attached to a form version (image, CSV, GeoJSON); content lives in the blob store."""

    __table_args__ = (UniqueConstraint("form_version_id", "filename", name="uq_formmedia_version_filename"),)

    id: int | None = Field(default=None, primary_key=True)
    form_version_id: int = Field(foreign_key="formversion.id", index=True)
    filename: str = Field(max_length=300)
    sha256: str = Field(max_length=64)
    md5: str = Field(max_length=32)
    size: int
    media_type: str = Field(max_length=100)
    #: None for uploaded files; "sites" etc. for files the server regenerates.
    generated_from: str | None = Field(default=None, max_length=50)
    updated_at: datetime = Field(default_factory=utcnow)
