"""The case queues in the browser: four-eyes approvals, transfers, the review queue, duplicates, the
child-labour indicator (page and CSV) and the tablet hand-off, over the demo data.

Each test makes its own cases the way a tablet does (an OpenRosa intake submission as a demo
caseworker), moves them with the JSON API to the step it needs, then acts in the page as a person would.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from types import SimpleNamespace

import httpx
import pytest
import zxingcpp
from PIL import Image

from app.collect import decode_settings
from forms.xform import parse_xform
from sync.submission_xml import build_instance_xml
from tests.app.factories import SAME_ORIGIN, login
from tests.browser import api_json, demo_password
from tests.cases.factories import go

NURU = "ONG Nuru Likasi (démo)"
KIPAJI = "ONG Kipaji Kolwezi (démo)"


# -- helpers: a tablet's intake and the JSON API as a demo person ------------------------------


def _auth(username: str) -> tuple[str, str]:
    return username, demo_password(username)


def _invented_name() -> str:
    """A name nobody else has (so this test's cases are not duplicate candidates of another's)."""
    return "".join(chr(97 + b % 26) for b in uuid.uuid4().bytes[:7]).capitalize()


def intake(web, username: str, **answers) -> str:
    """Send an intake as ``username``'s tablet would (OpenRosa POST /submission); returns the new
    case's code (the newest case ``username`` sees)."""
    with httpx.Client(base_url=web.url(""), auth=_auth(username), timeout=30) as http:
        xform = http.get("/forms/child_case_intake.xml")
        assert xform.status_code == 200, xform.text
        fields = parse_xform(xform.content).fields
        version = SimpleNamespace(xform_xml=xform.content, fields=fields, xform_sha256=None)
        paths = {f["name"]: f["path"] for f in fields if f.get("kind") == "field"}
        data = {
            "intake_date": "2026-01-15", "identified_by": "monitor_observation", "consent_giver": "caregiver",
            "consent_services": "yes", "consent_share_partner": "yes", "consent_reporting": "yes",
            "consent_photo": "no", "immediate_danger": "no", "child_given_name": _invented_name(),
            "child_family_name": _invented_name(), "sex": "female", "dob_known": "no", "age_estimated_years": 12,
            "age_basis": "caregiver_statement", "caregiver_relation": "mother",
            "caregiver_phone": f"+24397{uuid.uuid4().int % 10**7:07d}", "residence_area": "kanina",
            "activities": ["washing_ore"], "hours_per_day": 5, "forced_or_trafficked": ["none"],
            "school_status": "dropped_out", "needs": ["school_kit"], **answers}
        xml = build_instance_xml(version, {paths[k]: v for k, v in data.items() if k in paths},
                                 f"uuid:{uuid.uuid4()}")
        sent = http.post("/submission", headers={"X-OpenRosa-Version": "1.0"},
                         files={"xml_submission_file": ("submission.xml", xml, "text/xml")})
        assert sent.status_code in (201, 202), sent.text
        cases = http.get("/api/v1/cases", params={"limit": 1}).json()["cases"]
    return cases[0]["code"]


def step(web, username: str, code: str, action: str, **body) -> dict:
    """One lifecycle transition through the JSON API as ``username``."""
    r = httpx.post(web.url(f"/api/v1/cases/{code}/transitions"), json={"action": action, **body},
                   auth=_auth(username), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def case_as(web, username: str, code: str) -> dict:
    r = httpx.get(web.url(f"/api/v1/cases/{code}"), auth=_auth(username), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def plan_submitted(web, code: str) -> None:
    """Verified and referred to Nuru by the coordinator, accepted and plan submitted by cw_nuru."""
    step(web, "coord", code, "verify")
    step(web, "coord", code, "refer", organisation=NURU)
    step(web, "cw_nuru", code, "accept")
    step(web, "cw_nuru", code, "submit_plan")


# -- approvals ----------------------------------------------------------------------------


@pytest.mark.browser
def test_a_plan_is_approved_by_a_second_caseworker_after_a_send_back_without_reason_is_refused(web):
    code = intake(web, "cw_nuru")
    plan_submitted(web, code)

    mine = web.sign_in("cw_nuru")
    mine.goto(web.url("/cases/approvals"))
    assert code not in mine.inner_text("main")  # never one's own request
    web.check(mine, "approvals-requester")

    page = web.sign_in("cw_nuru2", lang="en")
    page.goto(web.url("/cases/approvals"))
    card = page.locator(f"#case-{code}")
    assert "cw_nuru" in card.inner_text() and "Case plan" in card.inner_text()
    card.get_by_role("button", name="Send the plan back").click()
    page.wait_for_load_state()
    assert "Give a reason" in page.locator(f"#case-{code} .error").inner_text()
    web.check(page, "approvals-refused")
    assert case_as(web, "cw_nuru2", code)["status"] == "case_plan_pending_approval"

    page.locator(f"#case-{code}").get_by_role("button", name="Approve the plan").click()
    page.wait_for_load_state()
    assert f"Decision recorded for case {code}" in page.locator(".notice").inner_text()
    assert page.locator(f"#case-{code}").count() == 0
    web.check(page, "approvals-done")
    after = case_as(web, "cw_nuru", code)
    assert after["status"] == "in_services"
    assert [e["actor"] for e in after["events"] if e["action"] == "approve_plan"] == ["cw_nuru2"]


# -- transfers ----------------------------------------------------------------------------


@pytest.mark.browser
def test_a_transfer_is_accepted_by_the_other_ngo_and_the_coordinator_sees_where_it_stands(web):
    code = intake(web, "cw_nuru")
    plan_submitted(web, code)
    step(web, "cw_nuru2", code, "approve_plan")
    step(web, "coord", code, "transfer", organisation=KIPAJI)

    page = web.sign_in("cw_kipaji")
    page.goto(web.url("/cases/transfers"))
    card = page.locator(f"#case-{code}")
    assert KIPAJI in card.inner_text()
    web.check(page, "transfers-incoming")
    card.get_by_role("button", name="Accepter le dossier").click()
    page.wait_for_load_state()
    assert code in page.locator(".notice").inner_text()
    assert case_as(web, "cw_kipaji", code)["status"] == "accepted"

    coord = web.sign_in("coord", lang="en")
    coord.goto(web.url("/cases/transfers"))
    row = coord.locator("table tr", has_text=code)
    assert "Accepted" in row.inner_text() and KIPAJI in row.inner_text() and NURU in row.inner_text()
    web.check(coord, "transfers-coordinator")


# -- review queue -------------------------------------------------------------------------


@pytest.mark.browser
def test_the_coordinator_rejects_an_adult_intake_from_the_review_queue(web):
    intake(web, "cw_nuru", age_estimated_years=19, child_given_name="Adulte")
    queue = httpx.get(web.url("/api/v1/cases/review"), auth=_auth("coord")).json()["submissions"]
    mine = queue[-1]

    page = web.sign_in("coord")
    page.goto(web.url("/cases/review"))
    assert "Adulte" not in page.inner_text("main")
    assert page.locator(f"form[action='/cases/review/{mine['instance_id']}']").count() == 1
    web.check(page, "review-fr")
    page.locator(f"form[action='/cases/review/{mine['instance_id']}'] button[value=rejected]").click()
    page.wait_for_load_state()
    assert page.locator(".notice").count() == 1
    assert page.locator(f"form[action='/cases/review/{mine['instance_id']}']").count() == 0
    left = httpx.get(web.url("/api/v1/cases/review"), auth=_auth("coord")).json()["submissions"]
    assert mine["instance_id"] not in [s["instance_id"] for s in left]

    english = web.sign_in("coord", lang="en")
    english.goto(web.url("/cases/review"))
    web.check(english, "review-en")


# -- duplicates ---------------------------------------------------------------------------


@pytest.mark.browser
def test_duplicates_show_no_names_and_a_merge_keeps_its_reason(web):
    phone = f"+24399{uuid.uuid4().int % 10**7:07d}"
    first = intake(web, "cw_nuru", child_given_name="Doublonne", child_family_name="Kapinga", caregiver_phone=phone)
    second = intake(web, "cw_kipaji", child_given_name="Doublonne", child_family_name="Kapinga", caregiver_phone=phone)

    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/cases/duplicates"))
    text = page.inner_text("main")
    assert first in text and second in text
    assert "Doublonne" not in page.content() and "Kapinga" not in page.content() and phone not in page.content()
    web.check(page, "duplicates-en")

    form = page.locator("form", has=page.locator(f"input[name=pair][value*='{second}']"))
    form.get_by_role("button", name="Merge").click()  # the browser asks for the reason first (required)
    assert page.url.endswith("/cases/duplicates")
    form.locator("textarea[name=reason]").fill("same caregiver phone and same family, seen by both NGOs")
    form.get_by_role("button", name="Merge").click()
    page.wait_for_load_state()
    assert "merged" in page.locator(".notice").inner_text()
    merged = [c for c in (case_as(web, "coord", first), case_as(web, "coord", second))
              if c["status"] == "merged_duplicate"]
    assert len(merged) == 1
    event = next(e for e in merged[0]["events"] if e["action"] == "merge")
    assert event["reason"].endswith(": same caregiver phone and same family, seen by both NGOs")

    french = web.sign_in("coord")
    french.goto(web.url("/cases/duplicates"))
    web.check(french, "duplicates-fr")


# -- the child-labour indicator -----------------------------------------------------------


def _figure(text: str) -> str:
    return {"masqué": "suppressed", "hidden": "suppressed"}.get(text.strip(), text.strip())


@pytest.mark.browser
@pytest.mark.parametrize(("username", "lang"), [("cw_nuru", "en"), ("coord", "fr")])
def test_the_kpi_page_and_its_csv_match_the_api(web, username, lang):
    page = web.sign_in(username, lang=lang)
    page.goto(web.url("/cases/kpi?from=2025-01&to=2026-12"))
    api = api_json(page, "/api/v1/kpis/child-labour?from=2025-01&to=2026-12")
    if username == "cw_nuru":
        assert api["scope"] == NURU and NURU in page.inner_text("main")
    assert _figure(page.locator("[data-kpi=value]").inner_text()) == str(api["value"])
    for name in ("identified", "in_services", "withdrawn", "relapses", "lost_to_follow_up"):
        assert _figure(page.locator(f"[data-kpi={name}]").inner_text()) == str(api["companions"][name])
    for name, value in api["by_organisation"].items():
        assert _figure(page.locator(f"[data-kpi='by_organisation:{name}']").inner_text()) == str(value)
    web.check(page, f"kpi-{username}")

    answer = page.context.request.get(web.url("/cases/kpi.csv?from=2025-01&to=2026-12"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text())))
    table = {(r["table"], r["name"]): r["value"] for r in rows}
    assert {r["from"] for r in rows} == {api["from"]} and {r["to"] for r in rows} == {api["to"]}
    assert table[("indicator", "value")] == str(api["value"])
    for name in ("identified", "in_services", "withdrawn", "relapses", "lost_to_follow_up"):
        assert table[("companions", name)] == str(api["companions"][name])
    for level in ("organisation", "province", "site"):
        assert {n: v for (t, n), v in table.items() if t == level} == {
            n: str(v) for n, v in api[f"by_{level}"].items()}


@pytest.mark.browser
def test_a_period_that_is_not_whole_months_is_refused_beside_the_field(web):
    page = web.sign_in("cw_kipaji", lang="en")
    answer = page.goto(web.url("/cases/kpi?from=2026-01-15&to=2026-03"))
    assert answer.status == 400
    assert "whole months" in page.locator("#e-from").inner_text()
    assert page.locator("#f-from").input_value() == "2026-01-15"


# -- hand-off -----------------------------------------------------------------------------


@pytest.mark.browser
def test_a_caseworker_registers_a_tablet_and_its_qr_code_configures_collect(web):
    page = web.sign_in("cw_kipaji", lang="en")
    page.goto(web.url("/cases/handoff"))
    assert "form media" in page.inner_text("main")
    web.check(page, "handoff-en")
    name = f"kipaji-tab-{uuid.uuid4().hex[:6]}"
    page.fill("input[name=name]", name)
    page.get_by_role("button", name="Register and show the QR code").click()
    page.wait_for_load_state()
    image = Image.open(io.BytesIO(page.locator("svg.qr").screenshot()))
    decoded = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    settings = decode_settings(decoded[0].text)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/key/[A-Za-z0-9_-]+", settings["general"]["server_url"])
    assert settings["project"]["name"] == f"asmfield {name}"
    token_forms = httpx.get(f"{settings['general']['server_url']}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert token_forms.status_code == 200 and "child_case_followup" in token_forms.text
    web.check(page, "handoff-qr")

    page.fill("input[name=name]", name)  # the same name again: refused beside the field
    page.get_by_role("button", name="Register and show the QR code").click()
    page.wait_for_load_state()
    assert "exists already" in page.locator("#e-name").inner_text()
    assert page.locator("svg.qr").count() == 0

    french = web.sign_in("cw_kipaji")
    french.goto(web.url("/cases/handoff"))
    assert name in french.inner_text("main")
    web.check(french, "handoff-fr")


# -- who may do what (no browser) ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/cases/review", "/cases/duplicates"])
def test_coordinator_queues_are_refused_to_a_caseworker(client, world, path):
    login(client, "cw_a")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/cases/approvals", "/cases/transfers", "/cases/review", "/cases/duplicates",
                                  "/cases/kpi", "/cases/handoff"])
def test_queue_paths_are_not_taken_for_case_codes(client, world, path):
    login(client, "coord")
    assert client.get(path).status_code == 200


def test_an_administrator_sees_the_kpi_but_no_queue(client, world):
    login(client, "admin")
    assert client.get("/cases/kpi").status_code == 200
    assert client.get("/cases/kpi.csv").status_code == 200
    assert client.get("/cases/approvals").status_code == 403


def test_deciding_on_a_case_nobody_may_see_is_404(client, world):
    login(client, "cw_a")
    answer = client.post("/cases/approvals/CL-7Q4K-M2XD", data={"action": "approve_plan"}, headers=SAME_ORIGIN)
    assert answer.status_code == 404
    answer = client.post("/cases/transfers/not-a-code", data={"action": "accept"}, headers=SAME_ORIGIN)
    assert answer.status_code == 404


def test_a_merge_through_the_api_keeps_its_reason(client, kit, world):
    first = kit.intake(world.caseworker_a).code
    second = kit.intake(world.caseworker_b).code
    answer = client.post(f"/api/v1/cases/{second}/merge", headers=world.coordinator.bearer,
                         json={"into": first, "reason": "same child, seen at two sites"})
    assert answer.status_code == 200, answer.text
    merge = next(e for e in answer.json()["events"] if e["action"] == "merge")
    assert merge["reason"] == f"duplicate of {first}: same child, seen at two sites"


def test_approving_ones_own_plan_is_refused_with_the_reason_on_the_page(client, kit, world):
    code = kit.intake(world.caseworker_a).code
    for who, action, extra in ((world.coordinator, "verify", {}), (world.coordinator, "refer", {"organisation": "NGO A"}),
                               (world.caseworker_a, "accept", {}), (world.caseworker_a, "submit_plan", {})):
        go(client, who, code, action, **extra)
    login(client, "cw_a")
    answer = client.post(f"/cases/approvals/{code}", data={"action": "approve_plan"}, headers=SAME_ORIGIN)
    assert answer.status_code == 409
    assert "Une autre personne doit décider" in answer.text
    assert client.get(f"/api/v1/cases/{code}").json()["status"] == "case_plan_pending_approval"
