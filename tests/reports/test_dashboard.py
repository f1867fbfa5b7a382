"""The dashboard at / : the same figures as the JSON API, red flags and sync health counted from the
rows themselves, where each role lands, and the page in the browser (French and English)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from app.composition import build_hooks, make_blob_store
from app.db import session_scope
from app.demo import DEMO_PASSWORD, seed_accounts, seed_devices
from app.identity import Actor
from app.models import User
from app.timeutil import utcnow
from cases.demo import seed as seed_cases
from forms.demo import seed as seed_forms
from forms.models import CASE_FORM_KINDS, Form
from forms.xform import parse_xform
from geodata import demo as geodata_demo
from reports import dashboard
from sync.models import Submission
from sync.submission_xml import build_instance_xml
from tests.app.factories import login
from tests.browser import api_json, demo_password


@pytest.fixture
def demo(engine, settings):
    """A smaller demo (20 sites): the demo accounts and tablets, the bundled forms, visits and cases."""
    blobs = make_blob_store(settings)
    with session_scope(engine) as s:
        seed_accounts(s)
        s.flush()
        seed_devices(s)
        seed_forms(s, settings, build_hooks(), blobs)
        s.flush()
        geodata_demo.load(s, settings, hooks=build_hooks(), blobs=blobs, n_sites=20, visits_per_site=(2, 4))
        s.flush()
        seed_cases(s, settings, build_hooks(), blobs)


def sign_in(client, username: str) -> None:  # noqa: ANN001
    assert login(client, username, DEMO_PASSWORD.format(username=username)).status_code == 303


def board_for(engine, username: str) -> dashboard.Dashboard:  # noqa: ANN001
    now = utcnow()
    with Session(engine) as s:
        user = s.exec(select(User).where(User.username == username)).one()
        return dashboard.build(s, actor=Actor(user=user), today=now.date(), now=now)


def flags_of(answers: dict) -> set[str]:
    """The red flags of one visit, read the plain way (answers by field name)."""
    flags = set()
    if answers.get("armed_presence") not in (None, [], ["none"]):
        flags.add("armed_presence")
    if answers.get("forced_labour_indicators") not in (None, [], ["none"]) \
            or "forced_labour" in (answers.get("armed_interference") or []):
        flags.add("forced_labour")
    if (answers.get("children_u15_seen") or 0) + (answers.get("children_15_17_seen") or 0) > 0:
        flags.add("children_seen")
    if (answers.get("fatalities_since_last_visit") or 0) > 0:
        flags.add("fatalities")
    return flags


def test_the_dashboard_shows_the_apis_figures_and_counts_what_the_rows_hold(client, engine, demo):
    sign_in(client, "coord")
    kpi = client.get("/api/v1/kpis/child-labour").json()
    stats = client.get("/api/v1/sites/stats").json()
    board = board_for(engine, "coord")

    # The KPI and the stages are the API's own numbers (same services, same suppression).
    assert board.kpi["value"] == kpi["value"] and (board.period_from, board.period_to) == (kpi["from"], kpi["to"])
    month = client.get("/api/v1/kpis/child-labour", params={"from": board.kpi_trend[-1][0],
                                                              "to": board.kpi_trend[-1][0]}).json()
    assert board.kpi_trend[-1][1] == (month["value"] if isinstance(month["value"], int) else None)
    assert board.by_stage == stats["by_stage"] and board.sites == stats["sites"]
    assert board.stage_months == [m["month"] for m in stats["monthly"]]
    assert board.stage_series == {s: [m["stages"][s] for m in stats["monthly"]] for s in stats["by_stage"]}
    at_least_3 = sum(n for s, n in stats["by_stage"].items() if int(s) >= 3)
    assert board.share_stage3 == round(100 * at_least_3 / stats["sites"], 1)

    # Red flags per month and sync health, counted row by row.
    with Session(engine) as s:
        forms = {f.id: f for f in s.exec(select(Form)).all()}
        rows = [r for r in s.exec(select(Submission).where(Submission.current == True)).all()  # noqa: E712
                if forms[r.form_id].kind not in CASE_FORM_KINDS and not r.restricted]
    flags: Counter = Counter()
    for row in rows:
        if forms[row.form_id].xml_form_id != "asm_site_visit":
            continue
        answers = {path.rsplit("/", 1)[-1]: value for path, value in row.data.items()}
        if answers["visit_date"][:7] in board.flag_months:
            flags.update((answers["visit_date"][:7], flag) for flag in flags_of(answers))
    assert board.flags_by_month == {flag: [flags[(m, flag)] for m in board.flag_months] for flag in dashboard.FLAGS}
    assert board.health == {
        "waiting_for_attachments": sum(r.attachments_present < r.attachments_expected for r in rows),
        "unmapped": sum(r.site_match == "unmapped" for r in rows),
        "needs_review": sum(r.review_state == "needs_review" for r in rows),
    }
    assert board.health == {"waiting_for_attachments": 2, "unmapped": 3, "needs_review": 4}

    # Each tablet's last sync; stale after two weeks.
    assert board.device_count == 4 and board.stale_devices == 2
    stale = {d.name for d in board.devices if d.stale}
    assert all(d.last_seen_at < utcnow() - timedelta(days=dashboard.STALE_DAYS) for d in board.devices if d.name in stale)


def test_the_dashboard_asks_the_database_the_same_number_of_questions_however_many_rows(engine, settings, demo):
    def statements() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            board_for(engine, "coord")
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    before = statements()
    with session_scope(engine) as s:  # more sites, visits and photos (another seed: new codes and instance IDs)
        more = geodata_demo.load(s, settings, hooks=build_hooks(), blobs=make_blob_store(settings), seed=7,
                                 n_sites=10, visits_per_site=(3, 4))
    assert more["visits"] > 20
    assert statements() == before


def test_the_page_links_every_number_to_the_list_behind_it(client, demo):
    sign_in(client, "coord")
    page = client.get("/")
    assert page.status_code == 200
    for href in ("/cases/kpi?from=", "/map", "/sites?visited_days=90", "/sites?stage=0", "/map?flag=1&amp;from=", "/submissions?attachments=missing", "/submissions?mapped=no",
                 "/submissions?review_state=needs_review", "/devices", "/submissions?device=Tablette%20Kolwezi%2001"):
        assert f'href="{href}' in page.text, href


@pytest.mark.parametrize(("role", "landing"), [("caseworker", "/cases"), ("monitor", "/submissions")])
def test_caseworkers_and_monitors_land_on_their_own_pages(client, world, role, landing):
    person = world.person(role)
    assert login(client, person.username, person.password).status_code == 303
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, landing)


def test_administrators_see_the_dashboard_and_strangers_are_asked_to_sign_in(client, world):
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login?next=")
    assert login(client, world.admin.username, world.admin.password).status_code == 303
    r = client.get("/")
    assert r.status_code == 200 and 'href="/submissions?attachments=missing"' in r.text
    assert 'href="/" aria-current="page"' in r.text  # the Dashboard entry of the navigation


@pytest.mark.browser
@pytest.mark.parametrize(("lang", "words"), [("fr", ("Tableau de bord", "État de la synchronisation")),
                                             ("en", ("Dashboard", "Sync health"))])
def test_a_coordinator_reads_the_dashboard(web, lang, words):
    page = web.sign_in("coord", lang=lang)
    page.goto(web.url("/"))
    assert page.locator("h1").inner_text() == words[0]
    assert page.get_by_role("heading", name=words[1]).is_visible()
    kpi = api_json(page, "/api/v1/kpis/child-labour")
    stats = api_json(page, "/api/v1/sites/stats")
    assert page.locator("a[href^='/cases/kpi'] .value").inner_text() == str(kpi["value"])
    for stage, count in stats["by_stage"].items():
        assert page.locator(f"ul.stages a[href='/sites?stage={stage}'] strong").inner_text() == str(count)
    assert page.locator("svg.chart").count() == 2 and page.locator("svg.sparkline").count() == 4
    assert page.locator(".badge.bad").count() >= 1 and page.locator(".badge.ok").count() >= 1  # stale and recent
    waiting = page.locator("a[href='/submissions?attachments=missing'] .value").inner_text()
    assert int(waiting) >= 2
    web.check(page, "dashboard")

    page.locator("a[href='/submissions?mapped=no']").click()
    page.wait_for_load_state()
    assert "/submissions?mapped=no" in page.url
    french_again(web, page)


def french_again(web, page) -> None:  # noqa: ANN001
    """Give coord back the demo's language (the server is shared by the tests of a worker)."""
    page.context.request.post(web.url("/language"), form={"lang": "fr", "next": "/"},
                              headers={"Origin": web.server.url})


def _figures(page) -> dict[str, int]:  # noqa: ANN001
    def value(selector: str) -> int:
        return int(page.locator(selector).inner_text())

    return {"flags": value("a[href^='/map?flag=1'] .value"), "armed": value("ul.flags li:first-child strong"),
            "waiting": value("a[href='/submissions?attachments=missing'] .value"),
            "unmapped": value("a[href='/submissions?mapped=no'] .value")}


@pytest.mark.browser
def test_a_visit_sent_from_a_tablet_appears_on_the_dashboard(web):
    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/"))
    before = _figures(page)

    # monitor2's tablet sends a visit off every mapped site, reporting armed men, without its photo yet...
    with httpx.Client(base_url=web.url(""), auth=("monitor2", demo_password("monitor2")), timeout=30) as http:
        xform = http.get("/forms/asm_site_visit.xml")
        assert xform.status_code == 200, xform.text
        fields = parse_xform(xform.content).fields
        version = SimpleNamespace(xform_xml=xform.content, fields=fields, xform_sha256=None)
        answers = {"visit_date": utcnow().date().isoformat(), "visit_type": "unannounced",
                   "visit_location": "-11.9 27.9 1250 6", "activity_status": "active", "legal_zone": "unknown",
                   "workers_total": 40, "children_u15_seen": 0, "children_15_17_seen": 0,
                   "armed_presence": ["unknown_armed"], "summary_risk": "high",
                   "site_photos": [{"photo_site": "pit.jpg"}]}
        xml = build_instance_xml(version, geodata_demo.answers_to_data(version, answers), f"uuid:{uuid.uuid4()}")
        headers = {"X-OpenRosa-Version": "1.0"}
        sent = http.post("/submission", headers=headers, files={"xml_submission_file": ("submission.xml", xml)})
        assert sent.status_code in (201, 202), sent.text
        page.reload()
        after = _figures(page)
        assert after == {"flags": before["flags"] + 1, "armed": before["armed"] + 1,
                         "waiting": before["waiting"] + 1, "unmapped": before["unmapped"] + 1}

        # ...then the photo: the visit no longer waits for it.
        photo = geodata_demo.site_photo(99)
        sent = http.post("/submission", headers=headers, files={"xml_submission_file": ("submission.xml", xml),
                                                               "pit.jpg": ("pit.jpg", photo, "image/jpeg")})
        assert sent.status_code in (201, 202), sent.text
    page.reload()
    assert _figures(page)["waiting"] == before["waiting"]
    web.check(page, "dashboard-after-a-visit")
    french_again(web, page)
