"""JSON shapes of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models import ApiToken, AuditLog
from app.timeutil import isoformat


class OrganisationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=150)
    kind: str = Field(max_length=20, description="coordinator or ngo")


class OrganisationPublic(BaseModel):
    id: int
    name: str
    kind: str


class UserCreate(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=1024)
    role: str = Field(max_length=20)
    organisation: str | int = Field(description="Organisation name or id.")
    full_name: str | None = Field(None, max_length=200)


class UserPublic(BaseModel):
    id: int
    username: str
    full_name: str | None
    role: str
    organisation_id: int
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserUpdate(BaseModel):
    active: bool | None = None
    password: str | None = Field(None, max_length=1024)


class DeviceCreate(BaseModel):
    name: str = Field(max_length=150)
    user: str | None = Field(None, max_length=150,
                             description="Owner's username: only yourself (devices are registered by their owner).")


class DevicePublic(BaseModel):
    id: int
    name: str
    user_id: int
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


class DeviceCreated(DevicePublic):
    token: str
    server_url: str
    collect_settings: str = Field(description="ODK Collect configuration (zlib+base64 JSON) for a QR code.")


class TokenCreate(BaseModel):
    name: str = Field("token", max_length=150)


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str


class SignOutEverywhere(BaseModel):
    devices: bool = Field(False, description="Also revoke your devices (tablets); by default they keep syncing.")


class LoginBody(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=1024)


# -- read models of the accounts, devices, tokens, audit and health routes ----------------------


class HealthStatus(BaseModel):
    status: str = Field(description="ok")


class ReadyStatus(BaseModel):
    status: str = Field(description="ok or unavailable")
    database: str = Field(description="ok, or the driver error's class name")


class LoginResult(BaseModel):
    username: str
    role: str


class LogoutResult(BaseModel):
    status: str


class SignedOutEverywhere(BaseModel):
    sessions_ended: int
    tokens_revoked: int
    devices_revoked: int
    devices_kept: int


class Me(BaseModel):
    id: int
    username: str
    role: str
    organisation: OrganisationPublic
    via: str = Field(description="How you authenticated: session, token, basic, digest or device.")


class TokenPublic(BaseModel):
    """An API token, never its secret; times are ISO 8601 UTC ending in Z."""

    id: int
    name: str
    user_id: int
    created_at: str | None
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def from_row(cls, row: ApiToken) -> TokenPublic:
        return cls(id=row.id, name=row.name, user_id=row.user_id, created_at=isoformat(row.created_at),
                   revoked_at=isoformat(row.revoked_at), last_used_at=isoformat(row.last_used_at))


class TokenRevoked(BaseModel):
    id: int
    revoked: bool


class AuditEntryPublic(BaseModel):
    """One audit row; failed authentications are aggregated: ``count`` failures between ``at`` and ``last_at``."""

    id: int
    at: str | None
    actor_user_id: int | None
    actor_device_id: int | None
    actor: str | None
    action: str
    object_type: str | None
    object_id: str | None
    client_addr: str | None
    details: dict[str, Any] | None
    count: int | None
    last_at: str | None

    @classmethod
    def from_row(cls, e: AuditLog) -> AuditEntryPublic:
        return cls(id=e.id, at=isoformat(e.at), actor_user_id=e.actor_user_id, actor_device_id=e.actor_device_id,
                   actor=e.actor_label, action=e.action, object_type=e.object_type, object_id=e.object_id,
                   client_addr=e.client_addr, details=e.details, count=e.count, last_at=isoformat(e.last_at))
