"""A real browser (Debian Chromium via Playwright) logs in against a real uvicorn process."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import PASSWORD
from tests.e2e.server import live_server, settings_env

CHROMIUM = "/usr/bin/chromium"  # Debian's package (make install adds it); never Playwright's own download
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def server(settings, world):
    with live_server(settings_env(settings)) as running:
        yield running


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.browser
def test_log_in_see_home_log_out(server, page):
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/login"  # redirected: no session yet

    page.fill("input[name=username]", "coord")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "Wrong username or password."

    page.fill("input[name=username]", "coord")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    assert "coord" in page.locator("h1").inner_text()
    assert "Coordination" in page.locator(".who").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "asmfield_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

    # The page's own fetch to the API is same-origin and carries the cookie.
    me = page.evaluate("fetch('/api/v1/me').then(r => r.json())")
    assert me["username"] == "coord" and me["via"] == "session"

    page.click("form.logout button")
    page.wait_for_url(f"{server.url}/login")
    assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 401
