"""Accounts and audit: organisations, users, devices, API tokens, web sessions, audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class OrgKind(StrEnum):
    coordinator = "coordinator"
    ngo = "ngo"


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    kind: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(150), unique=True, nullable=False))
    full_name: str | None = Field(default=None, max_length=200)
    password_hash: str = Field(max_length=300)
    #: MD5(username:realm:password) for HTTP Digest (OpenRosa clients); rotated with the password.
    digest_ha1: str | None = Field(default=None, max_length=64)
    role: str = Field(max_length=20, index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    #: language of the web pages ("fr" or "en"); None: the browser's choice, else French
    language: str | None = Field(default=None, max_length=5)


class Device(SQLModel, table=True):
    """A named tablet credential acting for one user; used as ``/key/{token}/`` before OpenRosa paths."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(150), unique=True, nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_seen_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A Bearer token for scripts and integrations."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=150)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A browser login. Stored in the database so any app process can check or end it."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None


class DigestNonce(SQLModel, table=True):
    """Nonces issued in Digest challenges and the highest nonce-count seen (replay protection)."""

    nonce: str = Field(sa_column=Column(String(100), primary_key=True))
    issued_at: datetime = Field(default_factory=utcnow)
    last_nc: int = 0


class AuditLog(SQLModel, table=True):
    """Append-only record of who did what to which object, when and from where.

    One exception to "one row per event": failed authentications are aggregated per (client
    address, username, method, few-minute window) into one row whose ``count`` and ``last_at``
    grow (``aggregate_key`` names the bucket), so guessing cannot flood the log. Lockout and
    the per-address throttle sum ``count`` over recent ``last_at`` (indexes below).
    """

    __table_args__ = (
        Index("ix_auditlog_object", "object_type", "object_id"),
        Index("ix_auditlog_action_label_last", "action", "actor_label", "last_at"),
        Index("ix_auditlog_action_addr_last", "action", "client_addr", "last_at"),
        Index("ux_auditlog_aggregate_key", "aggregate_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    actor_device_id: int | None = Field(default=None, foreign_key="device.id")
    actor_label: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=80, index=True)
    object_type: str | None = Field(default=None, max_length=50)
    object_id: str | None = Field(default=None, max_length=200)
    client_addr: str | None = Field(default=None, max_length=100)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: How many events this row stands for (1, except for aggregated failed authentications).
    count: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    #: Time of the latest event aggregated into this row (``at`` is the first).
    last_at: datetime | None = None
    #: Identifies the aggregation bucket of an aggregated row; NULL for ordinary entries.
    aggregate_key: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
