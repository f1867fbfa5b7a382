"""The people and devices pages: who may see and change what (the JSON API's rules), refusals beside the
field, 404s; and, in real Chromium, an admin managing users and a monitor adding a tablet from its QR code."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from io import BytesIO

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from app import accounts
from app.collect import decode_settings
from app.db import session_scope
from app.demo import COORDINATOR_ORG
from app.models import AuditLog, Device, User
from app.timeutil import utcnow
from tests.app.factories import SAME_ORIGIN, login
from tests.browser import api_json


def signed_in(client: TestClient, username: str) -> TestClient:
    assert login(client, username).status_code == 303
    return client


def post(client: TestClient, path: str, data: dict | None = None):  # noqa: ANN201
    return client.post(path, data=data or {}, headers=SAME_ORIGIN, follow_redirects=False)


# -- who sees what ---------------------------------------------------------------------


def test_people_is_for_staff_only(client, world):
    signed_in(client, "cw_a")
    refused = client.get("/people")
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert client.get("/people/users/coord").status_code == 403
    assert 'href="/people"' not in client.get("/devices").text  # not in their menu either


def test_a_coordinator_reads_people_without_the_forms(client, world):
    signed_in(client, "coord")
    page = client.get("/people")
    assert page.status_code == 200
    assert "cw_a" in page.text and "NGO A" in page.text
    assert 'action="/people/users"' not in page.text and 'action="/people/organisations"' not in page.text
    detail = client.get("/people/users/monitor")
    assert detail.status_code == 200 and "/password" not in detail.text and "/active" not in detail.text
    assert post(client, "/people/organisations", {"name": "Sneaky", "kind": "ngo"}).status_code == 403
    assert post(client, "/people/users/monitor/active", {"active": "0"}).status_code == 403
    with session_scope(world.engine) as s:
        assert accounts.get_user(s, "monitor").active


def test_people_filters_and_bad_filters(client, world):
    signed_in(client, "admin")
    page = client.get(f"/people?organisation={world.ngo_a.id}&role=caseworker")
    assert "cw_a" in page.text and "cw_b" not in page.text and ">monitor<" not in page.text
    assert client.get("/people?organisation=abc").status_code == 422
    assert client.get("/people?organisation=999999").status_code == 404
    assert client.get("/people?role=king").status_code == 422
    assert client.get("/people/users/nobody").status_code == 404


# -- admin changes ---------------------------------------------------------------------


def test_admin_creates_a_user_weak_password_first(client, world, engine):
    signed_in(client, "admin")
    form = {"username": "monitor7", "full_name": "Mado Kalenga", "role": "monitor",
            "organisation": str(world.coord_org.id), "password": "password1"}
    refused = post(client, "/people/users", form)
    assert refused.status_code == 422
    assert 'id="e-password"' in refused.text and 'value="monitor7"' in refused.text
    assert 'value="Mado Kalenga"' in refused.text
    created = post(client, "/people/users", {**form, "password": "Kolwezi-cobalt-ridge-41"})
    assert created.status_code == 303 and created.headers["location"] == "/people/users/monitor7?done=created"
    with session_scope(engine) as s:
        user = accounts.get_user(s, "monitor7")
        assert user.role == "monitor" and user.organisation_id == world.coord_org.id
        assert s.exec(select(AuditLog).where(AuditLog.action == "user.create")).all()
    duplicate = post(client, "/people/users", {**form, "password": "Kolwezi-cobalt-ridge-41"})
    assert duplicate.status_code == 409 and 'id="e-username"' in duplicate.text


def test_a_caseworker_needs_an_ngo_and_an_organisation_must_be_chosen(client, world):
    signed_in(client, "admin")
    form = {"username": "cw_new", "role": "caseworker", "organisation": str(world.coord_org.id),
            "password": "Kolwezi-cobalt-ridge-41"}
    wrong_org = post(client, "/people/users", form)
    assert wrong_org.status_code == 422 and 'id="e-new-role"' in wrong_org.text
    no_org = post(client, "/people/users", {**form, "organisation": ""})
    assert no_org.status_code == 422 and 'id="e-new-organisation"' in no_org.text


def test_admin_creates_an_organisation_and_bad_names_are_refused(client, world):
    signed_in(client, "admin")
    done = post(client, "/people/organisations", {"name": "ONG Lumière", "kind": "ngo"})
    assert done.status_code == 303
    assert "ONG Lumière" in client.get(done.headers["location"]).text
    again = post(client, "/people/organisations", {"name": "ONG Lumière", "kind": "ngo"})
    assert again.status_code == 409 and 'id="e-name"' in again.text and 'value="ONG Lumière"' in again.text
    assert post(client, "/people/organisations", {"name": "a/b", "kind": "ngo"}).status_code == 422
    assert post(client, "/people/organisations", {"name": "Valid", "kind": "club"}).status_code == 422


def test_reset_and_deactivate_say_what_they_ended(client, world, engine):
    signed_in(client, "admin")
    weak = post(client, "/people/users/monitor2/password", {"password": "short"})
    assert weak.status_code == 422 and 'id="e-password"' in weak.text
    reset = post(client, "/people/users/monitor2/password", {"password": "Lubumbashi-kiosk-harbour-9"})
    assert reset.status_code == 303 and "tokens=1" in reset.headers["location"]
    shown = client.get(reset.headers["location"])
    assert "1 API token revoked" in shown.text or "1 jeton d’API révoqué" in shown.text
    with session_scope(engine) as s:
        device, _ = accounts.create_device(s, name="tab-m2", user="monitor2")
    off = post(client, "/people/users/monitor2/active", {"active": "0"})
    assert off.status_code == 303 and "devices=1" in off.headers["location"]
    with session_scope(engine) as s:
        assert not accounts.get_user(s, "monitor2").active
        assert accounts.get_device(s, "tab-m2").revoked_at is not None
    assert post(client, "/people/users/monitor2/active", {"active": "1"}).status_code == 303
    assert post(client, "/people/users/monitor2/active", {"active": "maybe"}).status_code == 422
    myself = post(client, "/people/users/admin/active", {"active": "0"})
    assert myself.status_code == 422
    assert client.get("/people/users/monitor2").status_code == 200  # audit table renders


def test_an_admin_resetting_their_own_password_stays_signed_in_here(client, world):
    signed_in(client, "admin")
    reset = post(client, "/people/users/admin/password", {"password": "Mutshatsha-lantern-copper-3"})
    assert reset.status_code == 303
    assert client.get("/people").status_code == 200  # a fresh session for this browser, as on /account
    assert client.get("/api/v1/me", headers=world.admin.bearer).status_code == 401  # the old token is revoked


def test_admin_revokes_a_users_device_only_through_that_user(client, world, engine):
    with session_scope(engine) as s:
        accounts.create_device(s, name="tab one", user="monitor")
    signed_in(client, "admin")
    assert post(client, "/people/users/monitor2/devices/tab%20one/revoke").status_code == 404
    assert post(client, "/people/users/monitor/devices/tab%20one/revoke").status_code == 303
    with session_scope(engine) as s:
        assert accounts.get_device(s, "tab one").revoked_at is not None


# -- devices ---------------------------------------------------------------------------


def test_a_monitor_adds_a_tablet_for_themselves_and_sees_the_qr_code(client, world, engine):
    signed_in(client, "monitor")
    page = post(client, "/devices", {"name": "tablet-likasi-01"})
    assert page.status_code == 201 and 'class="qr"' in page.text
    url = re.search(r'id="server-url">([^<]+)<', page.text).group(1)
    assert url.startswith("http://testserver/key/")
    with session_scope(engine) as s:
        device = accounts.get_device(s, "tablet-likasi-01")
        assert s.get(User, device.user_id).username == "monitor"
    again = post(client, "/devices", {"name": "tablet-likasi-01"})
    assert again.status_code == 409 and 'id="e-name"' in again.text and 'value="tablet-likasi-01"' in again.text
    assert post(client, "/devices", {"name": ""}).status_code == 422
    assert url not in client.get("/devices").text  # the token is shown once


def test_devices_are_mine_unless_admin_and_only_owner_or_admin_revokes(client, world, engine):
    with session_scope(engine) as s:
        accounts.create_device(s, name="tab-mine", user="monitor")
        old, _ = accounts.create_device(s, name="tab-theirs", user="monitor2")
        old.last_seen_at = utcnow() - timedelta(days=20)
    signed_in(client, "monitor")
    mine = client.get("/devices")
    assert "tab-mine" in mine.text and "tab-theirs" not in mine.text
    assert post(client, "/devices/tab-theirs/revoke").status_code == 404
    assert post(client, "/devices/tab-nothing/revoke").status_code == 404
    assert post(client, "/devices/tab-mine/revoke").status_code == 303
    client.cookies.clear()
    signed_in(client, "admin")
    everything = client.get("/devices")
    assert "tab-mine" in everything.text and "tab-theirs" in everything.text
    assert "badge warn" in everything.text  # no sync for 20 days
    stale = client.get("/devices?stale=1").text
    assert "tab-theirs" in stale and "tab-mine" not in stale  # revoked: not stale, just gone
    assert post(client, "/devices/tab-theirs/revoke").status_code == 303
    with session_scope(engine) as s:
        assert all(d.revoked_at for d in s.exec(select(Device)))


def test_pages_need_a_session(client, world):
    assert client.get("/devices", follow_redirects=False).headers["location"] == "/login?next=%2Fdevices"
    assert client.get("/people", follow_redirects=False).status_code == 303
    cross_site = client.post("/devices", data={"name": "x"}, headers={"Origin": "https://evil.example"},
                             follow_redirects=False)
    assert cross_site.status_code == 403


# -- in the browser --------------------------------------------------------------------


@pytest.mark.browser
def test_admin_creates_a_user_resets_the_password_and_deactivates(web):
    username = f"moniteur{uuid.uuid4().hex[:6]}"
    page = web.sign_in("admin")
    page.goto(web.url("/people"))
    assert page.locator("h1").inner_text() == "Personnes"
    web.check(page, "people")
    page.fill("#f-username", username)
    page.fill("#f-full_name", "Aline Mbuyi")
    page.select_option("#new-role", "monitor")
    page.select_option("#new-organisation", label=COORDINATOR_ORG)
    page.fill("#f-password", "password1")
    page.click("form.create-user button[type=submit]")
    assert page.locator("#e-password").is_visible()
    assert page.locator("#f-username").input_value() == username  # what was typed is kept
    assert page.locator("#f-full_name").input_value() == "Aline Mbuyi"
    assert page.locator("#new-organisation option:checked").inner_text() == COORDINATOR_ORG
    web.check(page, "people-refused")

    page.fill("#f-password", "Kambove-copper-sunrise-82")
    page.click("form.create-user button[type=submit]")
    page.wait_for_url(re.compile(f"/people/users/{username}"))
    assert page.locator("h1").inner_text().startswith("Aline Mbuyi")
    web.check(page, "user-created")

    page.fill("#f-password", "Likasi-river-lantern-57")
    page.click("form.reset-password button[type=submit]")
    page.wait_for_url(re.compile("done=password"))
    assert "0 jeton d’API révoqué" in page.locator("p.notice").inner_text()

    page.click("form.deactivate button[type=submit]")
    page.wait_for_url(re.compile("done=deactivated"))
    assert "désactivé" in page.locator("p.notice").inner_text()
    users = {u["username"]: u for u in api_json(page, "/api/v1/users")}
    assert users[username]["active"] is False
    assert page.locator("table.audit").inner_text().count("Désactivé") == 1
    web.check(page, "user-deactivated")

    page.goto(web.url("/devices"))
    assert page.locator("h2#list-title").inner_text().startswith("Toutes les tablettes")
    assert page.locator("table.devices a", has_text="monitor1").count() >= 1  # everybody's, with their owner
    web.check(page, "devices-admin")

    english = web.sign_in("admin", lang="en")
    english.goto(web.url(f"/people/users/{username}"))
    assert english.locator("form.reactivate").is_visible()
    web.check(english, "user-deactivated")
    english.goto(web.url("/people"))
    web.check(english, "people")


@pytest.mark.browser
def test_a_monitor_adds_a_tablet_scans_its_qr_code_then_revokes_it(web):
    name = f"tablette-{uuid.uuid4().hex[:6]}"
    page = web.sign_in("monitor1", lang="en")
    page.goto(web.url("/devices"))
    assert page.locator("h1").inner_text() == "Devices"
    web.check(page, "devices")
    page.fill("#f-name", name)
    page.click("form.add-device button[type=submit]")
    qr = page.locator("svg.qr")
    qr.wait_for()
    server_url = page.locator("#server-url").inner_text().strip()
    assert server_url.startswith(web.url("/key/"))
    image = Image.open(BytesIO(qr.screenshot()))
    decoded = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(decoded) == 1
    settings = decode_settings(decoded[0].text)
    assert settings["general"]["server_url"] == server_url
    assert settings["project"]["name"] == f"asmfield {name}"
    mine = [d for d in api_json(page, "/api/v1/devices") if d["name"] == name]
    assert len(mine) == 1 and mine[0]["revoked_at"] is None
    web.check(page, "device-added")

    page.goto(web.url("/devices"))
    row = page.locator("table.devices tr", has_text=name)
    row.locator("summary").click()
    assert name in row.locator("details.confirm p").inner_text()
    web.check(page, "device-revoke-confirm")
    row.locator("button.danger").click()
    page.wait_for_url(re.compile("done=revoked"))
    assert name in page.locator("p.notice").inner_text()
    assert [d for d in api_json(page, "/api/v1/devices") if d["name"] == name][0]["revoked_at"] is not None

    french = web.sign_in("monitor1")
    french.goto(web.url("/devices"))
    assert french.locator("h1").inner_text() == "Appareils"
    web.check(french, "devices")


@pytest.mark.browser
def test_coordinator_reads_people_and_a_caseworker_is_refused(web):
    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/people"))
    assert page.locator("table.people").is_visible()
    assert page.locator("form.create-user").count() == 0 and page.locator("form.create-org").count() == 0
    page.locator("table.people a", has_text="monitor1").click()
    page.wait_for_url(re.compile("/people/users/monitor1"))
    assert page.locator("form.reset-password").count() == 0 and page.locator("form.deactivate").count() == 0
    web.check(page, "user-read-only")
    page.goto(web.url("/people?role=caseworker"))
    assert "cw_kipaji" in page.locator("table.people").inner_text()
    assert "monitor1" not in page.locator("table.people").inner_text()
    web.check(page, "people-read-only")

    caseworker = web.sign_in("cw_kipaji")
    response = caseworker.goto(web.url("/people"))
    assert response.status == 403
    assert caseworker.locator("h1").inner_text() == "Non autorisé"
    assert caseworker.locator("nav.wide a[href='/people']").count() == 0
    web.check(caseworker, "people-forbidden")
