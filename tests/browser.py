"""Browser tests in real Chromium against a real server with the demo data (pytest plugin).

Every web page test follows the same recipe::

    @pytest.mark.browser
    def test_coordinator_sees_the_map(web):
        page = web.sign_in("coord")                 # French by default; web.sign_in("coord", lang="en")
        page.goto(web.url("/map"))
        ...assertions as the user would check...
        web.check(page, "map")                      # screenshots (390x844 and 1366x768), axe-core,
                                                    # no horizontal scroll at 360 px, nothing from elsewhere

``demo_server`` is one uvicorn process per test worker over a database loaded with ``init --demo``
(the demo accounts' passwords are ``demo-<username>-2026``). Tests share it, so a test that changes
data makes its own records (a new case, a new form) rather than relying on another test's.
Screenshots land in ``test-output/screenshots/<test name>/`` for people to look at.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import etree
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from app.composition import build_hooks, make_blob_store
from app.db import make_engine, session_scope
from app.demo import COORDINATOR_ORG, DEMO_PASSWORD, NGO_ORGS, seed_demo
from tests.conftest import fresh_database
from tests.e2e.server import LiveServer, live_server, settings_env
from tests.factories import jpeg

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's package (make install adds it); never Playwright's own download
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("ASMFIELD_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"
PHONE = {"width": 390, "height": 844}
NARROW_PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}
#: Runs in every page before its own scripts (injected by the browser, so the CSP does not apply to it).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def demo_password(username: str) -> str:
    return DEMO_PASSWORD.format(username=username)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory, db_template: str) -> Iterator[LiveServer]:
    """A live server over the demo data, one per test worker (``asmfield init --demo`` then ``serve``)."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    with fresh_database(data_dir, db_template) as settings:
        engine = make_engine(settings)
        with session_scope(engine) as session:
            seed_demo(session, settings, build_hooks(), make_blob_store(settings))
        engine.dispose()
        with live_server(settings_env(settings)) as server:
            yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Web:
    """One test's browser sessions on the demo server, with the checks every page must pass."""

    server: LiveServer
    browser: Browser
    test_name: str
    contexts: list[BrowserContext] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_assets: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def new_page(self, *, lang: str = "fr", viewport: dict | None = None) -> Page:
        context = self.browser.new_context(viewport=viewport or PHONE, locale="fr-FR" if lang == "fr" else "en-GB")
        context.add_init_script(RECORD_CSP_VIOLATIONS)
        context.route("**/*", self._only_local)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
                and self.console_errors.append(f"{page.url}: {message.text}"))
        # A page's own answer may be a 4xx on purpose (a refused form); a script, style or image may not.
        page.on("response", lambda response: response.status >= 400 and response.request.resource_type != "document"
                and not response.request.url.endswith("/favicon.ico")
                and self.failed_assets.append(f"{response.status} {response.request.url}"))
        return page

    def sign_in(self, username: str, *, lang: str = "fr", password: str | None = None,
                viewport: dict | None = None) -> Page:
        """A page signed in as ``username`` (through the sign-in form), in ``lang``.

        The form sends it to ``/healthz``, not to the home page: the dashboard costs up to a second and
        every test goes to its own page next (the home page has its own tests).
        """
        page = self.new_page(lang=lang, viewport=viewport)
        page.goto(self.url("/login?next=/healthz"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password or demo_password(username))
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state()
        assert "/login" not in page.url, f"could not sign in as {username}"
        page.context.request.post(self.url("/language"), form={"lang": lang, "next": "/"},
                                  headers={"Origin": self.server.url})
        return page

    def make_user(self, role: str, organisation: str | None = None) -> tuple[str, str]:
        """A new person of ``role`` made by the demo admin through the API (for tests that must not share a
        demo user's saved choices, e.g. its language); returns (username, password)."""
        username = f"t{uuid.uuid4().hex[:10]}"
        password = f"Fresh-{uuid.uuid4().hex}"
        request = self.browser.new_context().request
        try:
            origin = {"Origin": self.server.url}
            request.post(self.url("/api/v1/login"), data={"username": "admin", "password": demo_password("admin")},
                         headers=origin)
            org = organisation or (NGO_ORGS[0] if role == "caseworker" else COORDINATOR_ORG)
            answer = request.post(self.url("/api/v1/users"), headers={**origin, "X-Requested-With": "test"},
                                  data={"username": username, "password": password, "role": role, "organisation": org})
            assert answer.status == 201, answer.text()
        finally:
            request.dispose()
        return username, password

    def _only_local(self, route) -> None:  # noqa: ANN001
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    # -- the checks ------------------------------------------------------------------------

    def csp_violations(self, page: Page) -> list[str]:
        return page.evaluate("window.__cspViolations || []")

    def axe(self, page: Page) -> list[str]:
        """Serious and critical axe-core violations on the page as it is now (WCAG 2.1 A/AA rules)."""
        page.evaluate(AXE.read_text())  # evaluated by the browser's debugger protocol, not subject to the CSP
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.id} (${v.impact}): ${v.help} -> ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
        }""")
        return result

    def horizontal_overflow(self, page: Page) -> int:
        """How many pixels the page is wider than the screen (0 is the only right answer)."""
        return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    def screenshot(self, page: Page, name: str) -> list[Path]:
        """Phone (390x844) and desktop (1366x768) full-page screenshots of the page as it is now."""
        folder = SCREENSHOTS / _safe(self.test_name)
        folder.mkdir(parents=True, exist_ok=True)
        lang = page.evaluate("document.documentElement.lang") or "xx"
        original = page.viewport_size
        paths = []
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            page.wait_for_timeout(150)
            path = folder / f"{_safe(name)}-{lang}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        if original:
            page.set_viewport_size(original)
        return paths

    def check(self, page: Page, name: str, *, axe: bool = True) -> None:
        """What every page must pass: no overflow at 360 px, axe-core clean, CSP clean, nothing from
        elsewhere, no console error; and screenshots for people to look at."""
        original = page.viewport_size
        page.set_viewport_size(NARROW_PHONE)
        page.wait_for_timeout(150)
        overflow = self.horizontal_overflow(page)
        if original:
            page.set_viewport_size(original)
        self.screenshot(page, name)
        problems = []
        if overflow > 0:
            problems.append(f"{overflow}px of horizontal scrolling at 360 px")
        if axe:
            problems += [f"axe: {v}" for v in self.axe(page)]
        problems += [f"CSP: {v}" for v in self.csp_violations(page)]
        problems += [f"request to another host: {u}" for u in self.outside]
        problems += [f"console error: {e}" for e in self.console_errors]
        problems += [f"failed to load: {e}" for e in self.failed_assets]
        assert not problems, f"{name} ({page.url}):\n" + "\n".join(problems)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


@pytest.fixture
def web(demo_server: LiveServer, chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Web]:
    session = Web(server=demo_server, browser=chromium, test_name=request.node.name)
    try:
        yield session
    finally:
        session.close()


def api_json(page: Page, path: str) -> object:
    """GET ``path`` with the page's session cookie (same origin) and return the JSON."""
    return json.loads(page.evaluate(f"fetch({json.dumps(path)}).then(r => r.text())"))


def _middle(coordinates) -> tuple[float, float]:  # noqa: ANN001 (GeoJSON coordinates of any geometry)
    """The mean of a geometry's positions (inside a small site polygon)."""
    pairs = []

    def walk(value) -> None:  # noqa: ANN001
        if value and isinstance(value[0], (int, float)):
            pairs.append(value[:2])
        else:
            for part in value:
                walk(part)

    walk(coordinates)
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)


def send_visit_with_photo(server_url: str, username: str, site_code: str | None = None) -> tuple[str, str]:
    """Send an asm_site_visit with a photo inside a demo site (the first, or ``site_code``) as ODK Collect would
    (OpenRosa, Basic auth, the demo password); returns (instanceID, site code)."""
    auth = httpx.BasicAuth(username, demo_password(username))
    headers = {"X-OpenRosa-Version": "1.0"}
    with httpx.Client(base_url=server_url, auth=auth, headers=headers, timeout=30) as http:
        forms = etree.fromstring(http.get("/formList").content)
        ns = {"x": "http://openrosa.org/xforms/xformsList"}
        version = next(x.findtext("x:version", namespaces=ns) for x in forms.iterfind("x:xform", ns)
                       if x.findtext("x:formID", namespaces=ns) == "asm_site_visit")
        features = http.get("/api/v1/sites", params={"kind": "asm_site"}).json()["features"]
        site = next(f for f in features if site_code in (None, f["properties"]["code"]))
        code = site["properties"]["code"]
        lon, lat = _middle(site["geometry"]["coordinates"])
        iid = f"uuid:{uuid.uuid4()}"
        xml = f"""<?xml version="1.0"?>
<asm_site_visit xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms"
  id="asm_site_visit" version="{version}">
  <site_id>{code}</site_id><visit_date>{date.today().isoformat()}</visit_date><visit_type>unannounced</visit_type>
  <visit_location>{lat} {lon} 1250.0 6.0</visit_location><activity_status>active</activity_status>
  <minerals>cobalt copper</minerals><legal_zone>inside_zea</legal_zone><cooperative_present>yes</cooperative_present>
  <workers_total>42</workers_total><children_u15_seen>0</children_u15_seen><children_15_17_seen>0</children_15_17_seen>
  <armed_presence>none</armed_presence>
  <site_photos><photo_site>entrance.jpg</photo_site></site_photos>
  <meta><instanceID>{iid}</instanceID></meta>
</asm_site_visit>""".encode()
        files = {"xml_submission_file": ("submission.xml", xml, "text/xml"),
                 "entrance.jpg": ("entrance.jpg", jpeg((640, 480), color="sienna"), "image/jpeg")}
        response = http.post("/submission", files=files)
        assert response.status_code == 201, response.text
    return iid, code
