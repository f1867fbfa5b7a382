"""Every accounts route × every kind of caller: who is allowed, who is refused, and how.

Callers: the four roles (Basic or Bearer), a device token used as Bearer, and nobody.
Each route is one test over all callers, so a whole row of the access table reads together.
"""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
from sqlmodel import select

from app import accounts
from app.db import session_scope
from app.models import AuditLog

CALLERS = ("admin", "coordinator", "monitor", "caseworker", "device", "anonymous")
_names = itertools.count()


@pytest.fixture
def callers(world, engine) -> dict[str, dict[str, str]]:
    """Headers per caller; the device is a tablet of the monitor."""
    with session_scope(engine) as s:
        _, token = accounts.create_device(s, name="tablet-roles", user="monitor")
    headers = {role: world.person(role).bearer for role in ("admin", "coordinator", "monitor", "caseworker")}
    headers["device"] = {"Authorization": f"Bearer {token}"}
    headers["anonymous"] = {}
    return headers


def statuses(client, callers, method: str, path, body=None) -> dict[str, int]:
    """The status each caller gets; ``path``/``body`` may be callables of a fresh unique suffix."""
    found = {}
    for caller in CALLERS:
        n = next(_names)
        url = path(n) if callable(path) else path
        json_body = body(n) if callable(body) else body
        found[caller] = client.request(method, url, json=json_body, headers=callers[caller]).status_code
    return found


def expect(allowed: set[str], ok: int = 200, denied: int = 403) -> dict[str, int]:
    return {c: ok if c in allowed else (401 if c == "anonymous" else denied) for c in CALLERS}


ALL_PEOPLE = {"admin", "coordinator", "monitor", "caseworker"}


def test_health_is_open_to_everybody(client, callers):
    assert statuses(client, callers, "GET", "/healthz") == dict.fromkeys(CALLERS, 200)
    assert statuses(client, callers, "GET", "/readyz") == dict.fromkeys(CALLERS, 200)


def test_me(client, callers):
    assert statuses(client, callers, "GET", "/api/v1/me") == expect(ALL_PEOPLE)


def test_list_organisations(client, callers):
    assert statuses(client, callers, "GET", "/api/v1/organisations") == expect({"admin", "coordinator"})


def test_create_organisation(client, callers):
    found = statuses(client, callers, "POST", "/api/v1/organisations", lambda n: {"name": f"NGO {n}", "kind": "ngo"})
    assert found == expect({"admin"}, ok=201)


def test_list_users(client, callers):
    assert statuses(client, callers, "GET", "/api/v1/users") == expect({"admin", "coordinator"})


def test_create_user(client, callers):
    body = lambda n: {"username": f"new{n}", "password": "fresh-Password-99", "role": "monitor",  # noqa: E731
                      "organisation": "Coordination"}
    assert statuses(client, callers, "POST", "/api/v1/users", body) == expect({"admin"}, ok=201)


def test_update_user(client, callers):
    found = statuses(client, callers, "PATCH", "/api/v1/users/monitor2", {"active": True})
    assert found == expect({"admin"})


def test_list_devices_shows_all_to_an_admin_and_own_to_others(client, callers, world):
    assert statuses(client, callers, "GET", "/api/v1/devices") == expect(ALL_PEOPLE)
    assert [d["name"] for d in client.get("/api/v1/devices", headers=callers["admin"]).json()] == ["tablet-roles"]
    assert [d["name"] for d in client.get("/api/v1/devices", headers=callers["monitor"]).json()] == ["tablet-roles"]
    assert client.get("/api/v1/devices", headers=callers["coordinator"]).json() == []


@pytest.fixture
def signed_in(callers, world) -> dict[str, dict[str, str]]:
    """``callers`` with people signed in by password (Basic) instead of an API token."""
    return callers | {role: world.person(role).basic for role in ("admin", "coordinator", "monitor", "caseworker")}


def test_create_device_for_yourself(client, signed_in):
    found = statuses(client, signed_in, "POST", "/api/v1/devices", lambda n: {"name": f"tablet-{n}"})
    assert found == expect(ALL_PEOPLE, ok=201)


def test_an_api_token_cannot_register_a_device(client, callers):
    """Red-team replay of issue 9: a stolen API token minted a device token, which a password reset
    (revoking the API token) left alive. A device needs the password or a web session."""
    found = statuses(client, callers, "POST", "/api/v1/devices", lambda n: {"name": f"tablet-{n}"})
    assert found == expect(set())
    response = client.post("/api/v1/devices", json={"name": "t-stolen"}, headers=callers["monitor"])
    assert response.status_code == 403 and response.json()["error"]["code"] == "auth.password_required"
    assert "t-stolen" not in [d["name"] for d in client.get("/api/v1/devices", headers=callers["admin"]).json()]


def test_nobody_registers_a_device_for_somebody_else(client, signed_in, callers):
    """Issue 9 finding 8: a device acts as its owner, so not even an admin may make one for another user."""
    body = lambda n: {"name": f"tablet-{n}", "user": "monitor2"}  # noqa: E731
    assert statuses(client, signed_in, "POST", "/api/v1/devices", body) == expect(set())
    response = client.post("/api/v1/devices", json={"name": "t-x", "user": "cw_a"}, headers=signed_in["admin"])
    assert response.json()["error"]["code"] == "device.owner_only"
    assert client.get("/api/v1/users/cw_a/devices", headers=callers["admin"]).json() == []


def test_revoke_device_admin_or_owner(client, callers):
    found = {}
    for caller in CALLERS:
        with session_scope(client.app.state.engine) as s:
            name = f"tablet-victim-{next(_names)}"
            accounts.create_device(s, name=name, user="monitor")
        found[caller] = client.delete(f"/api/v1/devices/{name}", headers=callers[caller]).status_code
    # Not the owner: 404, so device names of other users are not disclosed.
    assert found == {"admin": 200, "coordinator": 404, "monitor": 200, "caseworker": 404, "device": 403,
                     "anonymous": 401}


def test_tokens(client, callers):
    assert statuses(client, callers, "POST", "/api/v1/tokens", {"name": "script"}) == expect(ALL_PEOPLE, ok=201)
    assert statuses(client, callers, "GET", "/api/v1/tokens") == expect(ALL_PEOPLE)


def test_revoke_token(client, callers, world):
    found = {}
    for caller in CALLERS:
        own = client.post("/api/v1/tokens", json={}, headers=callers["monitor" if caller == "device" else caller]
                          if caller != "anonymous" else callers["admin"]).json()
        found[caller] = client.delete(f"/api/v1/tokens/{own['id']}", headers=callers[caller]).status_code
    assert found == {"admin": 200, "coordinator": 200, "monitor": 200, "caseworker": 200, "device": 403,
                     "anonymous": 401}


def test_audit_log(client, callers):
    assert statuses(client, callers, "GET", "/api/v1/audit") == expect({"admin"})


def test_login_and_logout_need_no_credentials(client, callers):
    assert client.post("/api/v1/logout").status_code == 200
    assert client.post("/api/v1/login", json={"username": "admin", "password": "x"}).status_code == 401


# -- what the routes answer --------------------------------------------------------------


def test_me_tells_role_and_organisation(client, world):
    body = client.get("/api/v1/me", headers=world.caseworker_a.basic).json()
    assert body == {"id": world.caseworker_a.user.id, "username": "cw_a", "role": "caseworker",
                    "organisation": {"id": world.ngo_a.id, "name": "NGO A", "kind": "ngo"}, "via": "basic"}


def test_create_user_then_log_in_as_them(client, world):
    body = {"username": "monitor3", "password": "Lubumbashi-puits-2026", "role": "monitor",
            "organisation": world.coord_org.id}
    created = client.post("/api/v1/users", json=body, headers=world.admin.bearer)
    assert created.status_code == 201
    assert created.json()["role"] == "monitor" and "password" not in created.text
    assert client.get("/api/v1/me", auth=("monitor3", "Lubumbashi-puits-2026")).json()["username"] == "monitor3"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"role": "chief"}, 422, "user.invalid_role"),
        ({"username": "monitor"}, 409, "user.duplicate"),
        ({"password": ""}, 422, "user.password_empty"),
        ({"password": "short"}, 422, "user.password_weak"),
        ({"password": "password"}, 422, "user.password_weak"),
        ({"password": "aaaaaaaaaaaaaaaa"}, 422, "user.password_weak"),
        ({"password": "Password1!"}, 422, "user.password_weak"),  # issue 9 finding 14
        ({"password": "iloveyou12"}, 422, "user.password_weak"),
        ({"username": "newbie", "password": "newbie-newbie-1"}, 422, "user.password_weak"),
        ({"organisation": "Nowhere"}, 404, "organisation.not_found"),
        ({"organisation": 999999999999}, 404, "organisation.not_found"),
        ({"role": "caseworker", "organisation": "Coordination"}, 422, "user.invalid_role"),
        ({"username": "bad name/with slash"}, 422, "user.invalid_username"),
        ({"username": "x" * 151}, 422, "request.invalid"),
    ],
)
def test_create_user_refusals_name_the_problem(client, world, change, status, code):
    body = {"username": "newbie", "password": "Kolwezi-field-77", "role": "monitor", "organisation": "Coordination"}
    response = client.post("/api/v1/users", json=body | change, headers=world.admin.bearer)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_deactivating_a_user_ends_their_access(client, world):
    """Issue 9 finding 7: reactivation gives the password back, never the old tokens."""
    assert client.patch("/api/v1/users/monitor", json={"active": False}, headers=world.admin.bearer).json()["active"] is False
    assert client.get("/api/v1/me", headers=world.monitor.bearer).status_code == 401
    assert client.get("/api/v1/me", headers=world.monitor.basic).status_code == 401
    client.patch("/api/v1/users/monitor", json={"active": True}, headers=world.admin.bearer)
    assert client.get("/api/v1/me", headers=world.monitor.basic).status_code == 200
    assert client.get("/api/v1/me", headers=world.monitor.bearer).status_code == 401


def test_an_admin_cannot_deactivate_themselves(client, world):
    response = client.patch("/api/v1/users/admin", json={"active": False}, headers=world.admin.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "user.self_deactivate"


def test_admin_resets_a_password(client, world):
    response = client.patch("/api/v1/users/monitor", json={"password": "another-Secret-2027"}, headers=world.admin.bearer)
    assert response.status_code == 200
    assert client.get("/api/v1/me", headers=world.monitor.basic).status_code == 401
    assert client.get("/api/v1/me", auth=("monitor", "another-Secret-2027")).status_code == 200


def test_update_unknown_user_is_404(client, world):
    assert client.patch("/api/v1/users/ghost", json={"active": False}, headers=world.admin.bearer).status_code == 404


def test_device_creation_returns_the_collect_configuration(client, world):
    from app.collect import decode_settings

    created = client.post("/api/v1/devices", json={"name": "tablet-kolwezi-01"}, headers=world.monitor.basic)
    body = created.json()
    assert body["server_url"] == f"http://testserver/key/{body['token']}"
    assert decode_settings(body["collect_settings"])["general"]["server_url"] == body["server_url"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": ""}, 422, "device.invalid_name"),
        ({"name": "a/b"}, 422, "device.invalid_name"),
        ({"name": "tablet-roles"}, 409, "device.duplicate"),
        ({"name": "t-9", "user": "ghost"}, 403, "device.owner_only"),  # refused before any lookup
    ],
)
def test_device_refusals(client, signed_in, body, status, code):
    response = client.post("/api/v1/devices", json=body, headers=signed_in["admin"])
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_revoke_unknown_device_is_404(client, world):
    assert client.delete("/api/v1/devices/ghost", headers=world.admin.bearer).status_code == 404


def test_organisation_refusals(client, world):
    assert client.post("/api/v1/organisations", json={"name": "NGO A", "kind": "ngo"},
                       headers=world.admin.bearer).status_code == 409
    response = client.post("/api/v1/organisations", json={"name": "NGO C", "kind": "club"}, headers=world.admin.bearer)
    assert response.status_code == 422 and response.json()["error"]["code"] == "organisation.invalid_kind"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/tokens/99999999999999999999", "/api/v1/tokens/-1", "/api/v1/tokens/abc",
     "/api/v1/audit?before_id=99999999999999999999", "/api/v1/audit?limit=x"],
)
def test_out_of_range_numbers_are_422_not_500(client, world, path):
    method = "DELETE" if "tokens" in path else "GET"
    assert client.request(method, path, headers=world.admin.bearer).status_code == 422


@pytest.mark.parametrize("value", ["nul\x00byte", "x" * 5000])
def test_odd_strings_never_500(client, world, value):
    for response in (
        client.post("/api/v1/login", json={"username": value, "password": value}),
        client.patch(f"/api/v1/users/{quote(value, safe='')}", json={"active": True}, headers=world.admin.bearer),
        client.post("/api/v1/organisations", json={"name": value, "kind": "ngo"}, headers=world.admin.bearer),
        client.post("/api/v1/users", json={"username": "okname", "password": "Kolwezi-field-77", "role": "monitor",
                                           "organisation": value}, headers=world.admin.bearer),
        client.post("/api/v1/devices", json={"name": value}, headers=world.admin.basic),
    ):
        assert 400 <= response.status_code < 500, response.text
    audit = client.get("/api/v1/audit", params={"action": value[:80]}, headers=world.admin.bearer)
    assert audit.status_code < 500


def test_malformed_json_is_422(client, world):
    response = client.post("/api/v1/users", content=b"{not json", headers=world.admin.bearer | {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "request.invalid"


# -- audit -------------------------------------------------------------------------------


def audit_actions(engine) -> list[tuple[str, str | None, str | None]]:
    with session_scope(engine) as s:
        return [(e.action, e.actor_label, e.object_type) for e in s.exec(select(AuditLog).order_by(AuditLog.id))]


def test_user_device_and_token_changes_are_audited_with_their_actor(client, world, engine):
    client.post("/api/v1/users", json={"username": "newbie", "password": "Kolwezi-field-77", "role": "monitor",
                                       "organisation": "Coordination"}, headers=world.admin.bearer)
    client.patch("/api/v1/users/newbie", json={"password": "Likasi-field-88", "active": False}, headers=world.admin.bearer)
    client.post("/api/v1/devices", json={"name": "tablet-a"}, headers=world.monitor.basic)
    client.delete("/api/v1/devices/tablet-a", headers=world.admin.bearer)
    token = client.post("/api/v1/tokens", json={"name": "t"}, headers=world.coordinator.bearer).json()
    client.delete(f"/api/v1/tokens/{token['id']}", headers=world.coordinator.bearer)
    client.post("/api/v1/organisations", json={"name": "NGO Z", "kind": "ngo"}, headers=world.admin.bearer)
    seeded = len([a for a in audit_actions(engine) if a[1] is None])
    assert audit_actions(engine)[seeded:] == [
        ("user.create", "admin", "user"),
        ("user.password_change", "admin", "user"),
        ("user.deactivate", "admin", "user"),
        ("device.create", "monitor", "device"),
        ("device.revoke", "admin", "device"),
        ("token.create", "coord", "api_token"),
        ("token.revoke", "coord", "api_token"),
        ("organisation.create", "admin", "organisation"),
    ]


def test_audit_route_filters_and_pages(client, world):
    client.post("/api/v1/login", json={"username": "monitor", "password": "wrong-password-x"})
    entries = client.get("/api/v1/audit", params={"action": "auth.login_failed"}, headers=world.admin.bearer).json()
    assert [(e["action"], e["actor"], e["details"]["method"]) for e in entries] == [("auth.login_failed", "monitor", "password")]
    everything = client.get("/api/v1/audit", params={"limit": 3}, headers=world.admin.bearer).json()
    assert len(everything) == 3 and everything[0]["id"] > everything[-1]["id"]
    older = client.get("/api/v1/audit", params={"before_id": everything[-1]["id"], "limit": 2}, headers=world.admin.bearer)
    assert all(e["id"] < everything[-1]["id"] for e in older.json())


JUNK = [None, True, 0, -1, 2**70, 1.5, "", "x" * 2000, "nul\x00", [], {}, ["a"], {"a": 1}]
BODY_ROUTES = [
    ("POST", "/api/v1/login", ["username", "password"]),
    ("POST", "/api/v1/organisations", ["name", "kind"]),
    ("POST", "/api/v1/users", ["username", "password", "role", "organisation", "full_name"]),
    ("PATCH", "/api/v1/users/monitor", ["active", "password"]),
    ("POST", "/api/v1/devices", ["name", "user"]),
    ("POST", "/api/v1/tokens", ["name"]),
]


@pytest.mark.parametrize(("method", "path", "fields"), BODY_ROUTES, ids=[r[1] + " " + r[0] for r in BODY_ROUTES])
def test_junk_in_any_body_field_is_a_4xx_never_a_500(app, world, method, path, fields):
    from fastapi.testclient import TestClient

    problems = []
    with TestClient(app, raise_server_exceptions=False) as c:
        for field, value in itertools.product(fields, JUNK):
            body = dict.fromkeys(fields, "Kolwezi-field-77") | {"role": "monitor", "organisation": "Coordination",
                                                                "kind": "ngo", field: value}
            response = c.request(method, path, json=body, headers=world.admin.bearer)
            if response.status_code >= 500:
                problems.append((field, repr(value)[:20], response.status_code))
        for raw in (b"", b"null", b"[]", b'"x"', b"{", b"\xff\xfe"):
            response = c.request(method, path, content=raw, headers=world.admin.bearer | {"content-type": "application/json"})
            if response.status_code >= 500:
                problems.append((raw, response.status_code))
    assert problems == []
