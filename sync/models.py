"""Submissions (one row per instance, edits chained by root id), their attachments,
extracted geopoints, and the media blobs behind attachments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class Submission(SQLModel, table=True):
    __table_args__ = (Index("ix_submission_form_received", "form_id", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    #: meta/instanceID, globally unique (uuid:...).
    instance_id: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    #: instanceID of the first version of this record; stable across edits.
    root_instance_id: str = Field(max_length=200, index=True)
    #: meta/deprecatedID of an edit (the version it replaces).
    deprecated_id: str | None = Field(default=None, max_length=200)
    #: True for the newest version of its record; older versions are kept as history.
    current: bool = Field(default=True, index=True)
    superseded_by: str | None = Field(default=None, max_length=200)
    form_id: int = Field(foreign_key="form.id", index=True)
    form_version_id: int = Field(foreign_key="formversion.id", index=True)
    submitted_by_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    #: OpenRosa ?deviceID= (e.g. collect:abc123) and User-Agent, as the client sent them.
    client_device_id: str | None = Field(default=None, max_length=200)
    user_agent: str | None = Field(default=None, max_length=300)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    xml_sha256: str = Field(max_length=64)
    xml: str = Field(sa_column=Column(Text, nullable=False))
    #: Values keyed by field path ("/data/group/field"); repeats as lists of dicts.
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Location of the submission (the form's location field, by default the first geopoint).
    lon: float | None = None
    lat: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    #: Site mapping (geodata): containing site, else nearest within tolerance; distance in metres.
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True)
    site_distance_m: float | None = None
    #: inside | nearest | named | unmapped | disabled; site_flag e.g. "gps_disagrees_with_named_site".
    site_match: str | None = Field(default=None, max_length=20)
    site_flag: str | None = Field(default=None, max_length=100)
    attachments_expected: int = 0
    attachments_present: int = 0
    complete: bool = True
    #: received | needs_review | approved | rejected; restricted = case data kept minimal and hidden.
    review_state: str = Field(default="received", max_length=30, index=True)
    review_reason: str | None = Field(default=None, max_length=500)
    restricted: bool = False


class Blob(SQLModel, table=True):
    """Metadata of a stored file (content in the blob store under its sha256)."""

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    size: int
    media_type: str = Field(max_length=100)
    width: int | None = None
    height: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class BlobHolder(SQLModel, table=True):
    """A user who sent the bytes of a file with this sha256 (an OpenRosa part or a PUT).

    Only the bytes prove possession (issue 9, finding 5): announcing a hash in a batch grants
    nothing, but a holder may skip re-sending it and may read it. For a stripped image (case and
    sensitive forms) this is the original's hash, which is never stored.
    """

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class SubmissionAttachment(SQLModel, table=True):
    """A file the submission XML references: expected until received."""

    __table_args__ = (UniqueConstraint("submission_id", "name", name="uq_attachment_submission_name"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    name: str = Field(max_length=300)
    #: The field path that references it.
    field_path: str | None = Field(default=None, max_length=500)
    sha256: str | None = Field(default=None, foreign_key="blob.sha256", index=True)
    #: The hash a JSON-sync client announced before sending the file (PUT /api/v1/blobs/{sha256} fills it).
    expected_sha256: str | None = Field(default=None, max_length=64, index=True)
    size: int | None = None
    media_type: str | None = Field(default=None, max_length=100)
    received: bool = False
    received_at: datetime | None = None


class SubmissionGeopoint(SQLModel, table=True):
    """Every geopoint of a submission, including those inside repeats."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    field_path: str = Field(max_length=500)
    #: Position among repeat instances (0 outside repeats).
    repeat_index: int = 0
    lon: float
    lat: float
    altitude: float | None = None
    accuracy: float | None = None


class SubmissionComment(SQLModel, table=True):
    """A review step on a record: a comment, a change of review state, or both (issue 11).

    Kept per record (``root_instance_id``, stable across edits) and per version reviewed
    (``submission_id``); listed on the submission page and audited as ``submission.review`` /
    ``submission.comment``.
    """

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    root_instance_id: str = Field(max_length=200, index=True)
    author_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    #: The review state before and after; both None for a comment alone.
    from_state: str | None = Field(default=None, max_length=30)
    to_state: str | None = Field(default=None, max_length=30)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
