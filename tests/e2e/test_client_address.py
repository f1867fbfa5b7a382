"""Issue 9, finding 15, found again on replay: the per-address throttle counted the address that
``X-Forwarded-For`` named, because ``asmfield serve`` trusted that header from 127.0.0.1 (uvicorn's
default). Any local process, or a reverse proxy that passes the header on unchanged, then chose a new
address per request: no 429 ever, and one audit row per invented address. The header counts only
when the operator lists the proxies that set it (``FORWARDED_ALLOW_IPS``)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app.db import session_scope
from app.models import AuditLog
from tests.e2e.server import live_server, settings_env

pytestmark = pytest.mark.e2e


def bad_tokens(url: str, addresses: list[str]) -> list[int]:
    """Status of one request with an invalid Bearer token per claimed client address."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return [client.get("/api/v1/me", headers={"Authorization": f"Bearer not-a-token-{i}",
                                                  "X-Forwarded-For": address}).status_code
                for i, address in enumerate(addresses)]


def failure_addresses(engine) -> set[str | None]:
    with session_scope(engine) as s:
        return set(s.exec(select(AuditLog.client_addr).where(AuditLog.action == "auth.login_failed")))


def test_a_client_cannot_pick_its_address_with_x_forwarded_for(settings, world, engine, monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    env = settings_env(settings, auth_throttle_failures=3)
    with live_server(env, cli=True) as server:
        statuses = bad_tokens(server.url, [f"198.51.100.{i}" for i in range(1, 6)])
    assert statuses == [401, 401, 401, 429, 429]
    assert failure_addresses(engine) == {"127.0.0.1"}


def test_the_proxies_the_operator_lists_may_name_the_client(settings, world, engine, monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
    env = settings_env(settings, auth_throttle_failures=3)
    with live_server(env, cli=True) as server:
        statuses = bad_tokens(server.url, [f"198.51.100.{i}" for i in range(1, 6)])
    assert statuses == [401] * 5
    assert failure_addresses(engine) == {f"198.51.100.{i}" for i in range(1, 6)}
