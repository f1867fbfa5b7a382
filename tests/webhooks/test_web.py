"""/webhooks in Chromium against the demo server: the admin adds an endpoint (its secret shown
once), a tablet's visit reaches the real receiver signed, the page shows the delivery, and the
admin sends it again."""

from __future__ import annotations

import time

import pytest

from tests.browser import send_visit_with_photo
from webhooks import signing


@pytest.mark.browser
def test_an_admin_adds_an_endpoint_sees_a_visit_delivered_and_sends_it_again(web, receiver):
    page = web.sign_in("admin", lang="fr")
    page.goto(web.url("/webhooks"))
    assert page.locator("h1").inner_text() == "Webhooks"

    # a refused address is shown beside the field, with what was typed
    page.fill("#f-url", "ftp://partner.example.org/in")
    page.evaluate("document.querySelector('#f-url').type = 'text'")  # let the server refuse it, not the browser
    page.get_by_label("Nouvelle soumission").check()
    page.get_by_role("button", name="Ajouter le destinataire").click()
    assert "http:// ou https://" in page.locator("#e-url").inner_text()
    assert page.get_by_label("Nouvelle soumission").is_checked()

    page.fill("#f-url", receiver.url + "/asm")
    page.select_option("#f-form", "asm_site_visit")
    page.get_by_role("button", name="Ajouter le destinataire").click()
    secret = page.locator("code.secret").inner_text()
    assert secret.startswith("whsec_")
    web.check(page, "webhooks-added")

    send_visit_with_photo(web.server.url, "monitor1")
    (request,) = receiver.wait_for(1)
    assert signing.verify(secret, request.headers[signing.HEADER], request.body, now=int(time.time()))
    assert request.json["form"] == "asm_site_visit"

    page.goto(web.url("/webhooks"))
    while page.locator("table.deliveries .badge.ok").count() == 0:  # the worker records the answer just after
        page.wait_for_timeout(200)
        page.reload()
    assert page.locator("table.deliveries .badge.ok").first.inner_text() == "Livré"
    assert secret not in page.content()
    page.get_by_role("button", name="Renvoyer").first.click()
    assert "remis en file" in page.locator(".notice").inner_text()
    receiver.wait_for(2)
    assert receiver.requests[1].body == request.body
    web.check(page, "webhooks")

    # leave the shared demo server as it was
    endpoint_id = page.locator("form[action$='/active']").first.get_attribute("action").split("/")[2]
    deleted = page.context.request.delete(web.url(f"/api/v1/webhooks/{endpoint_id}"),
                                          headers={"Origin": web.server.url})
    assert deleted.status == 204
