"""Failed logins: one aggregated audit row per (client address, username, method) and window,
the per-username lockout and the per-address throttle read from those rows (every process
sees the same counts). Called by every credential check before any password is verified."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import case, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.deps import client_addr
from app.errors import DomainError
from app.models import AuditLog
from app.timeutil import utcnow

#: Failed authentications are aggregated into one audit row per (client address, username,
#: method) and window of this many seconds, with a counter: guessing cannot flood the audit log.
FAILURE_WINDOW_SECONDS = 300
FAILED_LOGIN = "auth.login_failed"


def record_failed_login(request: Request, username: str | None, method: str) -> None:
    """Count a failed authentication in its aggregated audit row, in its own transaction
    (the request itself fails): an UPDATE of the window's row, or the row's INSERT.

    ``username`` is None for token failures (audited as "?", which is never a username).
    """
    addr = client_addr(request)
    label = (username or "?")[:150]
    now = utcnow()
    window = int(now.timestamp()) // FAILURE_WINDOW_SECONDS
    key = hashlib.sha256(json.dumps([FAILED_LOGIN, addr, label, method, window]).encode()).hexdigest()
    engine = request.app.state.engine
    table = AuditLog.__table__

    def bump() -> bool:
        with engine.begin() as conn:
            result = conn.execute(
                update(table).where(table.c.aggregate_key == key).values(count=table.c.count + 1, last_at=now)
            )
            return result.rowcount == 1

    if bump():
        return
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(
                at=now, last_at=now, count=1, aggregate_key=key, action=FAILED_LOGIN, actor_label=label,
                client_addr=addr, details={"method": method},
            ))
    except IntegrityError:  # another process opened this window's row a moment ago
        if not bump():
            raise


def _since(minutes: int) -> datetime:
    return utcnow() - timedelta(minutes=minutes)


def _addr_matches(addr: str | None):  # noqa: ANN202
    return AuditLog.client_addr.is_(None) if addr is None else AuditLog.client_addr == addr[:100]


def recent_failures(session: Session, *, addr: str | None, minutes: int) -> int:
    """Failed authentications from ``addr`` whose aggregated row saw a failure in the last
    ``minutes`` (a row counts whole, so the window is at most ``FAILURE_WINDOW_SECONDS`` longer)."""
    query = sa_select(func.coalesce(func.sum(AuditLog.count), 0)).where(
        AuditLog.action == FAILED_LOGIN, _addr_matches(addr), AuditLog.last_at > _since(minutes))
    return int(session.execute(query).scalar_one())


def _throttled(request: Request) -> DomainError:
    settings = request.app.state.settings
    return DomainError(
        f"too many failed authentications from this address; try again in {settings.auth_throttle_minutes} minutes",
        code="auth.throttled", status_code=429, headers=[("Retry-After", str(settings.auth_throttle_minutes * 60))],
    )


def check_throttle(session: Session, request: Request) -> None:
    """Refuse to answer an invalid token for a client address with too many recent failed
    authentications (429), before recording one more. Counted in the database, so every app
    process refuses; valid device and API tokens never get here."""
    settings = request.app.state.settings
    if recent_failures(session, addr=client_addr(request), minutes=settings.auth_throttle_minutes) >= \
            settings.auth_throttle_failures:
        raise _throttled(request)


def check_lockout(session: Session, request: Request, username: str) -> None:
    """Refuse a username with too many recent failed logins (password guessing), whatever the
    method, and a client address with too many failed authentications (throttle).

    Called before any password check or cache, so a locked username is refused even with the
    right password. One indexed query over the audit log's aggregated failure rows, so every
    app process sees the same counts.
    """
    settings = request.app.state.settings
    addr = client_addr(request)
    since_user, since_addr = _since(settings.login_lockout_minutes), _since(settings.auth_throttle_minutes)
    by_user = (AuditLog.actor_label == username[:150]) & (AuditLog.last_at > since_user)
    by_addr = _addr_matches(addr) & (AuditLog.last_at > since_addr)
    user_failures, addr_failures = session.execute(
        sa_select(func.coalesce(func.sum(case((by_user, AuditLog.count), else_=0)), 0),
                  func.coalesce(func.sum(case((by_addr, AuditLog.count), else_=0)), 0))
        .where(AuditLog.action == FAILED_LOGIN, AuditLog.last_at > min(since_user, since_addr),
               (AuditLog.actor_label == username[:150]) | _addr_matches(addr))
    ).one()
    if addr_failures >= settings.auth_throttle_failures:
        raise _throttled(request)
    if user_failures >= settings.login_lockout_failures:
        raise DomainError(
            f"too many failed logins for {username[:150]!r}; try again in {settings.login_lockout_minutes} minutes",
            code="auth.locked", status_code=429,
            headers=[("Retry-After", str(settings.login_lockout_minutes * 60))],
        )
