"""Webhook fixtures: a real HTTP receiver on 127.0.0.1 (a thread recording every request and
answering with the statuses it is told), apps whose in-process worker is off (tests drive a
``Sender`` with their own clock), and a published site-visit form."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.db import session_scope
from app.main import create_app
from tests.factories import add_form
from webhooks.delivery import Sender
from webhooks.settings import WebhookSettings


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records requests; answers each with the next queued status (200 when none is queued)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until ``count`` requests arrived (a wait, not a timed assertion)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                status = state.statuses.popleft() if state.statuses else 200
            with state.arrived:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                state.arrived.notify_all()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.url + "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(settings, engine, monkeypatch):
    """The app without its background worker: tests send with a ``Sender`` and their own clock."""
    monkeypatch.setenv("ASMFIELD_WEBHOOK_WORKER", "false")
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def visit_form(app, engine, settings, world):
    """The sample ``field_visit`` form, published."""
    with session_scope(engine) as s:
        form, _ = add_form(s, blobs=app.state.blobs, settings=settings)
    return form


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC) + timedelta(minutes=1)  # rows the test writes from now on are due

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender(engine, settings, clock):
    """A sender over the test database (jitter 0: ``rand`` returns 0.5)."""
    made = Sender(engine, settings.secret, WebhookSettings(max_attempts=4, pause_after=6, timeout=5), now=clock,
                  rand=lambda: 0.5)
    yield made
    made.close()
