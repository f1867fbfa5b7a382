"""Web login and logout: the session cookie, its flags, server-side end, and CSRF refusals."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.auth import SESSION_COOKIE
from app.db import session_scope
from app.main import create_app
from app.models import AuditLog, WebSession
from tests.app.factories import SAME_ORIGIN, login
from tests.conftest import PASSWORD


def set_cookie(response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


def test_login_page_is_served(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'type="password"' in page.text


def test_home_redirects_to_login_without_a_session(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2F"


def test_login_sets_a_strict_httponly_cookie_and_shows_home(client, world):
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    morsel = set_cookie(response)[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "strict"
    assert morsel["path"] == "/"
    assert not morsel["secure"]
    assert int(morsel["max-age"]) == 7 * 86400
    home = client.get("/")
    assert home.status_code == 200 and "coord" in home.text and "Coordination" in home.text
    assert client.get("/api/v1/me").json()["via"] == "session"


def test_cookie_is_secure_when_configured(settings, world):
    app = create_app(settings.model_copy(update={"secure_cookies": True}))
    with TestClient(app) as client:
        assert set_cookie(login(client))[SESSION_COOKIE]["secure"] is True
    app.state.engine.dispose()


def test_wrong_password_shows_the_form_again_and_is_audited(client, world, engine):
    response = login(client, password="not-my-password")
    assert response.status_code == 401
    assert "Nom d’utilisateur ou mot de passe incorrect." in response.text  # French first
    assert "set-cookie" not in response.headers
    with session_scope(engine) as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "auth.login_failed")).one()
    assert entry.actor_label == "coord" and entry.details == {"method": "password"}


def test_login_is_audited(client, world, engine):
    login(client)
    with session_scope(engine) as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "auth.login")).one()
    assert entry.actor_label == "coord" and entry.details["user_id"] == world.coordinator.user.id


def test_logout_ends_the_session_on_the_server(client, world, engine):
    login(client)
    stolen = client.cookies.get(SESSION_COOKIE)
    response = client.post("/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    # The old cookie no longer works, even if somebody kept a copy.
    client.cookies.set(SESSION_COOKIE, stolen)
    assert client.get("/api/v1/me").status_code == 401
    with session_scope(engine) as s:
        assert s.exec(select(WebSession)).one().ended_at is not None
        assert s.exec(select(AuditLog).where(AuditLog.action == "auth.logout")).one().object_id == str(world.coordinator.user.id)


def test_json_login_and_logout(client, world):
    response = client.post("/api/v1/login", json={"username": "monitor", "password": PASSWORD})
    assert response.json() == {"username": "monitor", "role": "monitor"}
    assert client.get("/api/v1/me").json()["username"] == "monitor"
    assert client.post("/api/v1/logout").json() == {"status": "logged out"}
    assert client.get("/api/v1/me").status_code == 401


def test_json_login_wrong_password(client, world):
    response = client.post("/api/v1/login", json={"username": "monitor", "password": "nope-nope-nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.login_failed"


def test_password_change_ends_web_sessions(client, world):
    login(client, "monitor")
    client.patch("/api/v1/users/monitor", json={"password": "rotated-Password-1"}, headers=world.admin.bearer)
    assert client.get("/api/v1/me").status_code == 401


def test_expired_session_is_refused(client, world, engine):
    from datetime import timedelta

    from app.timeutil import utcnow

    login(client)
    with session_scope(engine) as s:
        row = s.exec(select(WebSession)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    assert client.get("/api/v1/me").status_code == 401


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://testserver"}, 201),
        ({"Referer": "http://testserver/"}, 201),
        ({"X-Requested-With": "fetch"}, 201),
        ({}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Origin": "https://evil.example", "X-Requested-With": "fetch"}, 403),
    ],
)
def test_unsafe_api_calls_by_cookie_must_come_from_our_pages(client, world, headers, status):
    login(client)
    response = client.post("/api/v1/tokens", json={"name": "via-cookie"}, headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["code"] == "auth.csrf"


def test_safe_api_calls_by_cookie_need_no_origin(client, world):
    login(client)
    assert client.get("/api/v1/tokens", headers={"Origin": "https://evil.example"}).status_code == 200


def test_token_and_basic_callers_are_not_subject_to_csrf_checks(client, world):
    response = client.post("/api/v1/tokens", json={}, headers=world.monitor.basic | {"Origin": "https://evil.example"})
    assert response.status_code == 201


def test_cross_site_login_and_logout_forms_are_refused(client, world):
    evil = {"Origin": "https://evil.example"}
    response = client.post("/login", data={"username": "coord", "password": PASSWORD}, headers=evil,
                           follow_redirects=False)
    assert response.status_code == 403 and "set-cookie" not in response.headers
    login(client)
    assert client.post("/logout", headers=evil, follow_redirects=False).status_code == 403
    assert client.get("/api/v1/me").status_code == 200


def test_configured_base_url_counts_as_our_origin(settings, world):
    app = create_app(settings.model_copy(update={"base_url": "https://asm.example.org"}))
    with TestClient(app) as client:
        login(client)
        response = client.post("/api/v1/tokens", json={}, headers={"Origin": "https://asm.example.org"})
        assert response.status_code == 201
    app.state.engine.dispose()


def test_long_expired_sessions_are_cleared_at_the_next_login(client, world, engine):
    from datetime import timedelta

    from app.timeutil import utcnow

    login(client)
    with session_scope(engine) as s:
        row = s.exec(select(WebSession)).one()
        row.expires_at = utcnow() - timedelta(days=2)
        s.add(row)
    login(client, "monitor")
    with session_scope(engine) as s:
        assert [r.user_id for r in s.exec(select(WebSession))] == [world.monitor.user.id]
