"""JSON shapes of the accounts API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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
