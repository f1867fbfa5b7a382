"""Credentials over an account's life: what a password reset, a deactivation and "sign out
everywhere" end, who may create, list and revoke API tokens and devices (issue 9, findings 7 and 8).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app import accounts
from app.db import session_scope
from app.errors import Forbidden
from app.identity import Actor
from app.models import ApiToken, AuditLog, Device
from tests.conftest import PASSWORD


@pytest.fixture
def browser(app, world):
    """A second client holding the monitor's web session cookie."""
    with TestClient(app) as c:
        assert c.post("/api/v1/login", json={"username": "monitor", "password": PASSWORD}).status_code == 200
        assert c.get("/api/v1/me").status_code == 200
        yield c


def make_device(client, person, name: str = "tablet-m") -> str:
    created = client.post("/api/v1/devices", json={"name": name}, headers=person.basic)
    assert created.status_code == 201, created.text
    return created.json()["token"]


def device_works(client, token: str) -> bool:
    return client.get(f"/key/{token}/formList").status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def revocations(engine) -> list[tuple[str, str | None, str | None]]:
    with session_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action.in_(["token.revoke", "device.revoke"])).order_by(AuditLog.id))
        return [(r.action, r.actor_label, r.details.get("reason")) for r in rows]


# -- finding 7: a reset or deactivation ends what the old password made ------------------------


def test_password_reset_revokes_api_tokens_and_web_sessions_but_not_devices(client, browser, world, engine):
    """Issue 9 finding 7: API tokens kept working after a password reset."""
    device = make_device(client, world.monitor)
    script = client.post("/api/v1/tokens", json={"name": "script"}, headers=world.monitor.basic).json()["token"]
    reset = client.patch("/api/v1/users/monitor", json={"password": "rotated-Password-1"}, headers=world.admin.bearer)
    assert reset.status_code == 200
    for token in (world.monitor.token, script):
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert browser.get("/api/v1/me").status_code == 401
    assert device_works(client, device)  # tablets keep syncing: their token never depended on the password
    assert client.get("/api/v1/me", auth=("monitor", "rotated-Password-1")).status_code == 200
    assert revocations(engine) == [("token.revoke", "admin", "password_change")] * 2
    with session_scope(engine) as s:
        change = s.exec(select(AuditLog).where(AuditLog.action == "user.password_change")).one()
        assert change.details == {"username": "monitor", "sessions_ended": 1, "tokens_revoked": 2, "devices_revoked": 0}


def test_deactivation_revokes_tokens_devices_and_sessions_for_good(client, browser, world, engine):
    """Issue 9 finding 7: reactivation revived tokens and devices. Now they stay revoked."""
    device = make_device(client, world.monitor)
    assert client.patch("/api/v1/users/monitor", json={"active": False}, headers=world.admin.bearer).status_code == 200
    assert client.patch("/api/v1/users/monitor", json={"active": True}, headers=world.admin.bearer).status_code == 200
    assert client.get("/api/v1/me", headers=world.monitor.bearer).status_code == 401
    assert not device_works(client, device)
    assert browser.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=world.monitor.basic).status_code == 200  # the person is back, not the keys
    with session_scope(engine) as s:
        assert all(t.revoked_at for t in s.exec(select(ApiToken).where(ApiToken.user_id == world.monitor.user.id)))
        assert all(d.revoked_at for d in s.exec(select(Device).where(Device.user_id == world.monitor.user.id)))
    assert revocations(engine) == [("token.revoke", "admin", "deactivation"), ("device.revoke", "admin", "deactivation")]


# -- finding 7: admins list and revoke anybody's tokens and devices ----------------------------


def test_admin_lists_and_revokes_a_users_api_tokens(client, world, engine):
    listed = client.get("/api/v1/users/monitor/tokens", headers=world.admin.bearer)
    assert [(t["name"], t["revoked_at"]) for t in listed.json()] == [("tests", None)]
    assert "token" not in listed.json()[0]
    token_id = listed.json()[0]["id"]
    assert client.delete(f"/api/v1/users/monitor2/tokens/{token_id}", headers=world.admin.bearer).status_code == 404
    revoked = client.delete(f"/api/v1/users/monitor/tokens/{token_id}", headers=world.admin.bearer)
    assert revoked.json() == {"id": token_id, "revoked": True}
    assert client.get("/api/v1/me", headers=world.monitor.bearer).status_code == 401
    assert client.get("/api/v1/users/monitor/tokens", headers=world.admin.bearer).json()[0]["revoked_at"] is not None
    assert revocations(engine) == [("token.revoke", "admin", None)]


def test_admin_lists_and_revokes_a_users_devices(client, world, engine):
    device = make_device(client, world.caseworker_a, "tablet-cw")
    listed = client.get("/api/v1/users/cw_a/devices", headers=world.admin.bearer).json()
    assert [(d["name"], d["revoked_at"]) for d in listed] == [("tablet-cw", None)]
    assert client.delete("/api/v1/users/monitor/devices/tablet-cw", headers=world.admin.bearer).status_code == 404
    assert client.delete("/api/v1/users/cw_a/devices/tablet-cw", headers=world.admin.bearer).json()["revoked_at"]
    assert not device_works(client, device)
    assert revocations(engine) == [("device.revoke", "admin", None)]


@pytest.mark.parametrize("who", ["coordinator", "monitor", "caseworker_b"])
def test_only_admins_see_or_revoke_other_peoples_credentials(client, world, who):
    headers = getattr(world, who).bearer
    for method, path in (("GET", "/api/v1/users/cw_a/tokens"), ("DELETE", "/api/v1/users/cw_a/tokens/1"),
                         ("GET", "/api/v1/users/cw_a/devices"), ("DELETE", "/api/v1/users/cw_a/devices/x")):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 403 and response.json()["error"]["code"] == "auth.forbidden"


def test_unknown_user_in_credential_routes_is_404(client, world):
    assert client.get("/api/v1/users/ghost/tokens", headers=world.admin.bearer).json()["error"]["code"] == "user.not_found"


# -- finding 7: sign out everywhere ------------------------------------------------------------


def test_sign_out_everywhere_ends_sessions_and_tokens_and_keeps_devices(client, browser, world, engine):
    """Issue 9 finding 7: every person can end all their sessions and tokens at once."""
    device = make_device(client, world.monitor)
    client.post("/api/v1/tokens", json={"name": "laptop"}, headers=world.monitor.bearer)
    response = client.post("/api/v1/me/sign-out-everywhere", json={}, headers=world.monitor.bearer)
    assert response.status_code == 200, response.text
    assert response.json() == {"sessions_ended": 1, "tokens_revoked": 2, "devices_revoked": 0, "devices_kept": 1}
    assert browser.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=world.monitor.bearer).status_code == 401
    assert device_works(client, device)
    assert client.get("/api/v1/me", headers=world.monitor2.bearer).status_code == 200  # nobody else
    with session_scope(engine) as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "auth.sign_out_everywhere")).one()
        assert (entry.actor_label, entry.details["tokens_revoked"]) == ("monitor", 2)


def test_sign_out_everywhere_may_revoke_devices_too(client, world):
    device = make_device(client, world.monitor)
    response = client.post("/api/v1/me/sign-out-everywhere", json={"devices": True}, headers=world.monitor.basic)
    assert response.json() == {"sessions_ended": 0, "tokens_revoked": 1, "devices_revoked": 1, "devices_kept": 0}
    assert not device_works(client, device)
    assert client.get("/api/v1/me", headers=world.monitor.basic).status_code == 200  # the password still works


def test_sign_out_everywhere_from_the_browser_needs_same_origin(browser):
    assert browser.post("/api/v1/me/sign-out-everywhere", json={}, headers={"Origin": "http://evil.example"}).status_code == 403
    response = browser.post("/api/v1/me/sign-out-everywhere", json={}, headers={"Origin": "http://testserver"})
    assert response.json()["sessions_ended"] == 1
    assert browser.get("/api/v1/me").status_code == 401


def test_a_device_token_cannot_sign_its_user_out(client, world):
    device = make_device(client, world.monitor)
    assert client.post("/api/v1/me/sign-out-everywhere", json={}, headers=bearer(device)).status_code == 403


# -- finding 8: tokens and devices are made by their owner only -------------------------------


def test_an_admin_cannot_create_credentials_for_somebody_else(session, world):
    """Issue 9 finding 8: an admin registered a device for a caseworker and acted as them."""
    admin = Actor(user=accounts.get_user(session, "admin"))
    caseworker = accounts.get_user(session, "cw_a")
    with pytest.raises(Forbidden) as caught:
        accounts.create_device(session, name="tablet-for-cw", user="cw_a", actor=admin)
    assert caught.value.code == "device.owner_only"
    with pytest.raises(Forbidden) as caught:
        accounts.create_api_token(session, user=caseworker, name="as-cw", actor=admin)
    assert caught.value.code == "token.owner_only"


def test_devices_and_tokens_created_through_the_api_belong_to_the_caller(client, world):
    created = client.post("/api/v1/devices", json={"name": "mine", "user": "admin"}, headers=world.admin.basic)
    assert created.status_code == 201
    assert created.json()["user_id"] == world.admin.user.id
    refused = client.post("/api/v1/devices", json={"name": "theirs", "user": "cw_a"}, headers=world.admin.basic)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "device.owner_only"
