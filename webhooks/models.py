"""Webhook endpoints, the outbox of deliveries (one row per event and matching endpoint, written in
the event's transaction), every delivery attempt, and the endpoints counter that tells each process
when its cached endpoint list is stale."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class WebhookEndpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    #: Subscribed event names (``webhooks.events.EVENTS``).
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Only submission events of this form (its xml form id); None = every form.
    form: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=300)
    #: The signing secret, sealed with a key derived from the server's SECRET_KEY (``signing.seal``).
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    #: Why it is paused: ``admin`` | ``failures`` (K consecutive failed attempts) | ``gone`` (410).
    paused_reason: str | None = Field(default=None, max_length=20)
    paused_at: datetime | None = None
    consecutive_failures: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: the exact body to send and where its sending stands."""

    __table_args__ = (Index("ix_webhookdelivery_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    #: The payload's ``id`` (a uuid); a replay sends the same id so receivers can deduplicate.
    event_id: str = Field(max_length=36, index=True)
    endpoint_id: int = Field(foreign_key="webhookendpoint.id", index=True)
    event: str = Field(max_length=40)
    #: The JSON body exactly as signed and sent.
    body: str = Field(sa_column=Column(Text, nullable=False))
    #: pending | delivered | failed (attempts exhausted, or the receiver answered 410)
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    #: A worker holds the row until then (claimed atomically; a crashed worker's claim expires).
    claimed_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    replay_of: int | None = Field(default=None, foreign_key="webhookdelivery.id")


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: status code (None when no answer), error and duration."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhookdelivery.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0


class WebhookCounter(SQLModel, table=True):
    """Named counters shared by all processes: ``endpoints_version`` is bumped on every endpoint change."""

    name: str = Field(sa_column=Column(String(50), primary_key=True))
    value: int = 0
