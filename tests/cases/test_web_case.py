"""The case pages (/cases, /cases/{code}): scoped like the case API, every lifecycle step as a form
calling the same services, refusals beside the field with what was typed, the identity behind an
audited reveal; and, in real Chromium, a caseworker of each demo NGO walking a new case from
``submitted`` to ``closed``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import session_scope
from app.identity import Actor
from app.models import AuditLog
from app.timeutil import utcnow
from cases import reading
from tests.app.factories import SAME_ORIGIN, login
from tests.browser import api_json, demo_password
from tests.cases.conftest import eligible_answers, photo_file

# -- TestClient: who sees what, and the forms --------------------------------------------------


@contextmanager
def signed_in(app, username: str) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(app) as client:
        assert login(client, username).status_code == 303
        yield client


def post(client: TestClient, path: str, data: dict):  # noqa: ANN201
    return client.post(path, data=data, headers=SAME_ORIGIN, follow_redirects=False)


def step(client: TestClient, code: str, action: str, expect: int = 303, **fields: str):  # noqa: ANN201
    r = post(client, f"/cases/{code}/transitions", {"action": action, **fields})
    assert r.status_code == expect, r.text[:2000]
    return r


def test_a_caseworker_lists_only_their_organisations_cases(app, kit, world):
    mine = kit.intake(world.caseworker_a)
    theirs = kit.intake(world.caseworker_b)
    with signed_in(app, "cw_a") as cw:
        page = cw.get("/cases")
        assert page.status_code == 200
        assert mine.code in page.text and theirs.code not in page.text
        assert 'href="/cases"' in page.text  # in the menu
        other = cw.get(f"/cases/{theirs.code}")
        assert other.status_code == 404 and "text/html" in other.headers["content-type"]
        assert theirs.code in other.text or "404" in other.text
        assert cw.get("/cases/CL-0000-0000").status_code == 404
        assert post(cw, f"/cases/{theirs.code}/transitions", {"action": "accept"}).status_code == 404
        assert mine.code in listed(cw, f"/cases?q={mine.code[3:]}")
    with signed_in(app, "coord") as co:
        page = co.get("/cases?state=submitted")
        assert mine.code in page.text and theirs.code in page.text
    with signed_in(app, "admin") as admin:
        assert admin.get("/cases").status_code == 403
        assert admin.get(f"/cases/{mine.code}").status_code == 403


def listed(client: TestClient, url: str) -> str:
    """The filtered list of a work-list page (below the filters; the to-do tiles above list all cases)."""
    return client.get(url).text.split('role="search"')[1]


def test_the_work_list_puts_overdue_referrals_and_my_approvals_first(app, kit, world):
    code = kit.intake(world.caseworker_b, risk_level="high").code
    with signed_in(app, "coord") as co:
        step(co, code, "verify", risk_level="high")
        step(co, code, "refer", organisation=str(world.ngo_a.id))
    with signed_in(app, "cw_a") as cw:
        page = cw.get("/cases")
        assert "Waiting for us to accept" in page.text or "attente" in page.text
        first = page.text.split('id="states-h"')[0]
        assert code in first  # listed under "what needs doing first"
        step(cw, code, "accept")
        step(cw, code, "submit_plan")
        mine = cw.get(f"/cases/{code}")
        assert "Waiting for approval by another person" in mine.text or "une autre personne" in mine.text
        assert 'value="approve_plan"' not in mine.text
    with signed_in(app, "coord") as co:
        page = co.get("/cases")
        assert code in page.text.split('id="states-h"')[0]
        assert 'value="approve_plan"' in co.get(f"/cases/{code}").text
        assert code in listed(co, "/cases?state=case_plan_pending_approval")
        assert code not in listed(co, "/cases?state=closed")
        assert co.get("/cases?overdue=1").status_code == 200


def test_a_refused_step_is_explained_beside_the_field_and_keeps_what_was_typed(app, kit, world):
    code = kit.intake(world.caseworker_a).code
    with signed_in(app, "coord") as co:
        step(co, code, "verify")
        step(co, code, "refer", organisation=str(world.ngo_a.id))
    with signed_in(app, "cw_a") as cw:
        step(cw, code, "accept")
        refused = step(cw, code, "request_closure", expect=422, reason="lost_to_follow_up")
        assert 'id="e-request_closure-reason"' in refused.text
        assert '<option value="lost_to_follow_up" selected>' in refused.text
        assert "<details class=\"step card\" open>" in refused.text
        # nothing was kept: still accepted, no request pending
        assert cw.get(f"/cases/{code}").text.count("waiting for approval") == 0
        bad_date = post(cw, f"/cases/{code}/services", {"service_type": "education", "implemented": "yes",
                                                      "implemented_on": (date.today() + timedelta(days=9)).isoformat()})
        assert bad_date.status_code == 422 and 'id="e-service-implemented_on"' in bad_date.text
        assert 'value="education" selected' in bad_date.text
    with signed_in(app, "coord") as co:
        # a coordinator may not record a service (the owning NGO does): same refusal as the API
        assert post(co, f"/cases/{code}/services", {"service_type": "education"}).status_code == 403


def test_the_identity_is_shown_only_after_a_reason_and_the_reading_is_audited(app, kit, world):
    code = kit.intake(world.caseworker_a).code
    with signed_in(app, "cw_a") as cw:
        page = cw.get(f"/cases/{code}")
        assert "Mwamba" not in page.text and f'action="/cases/{code}/identity"' in page.text
        assert post(cw, f"/cases/{code}/identity", {"reason": " "}).status_code == 422
        shown = post(cw, f"/cases/{code}/identity", {"reason": "home visit tomorrow"})
        assert shown.status_code == 200 and "Mwamba" in shown.text and "+243970000001" in shown.text
    with session_scope(world.engine) as s:
        row = s.exec(select(AuditLog).where(AuditLog.action == "case.read_identity",
                                            AuditLog.object_id == code)).one()
        assert row.details["reason"] == "home visit tomorrow" and "child_given_name" in row.details["fields"]
    with signed_in(app, "coord") as co:
        for action, extra in (("verify", {}), ("refer", {"organisation": str(world.ngo_a.id)})):
            step(co, code, action, **extra)
    with signed_in(app, "cw_a") as cw:
        step(cw, code, "accept")
    with signed_in(app, "coord") as co:  # after acceptance only the NGO reads the identity
        page = co.get(f"/cases/{code}")
        assert f'action="/cases/{code}/identity"' not in page.text
        refused = post(co, f"/cases/{code}/identity", {"reason": "curious"})
        assert refused.status_code == 403 and "Mwamba" not in refused.text


# -- Chromium: a caseworker of each demo NGO walks a new case to closure ----------------------

NGOS = {"cw_kipaji": ("cw_kipaji2", "cw_nuru"), "cw_nuru": ("cw_nuru2", "cw_kipaji")}


def submit_intake(web, username: str) -> str:
    """An intake sent as ``username`` through the JSON sync API (the same ingest as a tablet); the code
    of the case it opened."""
    base = web.url("")
    auth = (username, demo_password(username))
    root = "/child_case_intake"
    data = {f"{root}/intake_date": (date.today() - timedelta(days=300)).isoformat(),
            f"{root}/identified_by": "community",
            f"{root}/consent/consent_giver": "caregiver", f"{root}/consent/consent_services": "yes",
            f"{root}/consent/consent_share_partner": "yes", f"{root}/consent/consent_reporting": "yes",
            f"{root}/consent/consent_photo": "no", f"{root}/consent/immediate_danger": "no",
            f"{root}/identity/child_given_name": "Kanku", f"{root}/identity/child_family_name": "Walker",
            f"{root}/identity/sex": "female", f"{root}/identity/dob_known": "no",
            f"{root}/identity/age_estimated_years": 14, f"{root}/identity/age_basis": "caregiver_statement",
            f"{root}/identity/caregiver_relation": "mother", f"{root}/identity/caregiver_phone": "+243970111222",
            f"{root}/work/activities": ["carrying_ore", "washing_ore"], f"{root}/work/forced_or_trafficked": ["none"],
            f"{root}/needs_group/risk_level": "high"}
    with httpx.Client(base_url=base, auth=auth, timeout=30) as http:
        iid = f"uuid:{uuid.uuid4()}"
        r = http.post("/api/v1/sync/batches", json={"items": [{"instance_id": iid, "form_id": "child_case_intake",
                                                               "data": data}]})
        assert r.status_code == 200 and r.json()["results"][0]["status"] == "created", r.text
        cases = http.get("/api/v1/cases", params={"status": "submitted", "limit": 1}).json()["cases"]
    return cases[0]["code"]


def take(page, label: str, **fields: str) -> None:  # noqa: ANN001
    """Open the step called ``label`` on the case page, fill its fields, submit it."""
    step = page.locator("details.step", has=page.locator(f"summary:text-is('{label}')"))
    if step.count():
        step.locator("summary").click()
        for name, value in fields.items():
            box = step.locator(f"[name={name}]")
            if box.evaluate("e => e.tagName") == "SELECT":
                box.select_option(value)
            else:
                box.fill(value)
        step.locator("button[type=submit]").click()
    else:
        page.locator("form.step button", has_text=re.compile(f"^{re.escape(label)}$")).click()
    page.wait_for_load_state()


def state(page) -> str:  # noqa: ANN001
    return page.locator(".case-badges .state").inner_text()


@pytest.mark.browser
@pytest.mark.parametrize("owner", sorted(NGOS))
def test_a_caseworker_walks_a_new_case_from_submitted_to_closed(web, owner):
    second, other = NGOS[owner]
    code = submit_intake(web, owner)
    cw = web.sign_in(owner, lang="en")
    cw.goto(web.url(f"/cases?q={code}"))
    assert cw.locator(f"table.cases a:text-is('{code}')").count() == 1
    web.check(cw, "list-en")

    # the coordinator verifies and refers to the caseworker's NGO
    co = web.sign_in("coord", lang="en")
    co.goto(web.url(f"/cases/{code}"))
    assert state(co) == "Submitted"
    take(co, "Verify", risk_level="high")
    assert state(co) == "Verified"
    own_org = co.locator("#refer-organisation option", has_text="Kipaji" if owner == "cw_kipaji" else "Nuru")
    take(co, "Refer to a partner NGO", organisation=own_org.get_attribute("value"))
    assert state(co) == "Referred"

    # the caseworker accepts, reveals the identity (audited) and submits the plan
    cw.goto(web.url(f"/cases/{code}"))
    take(cw, "Accept the case")
    assert state(cw) == "Accepted"
    cw.fill("#identity-reason", "visit to the family")
    cw.click("#identity button[type=submit]")
    assert "Kanku" in cw.locator("#identity").inner_text()
    take(cw, "Submit the case plan for approval")
    assert "Waiting for approval by another person" in cw.locator("#steps").inner_text()
    assert cw.locator("button:text-is('Approve the case plan')").count() == 0
    web.check(cw, "case-waiting-en")

    # the second caseworker of the same NGO sends it back once, then approves (four eyes)
    cw2 = web.sign_in(second, lang="fr")
    cw2.goto(web.url(f"/cases/{code}"))
    take(cw2, "Renvoyer le plan de prise en charge", reason="ajouter une formation professionnelle")
    assert state(cw2) == "Évaluation"
    cw.goto(web.url(f"/cases/{code}"))
    take(cw, "Submit the case plan for approval")
    cw2.goto(web.url(f"/cases/{code}"))
    web.check(cw2, "case-approver-fr")
    take(cw2, "Approuver le plan de prise en charge")
    assert state(cw2) == "En services"

    # the coordinator transfers the case; the other NGO accepts it, the first loses sight of it
    co.goto(web.url(f"/cases/{code}"))
    target = co.locator("#transfer-organisation option", has_text="Nuru" if owner == "cw_kipaji" else "Kipaji")
    take(co, "Transfer to another NGO", organisation=target.get_attribute("value"))
    assert state(co) == "Transferred"
    assert cw.goto(web.url(f"/cases/{code}")).status == 404
    receiver = web.sign_in(other, lang="en")
    receiver.goto(web.url(f"/cases/{code}"))
    take(receiver, "Accept the case")
    assert state(receiver) == "Accepted"
    assert cw.goto(web.url(f"/cases/{code}")).status == 404

    # the receiving NGO serves and follows the child: plan (approved by the coordinator), a service,
    # a refused step with its reason beside the field, two follow-ups where the child was not found,
    # a change of consent, then a closure request the coordinator approves
    take(receiver, "Submit the case plan for approval")
    co.goto(web.url(f"/cases/{code}"))
    take(co, "Approve the case plan")
    receiver.goto(web.url(f"/cases/{code}"))
    receiver.click("#services summary")
    receiver.select_option("#service-service_type", "education")
    receiver.select_option("#service-implemented", "yes")
    receiver.click("#services button[type=submit]")
    receiver.wait_for_load_state()
    assert state(receiver) == "Monitoring"
    assert "Education" in receiver.locator("#services table").inner_text()
    take(receiver, "Request closure", reason="lost_to_follow_up")
    assert "at least two follow-ups where the child was not found" in receiver.locator("#e-request_closure-reason").inner_text()
    assert receiver.locator("#request_closure-reason").input_value() == "lost_to_follow_up"
    web.check(receiver, "case-refused-en")
    for days in (60, 20):
        receiver.click("#followups summary")
        receiver.fill("#followup-observed_on", (date.today() - timedelta(days=days)).isoformat())
        receiver.select_option("#followup-child_found", "no")
        receiver.click("#followups button[type=submit]")
        receiver.wait_for_load_state()
    assert receiver.locator("#followups tbody tr").count() == 2
    receiver.click("#consent summary")
    receiver.select_option("#consent-purpose", "photo")
    receiver.select_option("#consent-given", "no")
    receiver.fill("#consent-reason", "caregiver asked")
    receiver.click("#consent button[type=submit]")
    receiver.wait_for_load_state()
    take(receiver, "Request closure", reason="lost_to_follow_up")
    assert "Waiting for approval by another person" in receiver.locator("#steps").inner_text()
    web.check(receiver, "case-en")
    co.goto(web.url(f"/cases/{code}"))
    take(co, "Approve the closure")
    assert state(co) == "Closed"

    # the timeline tells who did what, when and why; the page matches the API
    receiver.goto(web.url(f"/cases/{code}"))
    timeline = receiver.locator("#timeline").inner_text()
    for words in ("Approve the closure", "Transfer to another NGO", "Send the case plan back", second,
                  "ajouter une formation professionnelle", "Consent changed"):
        assert words in timeline
    api = api_json(receiver, f"/api/v1/cases/{code}")
    assert api["status"] == "closed" and api["closure_reason"] == "lost_to_follow_up"
    assert len(api["followups"]) == 2 and api["services"][0]["type"] == "education"
    web.check(receiver, "case-closed-en")
    cw2.goto(web.url(f"/cases/{code}"))  # the first NGO does not see it any more
    assert "404" in cw2.title() or cw2.locator("h1").inner_text() != code

    # the identity reveal is in the audit log
    admin = web.sign_in("admin", lang="en")
    audit = api_json(admin, "/api/v1/audit?action=case.read_identity&limit=500")
    rows = audit if isinstance(audit, list) else audit.get("entries") or audit.get("items") or audit.get("rows")
    assert any(r.get("object_id") == code for r in rows), audit


@pytest.mark.browser
def test_the_case_pages_in_french_on_a_phone(web):
    cw = web.sign_in("cw_nuru", lang="fr")
    cw.goto(web.url("/cases"))
    assert cw.locator("h1").inner_text() == "Dossiers"
    web.check(cw, "list-fr")
    cw.goto(web.url("/cases?overdue=1"))
    first = cw.locator("table.cases a.code").first
    if first.count():
        first.click()
        cw.wait_for_load_state()
        web.check(cw, "case-fr")
    co = web.sign_in("coord", lang="fr")
    co.goto(web.url("/cases"))
    assert co.locator("table.cases tbody tr").count() > cw.locator("table.cases tbody tr").count()
    web.check(co, "list-coordinator-fr")
    other = api_json(web.sign_in("cw_kipaji", lang="fr"), "/api/v1/cases?limit=1")["cases"][0]["code"]
    assert cw.goto(web.url(f"/cases/{other}")).status == 404


def test_the_work_list_knows_the_referral_deadlines_and_the_follow_ups_due(app, kit, world):
    urgent = kit.intake(world.caseworker_b, risk_level="high").code
    usual = kit.intake(world.caseworker_b, risk_level="low").code
    served = kit.intake(world.caseworker_b).code
    with signed_in(app, "coord") as co:
        for code in (urgent, usual, served):
            step(co, code, "verify")
            step(co, code, "refer", organisation=str(world.ngo_a.id))
    with signed_in(app, "cw_a") as cw:
        for action in ("accept", "submit_plan"):
            step(cw, served, action)
    with signed_in(app, "coord") as co:
        step(co, served, "approve_plan")

    def needs(days: int) -> dict[str, list[str]]:
        with session_scope(world.engine) as s:
            items = reading.worklist(s, actor=Actor(user=world.caseworker_a.user), now=utcnow() + timedelta(days=days))
            return {i.case.code: i.needs for i in items}

    assert needs(0)[urgent] == ["incoming"] and needs(0)[served] == []
    assert needs(3)[urgent] == ["referral_overdue", "incoming"] and needs(3)[usual] == ["incoming"]
    assert "referral_overdue" in needs(8)[usual]
    assert needs(31)[served] == ["followup_due"]
    with signed_in(app, "cw_a") as cw:
        r = post(cw, f"/cases/{served}/followups", {"observed_on": (date.today() + timedelta(days=20)).isoformat(),
                                                    "child_found": "yes", "in_hazardous_work": "no",
                                                    "in_school_or_training": "yes"})
        assert r.status_code == 303
    assert needs(31)[served] == [] and needs(51)[served] == ["followup_due"]


def test_a_coordinator_merges_a_duplicate_from_its_page(app, kit, world):
    original = kit.intake(world.caseworker_a).code
    copy = kit.intake(world.caseworker_a, child_given_name="Mwambaa").code
    with signed_in(app, "coord") as co:
        refused = post(co, f"/cases/{copy}/merge", {"into": copy})
        assert refused.status_code == 422 and 'id="e-merge-into"' in refused.text
        assert f'value="{copy}"' in refused.text  # what was typed stays
        assert post(co, f"/cases/{copy}/merge", {"into": original, "reason": "same child, same caregiver"}
                    ).status_code == 303
        page = co.get(f"/cases/{copy}")
        assert "same child, same caregiver" in page.text
        assert "merged_duplicate" in page.text and f'href="/cases/{original}"' in page.text
        assert co.get("/cases?page=x&state=merged_duplicate").status_code == 200
    with signed_in(app, "cw_a") as cw:  # merging is a coordinator's decision
        assert post(cw, f"/cases/{original}/merge", {"into": copy}).status_code == 403


def test_the_revealed_identity_shows_the_photo_through_the_case_api(app, kit, world, tmp_path):
    sub = kit.submit(world.caseworker_a, "child_case_intake",
                     eligible_answers(consent_photo="yes", child_photo="child.jpg"), files=[photo_file(tmp_path)])
    code = kit.case_of(sub).code
    with signed_in(app, "cw_a") as cw:
        shown = post(cw, f"/cases/{code}/identity", {"reason": "check it is the same child"})
        src = f"/api/v1/cases/{code}/photos/child.jpg"
        assert f'src="{src}"' in shown.text
        photo = cw.get(src)
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
        # withdrawing consent to photos from the page erases them at once
        assert post(cw, f"/cases/{code}/consent", {"purpose": "photo", "given": "no"}).status_code == 303
        assert cw.get(src).status_code == 403
        assert 'src="/api/v1/cases/' not in post(cw, f"/cases/{code}/identity", {"reason": "again"}).text


def test_a_caseworker_declines_a_referral_with_a_reason(app, kit, world):
    code = kit.intake(world.caseworker_b).code
    with signed_in(app, "coord") as co:
        step(co, code, "verify")
        step(co, code, "refer", organisation=str(world.ngo_a.id))
    with signed_in(app, "cw_a") as cw:
        page = cw.get(f"/cases/{code}")
        assert 'value="accept"' in page.text and 'id="decline-reason"' in page.text
        refused = step(cw, code, "decline", expect=422, reason="  ")
        assert 'id="e-decline-reason"' in refused.text
        step(cw, code, "decline", reason="no caseworker free in that area")
        assert cw.get(f"/cases/{code}").status_code == 404  # no longer theirs
    with signed_in(app, "coord") as co:
        page = co.get(f"/cases/{code}")
        assert "no caseworker free in that area" in page.text and 'value="refer"' in page.text

