"""JSON shapes of the accounts API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class OrganisationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=150)
    kind: str


class OrganisationPublic(BaseModel):
    id: int
    name: str
    kind: str


class UserCreate(BaseModel):
    username: str
    password: str
    role: str
    organisation: str | int
    full_name: str | None = None


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
    password: str | None = None


class DeviceCreate(BaseModel):
    name: str
    user: str | None = Field(None, description="Owner's username; default: yourself.")


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
    name: str = "token"


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str


class LoginBody(BaseModel):
    username: str
    password: str
