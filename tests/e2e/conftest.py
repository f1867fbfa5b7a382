"""End-to-end fixtures: a real uvicorn process over the test's own database and media store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import Settings
from tests.e2e.server import LiveServer, settings_env
from tests.e2e.server import live_server as start_live_server

#: Small enough that a couple of 60 KB photos force Collect to split a submission.
E2E_MAX_SUBMISSION_BYTES = 150_000


@pytest.fixture
def live_server_env() -> dict[str, object]:
    """Setting overrides for the server process (override this fixture in a test module)."""
    return {"max_submission_bytes": E2E_MAX_SUBMISSION_BYTES}


@pytest.fixture
def live_server(settings: Settings, world, live_server_env: dict[str, object]) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free port, over ``settings``' database (seeded with ``world``)."""
    with start_live_server(settings_env(settings, **live_server_env)) as server:
        yield server
