"""Sending the outbox: claim a due delivery atomically, POST its body signed, record the attempt.

A worker (the in-process thread started with the app, or ``asmfield webhooks deliver``) takes due
rows one at a time with a conditional ``UPDATE … SET claimed_until = now + lease WHERE id = … AND
state = 'pending' AND (claimed_until IS NULL OR claimed_until < now)`` committed on its own, so
several workers and processes over one database never send a row twice at once. The HTTP request
runs outside any transaction; its result is written in another one.

Outcomes: 2xx delivered; 410 Gone disables the endpoint (paused, reason ``gone``) and fails the
delivery; anything else (other status, timeout, refused connection, a redirect: never followed) is
retried after ``BACKOFF`` with ±20 % jitter until ``max_attempts``. After ``pause_after``
consecutive failed attempts across its deliveries the endpoint is paused (reason ``failures``) and
an audit row ``webhook.paused`` is written (``webhook.gone`` for a 410); the admin sees the flag in the API and
on /webhooks (there is no e-mail in asmfield).
The clock and the jitter are injectable (tests do not sleep).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from app import audit
from app.db import session_scope
from app.timeutil import utcnow
from webhooks import endpoints, outbox, queries, signing
from webhooks.models import WebhookAttempt
from webhooks.settings import WebhookSettings

log = logging.getLogger("asmfield.webhooks")

#: Wait before attempt n+1 after n failed attempts (seconds); the last value repeats.
BACKOFF = (30, 120, 600, 3600, 6 * 3600, 12 * 3600, 24 * 3600)
JITTER = 0.2
USER_AGENT = "asmfield-webhooks/1"


def backoff(failures: int, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after ``failures`` failed attempts: ``BACKOFF[failures-1]`` ± 20 % jitter."""
    base = BACKOFF[min(max(failures, 1), len(BACKOFF)) - 1]
    return timedelta(seconds=base * (1 + JITTER * (2 * rand() - 1)))


@dataclass
class Sender:
    """What one worker needs: the engine, the server secret (to open endpoint secrets), settings,
    an HTTP client, a clock and a jitter source."""

    engine: Engine
    server_secret: str
    settings: WebhookSettings = field(default_factory=WebhookSettings)
    client: httpx.Client | None = None
    now: Callable[[], datetime] = utcnow
    rand: Callable[[], float] = random.random
    lease: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = httpx.Client(timeout=self.settings.timeout, follow_redirects=False,
                                       headers={"User-Agent": USER_AGENT})
        self.lease = max(self.lease, timedelta(seconds=self.settings.timeout * 2 + 5))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    # -- one pass -----------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> dict[str, int]:
        """Send every due delivery (at most ``limit``); returns counts by outcome."""
        counts = {"delivered": 0, "retry": 0, "failed": 0, "skipped": 0}
        with session_scope(self.engine) as session:
            ids = queries.due(session, self.now(), limit)
        for delivery_id in ids:
            counts[self.send(delivery_id)] += 1
        return counts

    def send(self, delivery_id: int) -> str:
        """Claim, send and record one delivery: ``delivered`` | ``retry`` | ``failed`` | ``skipped`` (not claimed)."""
        now = self.now()
        with session_scope(self.engine) as session:
            if not queries.claim(session, delivery_id, now, now + self.lease):
                return "skipped"
            delivery = queries.delivery(session, delivery_id)
            endpoint = queries.endpoint(session, delivery.endpoint_id) if delivery else None
            if delivery is None or endpoint is None or not endpoint.active:
                return "skipped"  # the claim expires by itself
            url, payload = endpoint.url, delivery.body.encode()
            try:
                secret = signing.unseal(self.server_secret, endpoint.secret_sealed)
            except signing.SecretUnreadable as exc:
                secret, secret_error = None, str(exc)
        status, error, started = None, None, time.monotonic()
        if secret is None:
            error = secret_error
        else:
            status, error = self._post(url, payload, secret)
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._record(delivery_id, status, error, duration_ms)

    def _post(self, url: str, payload: bytes, secret: str) -> tuple[int | None, str | None]:
        timestamp = int(self.now().timestamp())
        headers = {"Content-Type": "application/json", signing.HEADER: signing.header(secret, timestamp, payload)}
        try:
            response = self.client.post(url, content=payload, headers=headers)  # type: ignore[union-attr]
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        if 300 <= response.status_code < 400:
            return response.status_code, "redirect not followed (point the endpoint at the final URL)"
        return response.status_code, f"HTTP {response.status_code}"

    def _record(self, delivery_id: int, status: int | None, error: str | None, duration_ms: int) -> str:
        now = self.now()
        with session_scope(self.engine) as session:
            delivery = queries.delivery(session, delivery_id)
            if delivery is None:  # deleted with its endpoint meanwhile
                return "skipped"
            endpoint = queries.endpoint(session, delivery.endpoint_id)
            session.add(WebhookAttempt(delivery_id=delivery_id, at=now, status_code=status, error=error,
                                       duration_ms=duration_ms))
            delivery.attempts += 1
            delivery.last_status, delivery.last_error, delivery.claimed_until = status, error, None
            if error is None:
                delivery.state, delivery.delivered_at = "delivered", now
                outcome = "delivered"
                if endpoint is not None:
                    endpoint.consecutive_failures = 0
            else:
                gone = status == 410
                if gone or delivery.attempts >= self.settings.max_attempts:
                    delivery.state = "failed"
                    outcome = "failed"
                else:
                    delivery.next_attempt_at = now + backoff(delivery.attempts, self.rand)
                    outcome = "retry"
                if endpoint is not None:
                    endpoint.consecutive_failures += 1
                    if gone:
                        endpoints.pause(session, endpoint, reason="gone", now=now)
                        audit.record(session, "webhook.gone", object_type="webhook", object_id=endpoint.id,
                                     url=endpoint.url)
                    elif endpoint.active and endpoint.consecutive_failures >= self.settings.pause_after:
                        endpoints.pause(session, endpoint, reason="failures", now=now)
                        audit.record(session, "webhook.paused", object_type="webhook", object_id=endpoint.id,
                                     url=endpoint.url, consecutive_failures=endpoint.consecutive_failures)
            session.add(delivery)
            if endpoint is not None:
                session.add(endpoint)
        return outcome


class Worker:
    """The background thread of one app: sends due deliveries, sleeps until woken (a commit wrote
    deliveries), the next retry is due, or ``poll_seconds`` passed.

    It ends when stopped (the app's shutdown) or when its engine is disposed (``Engine.dispose``
    replaces the pool): an app torn down without its shutdown, e.g. a test's app whose database is
    dropped next, must not leave a thread failing against a database that is gone. A pass that fails
    because the worker is ending is not an error worth logging.
    """

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._stop = threading.Event()
        self._wake = outbox.wake_event(sender.engine)
        self._thread: threading.Thread | None = None
        self._pool = sender.engine.pool

    @property
    def ending(self) -> bool:
        return self._stop.is_set() or self.sender.engine.pool is not self._pool

    def start(self) -> None:
        self._pool = self.sender.engine.pool
        self._thread = threading.Thread(target=self._run, name="asmfield-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.sender.close()

    def _run(self) -> None:
        while not self.ending:
            self._wake.clear()
            try:
                self.sender.run_once()
                with session_scope(self.sender.engine) as session:
                    due = queries.next_due_at(session)
            except Exception:  # noqa: BLE001 -- the thread must survive a database hiccup
                if self.ending:
                    break
                log.exception("webhook delivery pass failed")
                due = None
            wait = self.sender.settings.poll_seconds
            if due is not None:
                wait = min(wait, max((due - self.sender.now()).total_seconds(), 0.05))
            self._wake.wait(wait)
        if not self._stop.is_set():  # ended by its engine's disposal: nobody will call stop()
            self.sender.close()
