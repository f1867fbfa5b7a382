"""Child-labour cases: pseudonymous persons and cases, the immutable event trail, services,
follow-up observations, keyed dedup hashes and the link from case-form submissions to cases.

No row here holds a child's name, phone, notes or photo: identifying fields live only in the
case-form submissions (sync owns them) and are read through ``cases.reading`` (scoped by ``cases.access``, audited).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class ChildPerson(SQLModel, table=True):
    """A child, pseudonymously: one person may have several cases (relapse, second referral)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(20), unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ChildCase(SQLModel, table=True):
    """One case of one child, owned by one partner NGO once referred."""

    __table_args__ = (Index("ix_childcase_org_status", "organisation_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(20), unique=True, nullable=False))
    person_id: int = Field(foreign_key="childperson.id", index=True)
    status: str = Field(max_length=40, index=True)
    #: The partner NGO that owns the case (its caseworkers see it); None until referred, unless an
    #: NGO's own caseworker opened it.
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    #: The NGO proposed at intake (``referral_partner``), the default target of the referral.
    proposed_organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    created_by_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    #: instanceID of the first version of the intake submission (stable across edits).
    intake_root_instance_id: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True)
    site_code: str | None = Field(default=None, max_length=100)
    province: str | None = Field(default=None, max_length=100)
    risk_level: str = Field(default="medium", max_length=10)
    urgent: bool = False
    classification: str = Field(max_length=40)
    classifier_version: str = Field(max_length=20)
    sex: str | None = Field(default=None, max_length=10)
    age_at_identification: int | None = None
    age_band: str | None = Field(default=None, max_length=10)
    date_identified: date
    consent_giver: str | None = Field(default=None, max_length=30)
    consent_services: bool = False
    consent_share_partner: bool = False
    consent_reporting: bool = False
    consent_photo: bool = False
    opened_at: datetime = Field(default_factory=utcnow)
    verified_at: datetime | None = None
    #: Date of the second qualifying follow-up the first time closure criteria were met (KPI).
    first_withdrawn_on: date | None = None
    closed_at: datetime | None = None
    closure_reason: str | None = Field(default=None, max_length=40)
    #: A pending four-eyes request: case plan or closure, with who asked and why.
    pending_request: str | None = Field(default=None, max_length=20)
    pending_reason: str | None = Field(default=None, max_length=40)
    requested_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    #: The case this one duplicates (status merged_duplicate).
    duplicate_of_id: int | None = Field(default=None, foreign_key="childcase.id")
    identity_erased_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class CaseEvent(SQLModel, table=True):
    """An immutable transition (or a recorded request) of a case: never updated, never deleted."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="childcase.id", index=True)
    action: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=40)
    to_status: str = Field(max_length=40)
    #: None for the system (e.g. closure criteria met).
    actor_user_id: int | None = Field(default=None, foreign_key="user.id")
    actor_role: str = Field(max_length=20)
    actor_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    #: The tablet the action came through (device token), with its name as it was then: a device
    #: acts for its user, so the event says which credential was used, never only whose.
    actor_device_id: int | None = Field(default=None, foreign_key="device.id")
    actor_device: str | None = Field(default=None, max_length=150)
    #: How the actor authenticated: session | token | basic | digest | device | cli; None for the system.
    actor_auth: str | None = Field(default=None, max_length=20)
    at: datetime = Field(default_factory=utcnow, index=True)
    reason: str | None = Field(default=None, max_length=500)
    submission_id: int | None = Field(default=None, foreign_key="submission.id")
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CaseService(SQLModel, table=True):
    """A service planned or delivered to the child (Primero's services subform)."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="childcase.id", index=True)
    service_type: str = Field(max_length=40)
    implemented: bool = False
    implemented_on: date | None = None
    implementing_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    recorded_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    #: The follow-up submission record (root instanceID) it came from; None when entered via the API.
    submission_root: str | None = Field(default=None, max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class CaseFollowup(SQLModel, table=True):
    """A follow-up observation: was the child found, in hazardous work, in school or training."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="childcase.id", index=True)
    observed_on: date
    child_found: bool = True
    in_hazardous_work: bool | None = None
    in_school_or_training: bool | None = None
    observed_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    observed_by_role: str | None = Field(default=None, max_length=20)
    submission_root: str | None = Field(default=None, max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class CaseDedupKey(SQLModel, table=True):
    """A keyed hash (HMAC with the server secret) of normalised identity facts, for candidates."""

    __table_args__ = (Index("ix_casededupkey_kind_value", "kind", "value"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="childcase.id", index=True)
    kind: str = Field(max_length=20)
    value: str = Field(max_length=64)


class CaseSubmission(SQLModel, table=True):
    """Which case a case-form submission belongs to (None when it was restricted for review)."""

    __table_args__ = (UniqueConstraint("submission_id", name="uq_casesubmission_submission"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id")
    root_instance_id: str = Field(max_length=200, index=True)
    case_id: int | None = Field(default=None, foreign_key="childcase.id", index=True)
    #: intake | followup
    kind: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


@event.listens_for(CaseEvent, "before_update")
@event.listens_for(CaseEvent, "before_delete")
def _events_are_immutable(mapper, connection, target) -> None:  # noqa: ANN001
    """The case history is append-only: an event is never changed or removed through the ORM."""
    raise PermissionError(f"case events are immutable (event {target.id} of case {target.case_id})")
