"""The foundation behind a real uvicorn process: limits and auth as a client on the network sees them."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.server import live_server, settings_env


@pytest.fixture
def server(settings, world):
    with live_server(settings_env(settings)) as running:
        yield running


@pytest.mark.e2e
def test_real_server_limits_and_auth(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        # Oversized headers: a clear 4xx from the server, never a hang or a 500.
        huge = client.get("/api/v1/me", headers={"X-Padding": "p" * 40_000})
        assert huge.status_code in (400, 431), huge.status_code
        long_auth = client.get("/api/v1/me", headers={"Authorization": "Basic " + "A" * 5000})
        assert long_auth.status_code == 431
        # Basic for scripts, and a session cookie through the JSON login.
        assert client.get("/api/v1/me", auth=("coord", PASSWORD)).json()["via"] == "basic"
        assert client.post("/api/v1/login", json={"username": "coord", "password": PASSWORD}).status_code == 200
        assert client.get("/api/v1/me").json()["via"] == "session"
        assert client.post("/api/v1/tokens", json={}).status_code == 403  # cookie without Origin: CSRF guard
        assert client.post("/api/v1/tokens", json={}, headers={"Origin": server.url}).status_code == 201
