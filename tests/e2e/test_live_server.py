"""The live_server fixture itself: a real process over the test's database."""

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_live_server_serves_the_tests_database(live_server, world):
    me = httpx.get(f"{live_server.url}/api/v1/me", headers=world.monitor.basic)
    assert me.status_code == 200
    assert me.json()["username"] == "monitor"
    assert live_server.rss_bytes() > 10_000_000
