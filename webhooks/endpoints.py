"""Registering webhook endpoints and looking after their deliveries (admins only; services never commit).

An endpoint is a URL (http or https), the events it subscribes to (``outbox.EVENTS``), an optional
form filter (applies to submission events; site and case events have no form), and a signing
secret generated here and returned once by ``register`` (stored sealed, ``signing.seal``; never
shown again: delete and re-create the endpoint to get a new one). Every change bumps the
``endpoints_version`` counter so each process's cached filters follow.

Targets on private networks are allowed by default (receivers on the LAN are normal in the field);
``ASMFIELD_WEBHOOK_ALLOW_PRIVATE=false`` refuses URLs whose host resolves to a private, loopback,
link-local or reserved address at registration (SSRF). Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session

from app import audit
from app.identity import Actor
from app.timeutil import utcnow
from webhooks import outbox, queries, signing
from webhooks.errors import BadEvent, BadUrl, DeliveryNotFound, EndpointNotFound, NotReplayable, UnknownForm
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.schemas import DeliveryList, DeliveryPublic, EndpointList, EndpointPublic


@dataclass
class Registered:
    endpoint: WebhookEndpoint
    secret: str


def check_url(url: str, *, allow_private: bool) -> str:
    """An http(s) URL with a host; with ``allow_private`` False, not resolving to a private address."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadUrl(f"not a URL: {url!r}", details={"field": "url"}) from exc
    if parts.scheme not in ("http", "https"):
        raise BadUrl(f"a webhook URL must start with http:// or https:// (got {parts.scheme or 'no scheme'!r})",
                     details={"field": "url"})
    if not parts.hostname:
        raise BadUrl("a webhook URL needs a host name", details={"field": "url"})
    if parts.username or parts.password:
        raise BadUrl("put no credentials in a webhook URL; receivers verify the signature instead",
                     details={"field": "url"})
    if not allow_private:
        try:
            infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        except OSError as exc:
            raise BadUrl(f"cannot resolve {parts.hostname!r}", details={"field": "url"}) from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise BadUrl(f"{parts.hostname} resolves to a non-public address ({address}); private targets are "
                             "refused (ASMFIELD_WEBHOOK_ALLOW_PRIVATE=false)", details={"field": "url"})
    return url


def check_events(events: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    if not wanted:
        raise BadEvent(f"subscribe to at least one event: {', '.join(outbox.EVENTS)}", details={"field": "events"})
    unknown = [e for e in wanted if e not in outbox.EVENTS]
    if unknown:
        raise BadEvent(f"unknown event {unknown[0]!r}; use {', '.join(outbox.EVENTS)}", details={"field": "events"})
    return wanted


def _check_form(session: Session, form: str | None) -> str | None:
    form = (form or "").strip() or None
    if form is not None and not queries.form_exists(session, form):
        raise UnknownForm(f"no form {form!r}", details={"field": "form"})
    return form


def register(session: Session, *, url: str, events: list[str], form: str | None = None,
             description: str | None = None, server_secret: str, allow_private: bool,
             actor: Actor | None = None, label: str | None = None) -> Registered:
    """A new active endpoint and its signing secret (returned here only)."""
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(url=check_url(url, allow_private=allow_private), events=check_events(events),
                               form=_check_form(session, form), description=(description or "").strip() or None,
                               secret_sealed=signing.seal(server_secret, secret))
    session.add(endpoint)
    session.flush()
    outbox.endpoints_changed(session)
    audit.record(session, "webhook.create", actor=actor, label=label, object_type="webhook", object_id=endpoint.id,
                 url=endpoint.url, events=endpoint.events, form=endpoint.form)
    return Registered(endpoint=endpoint, secret=secret)


def get(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = queries.endpoint(session, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def update(session: Session, endpoint_id: int, *, allow_private: bool, url: str | None = None,
           events: list[str] | None = None, form: str | None = None, clear_form: bool = False,
           description: str | None = None, active: bool | None = None, actor: Actor | None = None,
           label: str | None = None) -> WebhookEndpoint:
    """Change what is given; ``active`` True resumes (failure count reset), False pauses (reason ``admin``)."""
    endpoint = get(session, endpoint_id)
    if url is not None:
        endpoint.url = check_url(url, allow_private=allow_private)
    if events is not None:
        endpoint.events = check_events(events)
    if clear_form:
        endpoint.form = None
    elif form is not None:
        endpoint.form = _check_form(session, form)
    if description is not None:
        endpoint.description = description.strip() or None
    now = utcnow()
    if active is True and not endpoint.active:
        resume(session, endpoint, now=now)
    elif active is False and endpoint.active:
        pause(session, endpoint, reason="admin", now=now)
    endpoint.updated_at = now
    session.add(endpoint)
    session.flush()
    outbox.endpoints_changed(session)
    audit.record(session, "webhook.update", actor=actor, label=label, object_type="webhook", object_id=endpoint.id,
                 url=endpoint.url, events=endpoint.events, form=endpoint.form, active=endpoint.active)
    return endpoint


def pause(session: Session, endpoint: WebhookEndpoint, *, reason: str, now: datetime) -> None:
    """Stop sending to ``endpoint`` (its deliveries wait, and new events still queue up for it)."""
    endpoint.active, endpoint.paused_reason, endpoint.paused_at, endpoint.updated_at = False, reason, now, now
    session.add(endpoint)


def resume(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> None:
    """Send again: the waiting deliveries go at once, the failure count starts again from zero."""
    endpoint.active, endpoint.paused_reason, endpoint.paused_at = True, None, None
    endpoint.consecutive_failures, endpoint.updated_at = 0, now
    session.add(endpoint)
    queries.due_now(session, endpoint.id or 0, now)
    session.info[outbox.WROTE] = True


def delete(session: Session, endpoint_id: int, *, actor: Actor | None = None, label: str | None = None) -> None:
    """Remove the endpoint with its deliveries and their attempts."""
    endpoint = get(session, endpoint_id)
    queries.delete_endpoint(session, endpoint_id)
    session.expunge(endpoint)
    outbox.endpoints_changed(session)
    audit.record(session, "webhook.delete", actor=actor, label=label, object_type="webhook", object_id=endpoint_id,
                 url=endpoint.url)


def replay(session: Session, delivery_id: int, *, actor: Actor | None = None,
           label: str | None = None) -> WebhookDelivery:
    """Send a delivered or failed delivery again: a new delivery with the same body (same event id)."""
    original = queries.delivery(session, delivery_id)
    if original is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id}")
    if original.state == "pending":
        raise NotReplayable(f"delivery {delivery_id} is still pending; it will be sent (or retried) by the worker")
    now = utcnow()
    copy = WebhookDelivery(event_id=original.event_id, endpoint_id=original.endpoint_id, event=original.event,
                           body=original.body, next_attempt_at=now, created_at=now, replay_of=original.id)
    session.add(copy)
    session.flush()
    session.info[outbox.WROTE] = True
    audit.record(session, "webhook.replay", actor=actor, label=label, object_type="webhook",
                 object_id=original.endpoint_id, delivery=original.id, replay=copy.id)
    return copy


# -- reading --------------------------------------------------------------------------------


def listing(session: Session) -> EndpointList:
    """Every endpoint with its pending count; ``attention`` when one was paused by failures or a 410."""
    pending = queries.pending_counts(session)
    items = [EndpointPublic.of(e, pending.get(e.id or 0, 0)) for e in queries.endpoints(session)]
    return EndpointList(endpoints=items, attention=any(e.paused_reason in ("failures", "gone") for e in items))


def public(session: Session, endpoint_id: int) -> EndpointPublic:
    endpoint = get(session, endpoint_id)
    return EndpointPublic.of(endpoint, queries.pending_counts(session).get(endpoint_id, 0))


def delivery_list(session: Session, *, endpoint_id: int | None = None, state: str | None = None,
                  limit: int = 50) -> DeliveryList:
    """The newest deliveries (of one endpoint, in one state), each with its attempts."""
    if endpoint_id is not None:
        get(session, endpoint_id)
    rows = queries.deliveries(session, endpoint_id=endpoint_id, state=state, limit=limit)
    by_delivery: dict[int, list[WebhookAttempt]] = {}
    for attempt in queries.attempts(session, [r.id for r in rows if r.id is not None]):
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return DeliveryList(deliveries=[DeliveryPublic.of(r, by_delivery.get(r.id or 0)) for r in rows])


def delivery_detail(session: Session, delivery_id: int) -> DeliveryPublic:
    row = queries.delivery(session, delivery_id)
    if row is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id}")
    return DeliveryPublic.of(row, queries.attempts(session, [delivery_id]))
