"""The submissions pages (issue 11): the list and one submission, with review; by role, in both
languages; the browser tests send a visit with a photo through the OpenRosa API like a tablet."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.browser import api_json, send_visit_with_photo
from tests.conftest import PASSWORD
from tests.factories import batch_item, new_instance_id, photo, sha256, visit_data

SAME_ORIGIN = {"Origin": "http://testserver"}


def signed_in(app, person) -> TestClient:  # noqa: ANN001
    """A browser-like client signed in through the web login form."""
    client = TestClient(app)
    response = client.post("/login", data={"username": person.username, "password": PASSWORD},
                           headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def sent_visit(client, person, **kwargs) -> str:  # noqa: ANN001
    iid = new_instance_id()
    body = photo(3)
    item = batch_item(iid, data=visit_data(photo_name="s.jpg", **kwargs), files={"s.jpg": body})
    response = client.post("/api/v1/sync/batches", json={"items": [item]}, headers=person.bearer)
    assert response.status_code == 200, response.text
    client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=person.bearer)
    return iid


# -- route-level behaviour (TestClient) ----------------------------------------------------


def test_the_list_shows_a_monitor_only_their_own_visits(app, client, world, visit_form):
    mine = sent_visit(client, world.monitor)
    theirs = sent_visit(client, world.monitor2)
    page = signed_in(app, world.monitor).get("/submissions")
    assert page.status_code == 200
    assert mine in page.text and theirs not in page.text
    coord = signed_in(app, world.coordinator).get("/submissions")
    assert mine in coord.text and theirs in coord.text and f"{sha256(photo(3))}?size=thumb" in coord.text


def test_filters_narrow_the_list_and_a_bad_date_is_shown_beside_its_field(app, client, world, visit_form):
    mine = sent_visit(client, world.monitor)
    other = sent_visit(client, world.monitor2)
    coord = signed_in(app, world.coordinator)
    by_submitter = coord.get("/submissions", params={"submitter": "monitor2"}).text
    assert other in by_submitter and mine not in by_submitter
    client.patch(f"/api/v1/submissions/{mine}/review", json={"state": "approved"}, headers=world.coordinator.bearer)
    approved = coord.get("/submissions", params={"review_state": "approved"}).text
    assert mine in approved and other not in approved
    assert mine in coord.get("/submissions", params={"mapped": "no", "form": "field_visit"}).text
    assert mine not in coord.get("/submissions", params={"attachments": "missing"}).text
    bad = coord.get("/submissions", params={"from": "yesterday", "page": "x"})
    assert bad.status_code == 422 and 'id="e-from"' in bad.text and 'value="yesterday"' in bad.text


def test_caseworkers_have_no_submissions_page_and_others_records_are_not_found(app, client, world, visit_form):
    iid = sent_visit(client, world.monitor)
    assert signed_in(app, world.caseworker_a).get("/submissions").status_code == 403
    assert signed_in(app, world.monitor2).get(f"/submissions/{iid}").status_code == 404
    assert signed_in(app, world.coordinator).get("/submissions/uuid:nope").status_code == 404
    assert TestClient(app).get("/submissions", follow_redirects=False).status_code == 303


def test_the_submission_page_shows_answers_photo_and_review_form_for_reviewers(app, client, world, visit_form):
    iid = sent_visit(client, world.monitor)
    coord = signed_in(app, world.coordinator)
    page = coord.get(f"/submissions/{iid}")
    assert page.status_code == 200
    assert "Workers seen" in page.text and "Photo of the site" in page.text and 'data-points="' in page.text
    assert f'action="/submissions/{iid}/review"' in page.text
    mine = signed_in(app, world.monitor).get(f"/submissions/{iid}")
    assert mine.status_code == 200 and "/review\"" not in mine.text


def test_a_review_through_the_page_is_listed_and_refusals_keep_what_was_typed(app, client, world, visit_form):
    iid = sent_visit(client, world.monitor)
    coord = signed_in(app, world.coordinator)
    done = coord.post(f"/submissions/{iid}/review", data={"state": "needs_review", "comment": "Wrong site?"},
                      headers=SAME_ORIGIN, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith(f"/submissions/{iid}")
    page = coord.get(done.headers["location"]).text
    assert "Wrong site?" in page and "coord" in page
    again = coord.post(f"/submissions/{iid}/review", data={"state": "needs_review", "comment": ""},
                       headers=SAME_ORIGIN)
    assert again.status_code == 422 and 'role="alert"' in again.text
    long = coord.post(f"/submissions/{iid}/review", data={"state": "", "comment": "x" * 2001}, headers=SAME_ORIGIN)
    assert long.status_code == 422 and "x" * 2001 in long.text
    monitor = signed_in(app, world.monitor).post(f"/submissions/{iid}/review", data={"state": "approved"},
                                                 headers=SAME_ORIGIN)
    assert monitor.status_code == 403
    listed = client.get(f"/api/v1/submissions/{iid}/comments", headers=world.admin.bearer).json()
    assert listed["review_state"] == "needs_review" and len(listed["items"]) == 1


def test_an_edited_record_shows_its_versions_and_the_older_one_says_it_was_replaced(app, client, world, visit_form):
    first = sent_visit(client, world.monitor)
    edit = new_instance_id()
    item = batch_item(edit, data=visit_data(workers=30), deprecated_id=first)
    assert client.post("/api/v1/sync/batches", json={"items": [item]}, headers=world.monitor.bearer).status_code == 200
    coord = signed_in(app, world.coordinator)
    newest = coord.get(f"/submissions/{edit}").text
    assert "Historique des modifications" in newest and f'href="/submissions/{first}"' in newest
    older = coord.get(f"/submissions/{first}").text
    assert f'href="/submissions/{edit}"' in older and "remplacée par une modification" in older
    listed = coord.get("/submissions").text
    assert edit in listed and f"/submissions/{first}\"" not in listed


# -- in a real browser over the demo data ----------------------------------------------------


@pytest.mark.browser
def test_a_visit_sent_by_a_tablet_is_listed_opened_and_reviewed(web):
    iid, code = send_visit_with_photo(web.server.url, "monitor1")

    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/submissions?submitter=monitor1"))
    row = page.locator("table.submissions tbody tr", has=page.locator(f"a[href='/submissions/{iid}']"))
    assert row.count() == 1
    assert row.locator(f"a[href='/sites/{code}']").count() == 1
    assert row.locator(".badge").inner_text() == "Received"
    thumb = row.locator("img.thumb")
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.evaluate("img => img.naturalWidth") <= 240
    web.check(page, "submissions")

    row.locator(f"a[href='/submissions/{iid}']").click()
    page.wait_for_url(re.compile(r"/submissions/uuid"))
    answers = page.locator("dl.answers")
    assert "Type of visit" in answers.inner_text() and "Unannounced" in answers.inner_text()
    assert "Cobalt (heterogenite), Copper (malachite)" in answers.inner_text()
    assert "Photos of the site #1" in answers.inner_text()
    page.wait_for_selector("#submission-map .leaflet-interactive")
    web.check(page, "submission")

    page.select_option("#f-state", "needs_review")
    page.fill("#f-comment", "The entrance photo does not show the pits.")
    page.click("form.review-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=review"))
    steps = page.locator("ol.review-steps").inner_text()
    assert "coord" in steps and "Received" in steps and "Has issues" in steps
    assert "The entrance photo does not show the pits." in steps
    assert api_json(page, f"/api/v1/submissions/{iid}")["review_state"] == "needs_review"
    web.check(page, "submission-reviewed")

    french = web.sign_in("coord", lang="fr")
    french.goto(web.url(f"/submissions/{iid}"))
    text = french.locator("main").inner_text()
    assert "Type de visite" in text and "Inopinée" in text and "À problèmes" in text
    web.check(french, "submission")
    french.goto(web.url("/submissions?review_state=needs_review"))
    assert french.locator(f"a[href='/submissions/{iid}']").count() == 1
    web.check(french, "submissions")


@pytest.mark.browser
def test_another_monitor_does_not_see_the_visit(web):
    iid, _ = send_visit_with_photo(web.server.url, "monitor1")
    owner = web.sign_in("monitor1")
    owner.goto(web.url("/submissions"))
    assert owner.locator(f"a[href='/submissions/{iid}']").count() == 1
    assert owner.locator("#f-submitter").count() == 0
    owner.goto(web.url(f"/submissions/{iid}"))
    assert owner.locator("form.review-form").count() == 0
    web.check(owner, "submission-own")

    other = web.sign_in("monitor2", lang="en")
    other.goto(web.url("/submissions"))
    assert other.locator(f"a[href='/submissions/{iid}']").count() == 0
    web.check(other, "submissions-other-monitor")
    response = other.goto(web.url(f"/submissions/{iid}"))
    assert response is not None and response.status == 404


@pytest.mark.browser
def test_a_demo_visit_with_photos_reads_well_for_an_administrator(web):
    page = web.sign_in("admin", lang="en")
    listed = api_json(page, "/api/v1/forms/asm_site_visit/submissions?limit=200")["items"]
    visit = max(listed, key=lambda i: (sum(a["received"] for a in i["attachments"]), len(i["data"])))
    page.goto(web.url(f"/submissions/{visit['instance_id']}"))
    assert page.locator("h1").inner_text() == "ASM site visit"
    assert page.locator(".gallery img").count() == sum(a["received"] for a in visit["attachments"]) > 0
    labels = page.locator("dl.answers dt").all_inner_texts()
    assert "Type of visit" in labels and not any(label.startswith("/") for label in labels)
    web.check(page, "demo-visit")
    page.goto(web.url("/submissions?page=2"))
    assert page.locator("nav.pager").inner_text().startswith("← Previous")
    page.wait_for_load_state("networkidle")
    weight = page.evaluate("""() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
        .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0)""")
    assert weight < 300_000, f"the first load of a list page weighs {weight} bytes"
    web.check(page, "page-2")
