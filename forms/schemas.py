"""JSON shapes of the forms API and of ``asmfield forms ... --json`` (read models built from rows).

Timestamps are ISO 8601 ending in ``Z`` (``app.timeutil.isoformat``), as everywhere in the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer

from app.timeutil import isoformat
from forms.models import Form, FormMedia, FormVersion

Timestamp = Annotated[datetime | None, PlainSerializer(isoformat, return_type=str | None)]


class FormMediaPublic(BaseModel):
    filename: str
    md5: str
    sha256: str
    size: int
    media_type: str
    #: The capability data a generated file comes from (e.g. ``sites``), None for uploads.
    generated_from: str | None
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: FormMedia) -> FormMediaPublic:
        return cls(filename=row.filename, md5=row.md5, sha256=row.sha256, size=row.size, media_type=row.media_type,
                   generated_from=row.generated_from, updated_at=row.updated_at)


class FormPublic(BaseModel):
    """One form as listed: its state, kind and published version."""

    xml_form_id: str
    title: str
    kind: str
    state: str
    version: str | None
    md5: str | None
    published_at: Timestamp

    @classmethod
    def from_form(cls, form: Form, published: FormVersion | None) -> FormPublic:
        return cls(xml_form_id=form.xml_form_id, title=form.title, kind=form.kind, state=form.state,
                   version=published.version if published else None, md5=published.md5 if published else None,
                   published_at=published.published_at if published else None)


class FormList(BaseModel):
    forms: list[FormPublic]


class FormVersionPublic(BaseModel):
    version: str
    md5: str
    published_at: Timestamp
    published: bool
    warnings: list[str]

    @classmethod
    def from_row(cls, row: FormVersion, form: Form) -> FormVersionPublic:
        return cls(version=row.version, md5=row.md5, published_at=row.published_at,
                   published=row.id == form.published_version_id, warnings=row.warnings)


class FormDetail(FormPublic):
    """A form with its settings, versions, and the published version's fields and media."""

    settings: dict[str, Any]
    versions: list[FormVersionPublic]
    fields: list[dict[str, Any]]
    media_names: list[str]
    media: list[FormMediaPublic]

    @classmethod
    def from_rows(cls, form: Form, published: FormVersion | None, *, settings: dict[str, Any],
                  versions: list[FormVersion], media: list[FormMedia]) -> FormDetail:
        return cls(**dict(FormPublic.from_form(form, published)), settings=settings,
                   versions=[FormVersionPublic.from_row(v, form) for v in versions],
                   fields=published.fields if published else [],
                   media_names=published.media_names if published else [],
                   media=[FormMediaPublic.from_row(m) for m in media])


class FormUploaded(BaseModel):
    """The answer to a form upload: the form, the version it now has, and what was stored."""

    xml_form_id: str
    title: str
    kind: str
    state: str
    version: str
    md5: str
    #: False when this very version was already published (nothing changed).
    created: bool
    warnings: list[str]
    media_names: list[str]
    media: list[FormMediaPublic]


class FormMediaUploaded(BaseModel):
    xml_form_id: str
    version: str
    media: list[FormMediaPublic]


class FormAdded(BaseModel):
    """``asmfield forms add --json``: the version published and the media files it still lacks."""

    xml_form_id: str
    version: str
    kind: str
    created: bool
    md5: str
    warnings: list[str]
    media: list[str]
    missing_media: list[str]


class FormStateChanged(BaseModel):
    """``asmfield forms open|close --json``."""

    xml_form_id: str
    state: str
