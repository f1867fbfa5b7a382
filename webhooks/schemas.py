"""JSON shapes of the webhooks API and of ``asmfield webhooks … --json``.

Requests are ``…In``; answers ``…Public``. The secret appears only in ``EndpointCreated``, the
answer to the registration; no other answer carries it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointIn(BaseModel):
    url: str = Field(max_length=2000, description="http:// or https:// URL receiving POSTs")
    events: list[str] = Field(min_length=1, description="submission.created, submission.edited, "
                              "submission.reviewed, site.stage_changed, case.transition")
    form: str | None = Field(default=None, max_length=200, description="only submission events of this form (xml id)")
    description: str | None = Field(default=None, max_length=300)


class EndpointUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=2000)
    events: list[str] | None = None
    form: str | None = Field(default=None, max_length=200, description="a form id; empty string: every form")
    description: str | None = Field(default=None, max_length=300)
    active: bool | None = Field(default=None, description="false pauses, true resumes")


class EndpointPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    form: str | None
    description: str | None
    active: bool
    #: admin | failures (paused after repeated failures: look at the deliveries) | gone (the receiver answered 410)
    paused_reason: str | None
    paused_at: datetime | None
    consecutive_failures: int
    pending: int = 0
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, pending: int = 0) -> EndpointPublic:
        return cls(id=endpoint.id or 0, url=endpoint.url, events=list(endpoint.events), form=endpoint.form,
                   description=endpoint.description, active=endpoint.active, paused_reason=endpoint.paused_reason,
                   paused_at=endpoint.paused_at, consecutive_failures=endpoint.consecutive_failures,
                   pending=pending, created_at=endpoint.created_at)


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="the signing secret; shown only now, store it with the receiver")


class AttemptPublic(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptPublic:
        return cls(at=attempt.at, status_code=attempt.status_code, error=attempt.error,
                   duration_ms=attempt.duration_ms)


class DeliveryPublic(BaseModel):
    id: int
    event_id: str
    endpoint_id: int
    event: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    replay_of: int | None
    attempt_log: list[AttemptPublic] = []

    @classmethod
    def of(cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None) -> DeliveryPublic:
        return cls(id=delivery.id or 0, event_id=delivery.event_id, endpoint_id=delivery.endpoint_id,
                   event=delivery.event, state=delivery.state, attempts=delivery.attempts,
                   next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
                   created_at=delivery.created_at, delivered_at=delivery.delivered_at,
                   last_status=delivery.last_status, last_error=delivery.last_error, replay_of=delivery.replay_of,
                   attempt_log=[AttemptPublic.of(a) for a in attempts or []])


class DeliveryList(BaseModel):
    deliveries: list[DeliveryPublic]


class EndpointList(BaseModel):
    endpoints: list[EndpointPublic]
    #: True when an endpoint was paused by repeated failures or a 410 (the admin should look).
    attention: bool = False
