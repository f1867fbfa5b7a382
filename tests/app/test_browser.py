"""A real browser (Debian Chromium via Playwright) logs in against a real uvicorn process, and the pages
render under our Content-Security-Policy with nothing loaded from elsewhere (issue 9, finding 6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD
from tests.e2e.server import live_server, settings_env

#: Runs in every page before its own scripts (injected by the browser, so the CSP does not apply to it).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture
def server(settings, world):
    with live_server(settings_env(settings)) as running:
        yield running


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="en-GB")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.mark.browser
def test_log_in_see_home_log_out(server, page, watch):
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/login?next=%2F"  # redirected: no session yet

    page.fill("input[name=username]", "coord")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("form[action='/login'] button[type=submit]")
    assert page.locator("p.error").inner_text() == "Wrong username or password."

    page.fill("input[name=username]", "coord")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    # the name shows in the header; organisation and role are in the phone menu and, on a screen wider
    # than 99rem, in the header too (hidden between, so that the menu keeps one line)
    assert page.locator("nav.wide .who").inner_text() == "coord"
    assert "Coordination" in page.locator("details.menu .who").text_content()
    cookie = next(c for c in page.context.cookies() if c["name"] == "asmfield_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

    # The page's own fetch to the API is same-origin and carries the cookie.
    me = page.evaluate("fetch('/api/v1/me').then(r => r.json())")
    assert me["username"] == "coord" and me["via"] == "session"

    assert watch.violations(page) == []  # the home page too runs under the CSP

    page.click("nav.wide form.logout button")
    page.wait_for_url(f"{server.url}/login")
    assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 401
    assert watch.violations(page) == [] and watch.outside == []


@dataclass
class Watch:
    """What a page did besides rendering: console errors and requests that left 127.0.0.1 (aborted)."""

    console_errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def violations(self, page) -> list[str]:  # noqa: ANN001
        return page.evaluate("window.__cspViolations")


@pytest.fixture
def watch(page) -> Watch:
    seen = Watch()
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.on("console", lambda message: message.type == "error" and seen.console_errors.append(message.text))

    def only_local(route) -> None:  # noqa: ANN001
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    return seen


@pytest.mark.browser
def test_login_and_docs_render_under_the_csp_with_nothing_from_elsewhere(server, page, watch):
    """Finding 6: /login and Swagger UI on /docs work with script-src 'self' (no inline script), and
    every script, style and image comes from this server, not a CDN."""
    response = page.goto(f"{server.url}/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("input[name=username]").is_visible()

    response = page.goto(f"{server.url}/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "asmfield" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock-summary", has_text="/api/v1/sync/batches").first.click()
    page.wait_for_selector(".opblock.is-open")
    assert page.locator(".opblock").count() > 20

    assert watch.violations(page) == []
    assert watch.console_errors == []
    assert watch.outside == []


@pytest.mark.browser
def test_the_policy_blocks_an_injected_inline_script(server, page, watch):
    """The control for the test above: the browser really enforces the policy, so stored markup with a
    script or an event handler cannot run on our origin."""
    page.goto(f"{server.url}/login")
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.pwned = true";
        document.body.appendChild(script);
        document.body.insertAdjacentHTML("beforeend", '<img src="/nothing" onerror="window.pwned = true">');
    }""")
    page.wait_for_function("window.__cspViolations.length >= 2")
    assert page.evaluate("window.pwned === undefined")
    assert {v.split(" ")[0] for v in watch.violations(page)} >= {"script-src-elem", "script-src-attr"}
