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


@pytest.mark.e2e
def test_asmfield_serve_serves_the_data_dir(settings, world):
    """`asmfield serve` (the command `make run` and the Docker image use) over an initialised data dir."""
    import os
    import subprocess
    import sys
    import time

    from tests.e2e.server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASMFIELD_")} | settings_env(settings)
    command = [sys.executable, "-c", "from app.cli import main; main()", "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "asmfield serve did not become ready in 30 s"
                try:
                    code = process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(f"asmfield serve exited with {code}: {process.stdout.read().decode()}")
            assert client.get("/api/v1/me", auth=("admin", PASSWORD)).json()["role"] == "admin"
    finally:
        process.terminate()
        process.wait(timeout=15)
