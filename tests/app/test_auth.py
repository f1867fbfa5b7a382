"""Who is calling: Basic, Digest, device tokens, API tokens, and the refusals in between.

OpenRosa routes are exercised through a tiny OpenRosa-style route installed only in the test
app (``/test-openrosa`` and ``/key/{device_token}/test-openrosa``), built like sync's routes:
it marks the request as OpenRosa and depends on ``OpenRosaActor``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx
import pytest
from fastapi import Depends, Request
from fastapi.testclient import TestClient
from sqlmodel import select

from app import accounts
from app.accounts import REALM
from app.auth import OpenRosaActor
from app.db import session_scope
from app.digest import NONCE_TTL_SECONDS, parse_digest
from app.lockout import FAILURE_WINDOW_SECONDS, record_failed_login
from app.main import create_app
from app.models import AuditLog, DigestNonce
from tests.conftest import PASSWORD, SECRET


def _mark_openrosa(request: Request) -> None:
    request.state.openrosa = True


@pytest.fixture
def orclient(app, world):
    """The real app plus a tiny OpenRosa-style route answering who the caller is."""

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username, "via": actor.via, "device": actor.device.name if actor.device else None}

    for path in ("/test-openrosa", "/key/{device_token}/test-openrosa"):
        app.add_api_route(path, whoami, methods=["GET", "POST"], dependencies=[Depends(_mark_openrosa)])
    with TestClient(app) as client:
        yield client


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def make_nonce(stamp: int, rand: str = "00112233aabbccdd", secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{stamp}:{rand}".encode(), hashlib.sha256).hexdigest()[:24]
    return f"{stamp}.{rand}.{mac}"


def digest_header(username: str, password: str, *, nonce: str, uri: str, method: str = "GET", nc: str = "00000001",
                  cnonce: str = "c0ffee", realm: str = REALM, extra: str = "") -> dict[str, str]:
    """What a Digest client sends for one request (RFC 7616, MD5, qop=auth)."""
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    value = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", qop=auth, nc={nc}, '
             f'cnonce="{cnonce}", response="{response}", algorithm=MD5{extra}')
    return {"Authorization": value}


def challenges(response: httpx.Response) -> list[str]:
    return response.headers.get_list("www-authenticate")


def assert_challenged(response: httpx.Response, *, stale: bool = False) -> None:
    assert response.status_code == 401, response.text
    found = challenges(response)
    assert [c.split()[0] for c in found] == ["Digest", "Basic"]
    digest = parse_digest(found[0].split(" ", 1)[1])
    assert digest["realm"] == REALM and digest["qop"] == "auth" and digest["algorithm"] == "MD5"
    assert ("stale" in digest) is stale
    assert response.headers["content-type"].startswith("text/xml")
    assert "<OpenRosaResponse" in response.text


def failed_logins(engine) -> list[AuditLog]:
    with session_scope(engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == "auth.login_failed")))


# -- challenges --------------------------------------------------------------------------


def test_openrosa_without_credentials_gets_digest_and_basic_challenges(orclient):
    assert_challenged(orclient.get("/test-openrosa"))


def test_openrosa_challenge_nonces_differ_each_time(orclient):
    first = parse_digest(challenges(orclient.get("/test-openrosa"))[0][7:])["nonce"]
    second = parse_digest(challenges(orclient.get("/test-openrosa"))[0][7:])["nonce"]
    assert first != second


# -- Basic -------------------------------------------------------------------------------


def test_basic_good_credentials(orclient, world):
    response = orclient.get("/test-openrosa", headers=world.monitor.basic)
    assert response.json() == {"user": "monitor", "via": "basic", "device": None}
    assert orclient.get("/api/v1/me", headers=world.coordinator.basic).json()["via"] == "basic"


def test_basic_wrong_password_is_challenged_and_audited(orclient, world, engine):
    response = orclient.get("/test-openrosa", auth=("monitor", "not-the-password"))
    assert_challenged(response)
    assert "wrong username or password" in response.text
    entries = failed_logins(engine)
    assert [(e.actor_label, e.details["method"]) for e in entries] == [("monitor", "basic")]
    assert entries[0].client_addr == "testclient"


def test_basic_wrong_password_on_the_api_is_401_without_a_browser_prompt(client, world):
    response = client.get("/api/v1/me", auth=("monitor", "not-the-password"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.required"
    assert challenges(response) == [f'Bearer realm="{REALM}"']


def test_basic_unknown_user(orclient, world):
    assert_challenged(orclient.get("/test-openrosa", auth=("nobody", PASSWORD)))


def test_basic_deactivated_user_is_refused(orclient, world, engine):
    assert orclient.get("/test-openrosa", headers=world.monitor.basic).status_code == 200
    with session_scope(engine) as s:
        accounts.set_active(s, accounts.get_user(s, "monitor"), False)
    assert_challenged(orclient.get("/test-openrosa", headers=world.monitor.basic))


def test_basic_cache_ends_with_a_password_change(orclient, world, engine):
    assert orclient.get("/test-openrosa", headers=world.monitor.basic).status_code == 200  # now cached
    with session_scope(engine) as s:
        accounts.set_password(s, accounts.get_user(s, "monitor"), "a-new-Password-2027")
    assert_challenged(orclient.get("/test-openrosa", headers=world.monitor.basic))
    assert orclient.get("/test-openrosa", auth=("monitor", "a-new-Password-2027")).status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic", "malformed Authorization header: expected"),
        ("Basic !!!not-base64!!!", "not base64"),
        ("Basic " + base64.b64encode(b"no-colon-here").decode(), "missing ':'"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "not base64 of 'user:password'"),
    ],
)
def test_malformed_basic_headers_are_400_naming_the_problem(orclient, client, world, header, message):
    for c, path in ((client, "/api/v1/me"), (orclient, "/test-openrosa")):
        response = c.get(path, headers={"Authorization": header})
        assert response.status_code == 400, response.text
        assert message in response.text


def test_unknown_scheme_on_the_api_is_400(client, world):
    response = client.get("/api/v1/me", headers={"Authorization": "Negotiate abcdef"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "unsupported Authorization scheme 'negotiate'; use Bearer or Basic"


def test_unknown_scheme_on_openrosa_is_challenged(orclient, world):
    assert_challenged(orclient.get("/test-openrosa", headers={"Authorization": "Negotiate abcdef"}))


def test_oversized_authorization_header_is_431(client, orclient, world):
    header = {"Authorization": "Basic " + "A" * 5000}
    for c, path in ((client, "/api/v1/me"), (orclient, "/test-openrosa")):
        response = c.get(path, headers=header)
        assert response.status_code == 431
        assert "Authorization header is too long" in response.text


def test_oversized_request_headers_are_431_on_every_route(client):
    response = client.get("/healthz", headers={"X-Padding": "p" * 40_000})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request.headers_too_large"
    many = {f"X-H{i}": "1" for i in range(150)}
    assert client.get("/healthz", headers=many).status_code == 431


# -- Digest ------------------------------------------------------------------------------


def test_digest_good_credentials(orclient, world):
    response = orclient.get("/test-openrosa", auth=httpx.DigestAuth("monitor", PASSWORD))
    assert response.status_code == 200
    assert response.json()["via"] == "digest"


def test_digest_works_for_posts_with_a_query_string(orclient, world):
    response = orclient.post("/test-openrosa?deviceID=collect%3Aabc", auth=httpx.DigestAuth("cw_a", PASSWORD))
    assert response.json()["user"] == "cw_a"


def test_digest_nonce_counts_may_rise_within_one_nonce(orclient, world):
    nonce = make_nonce(int(time.time()))
    for nc in ("00000001", "00000002", "0000000a"):
        headers = digest_header("monitor", PASSWORD, nonce=nonce, uri="/test-openrosa", nc=nc)
        assert orclient.get("/test-openrosa", headers=headers).status_code == 200


def test_digest_wrong_password_is_challenged_and_audited(orclient, world, engine):
    assert_challenged(orclient.get("/test-openrosa", auth=httpx.DigestAuth("monitor", "wrong-password-1")))
    assert [(e.actor_label, e.details["method"]) for e in failed_logins(engine)] == [("monitor", "digest")]


def test_digest_unknown_user_is_challenged(orclient, world):
    assert_challenged(orclient.get("/test-openrosa", auth=httpx.DigestAuth("nobody", PASSWORD)))


def test_digest_replayed_nonce_and_count_is_refused_as_stale(orclient, world):
    first = orclient.get("/test-openrosa", auth=httpx.DigestAuth("monitor", PASSWORD))
    assert first.status_code == 200
    replay = orclient.get("/test-openrosa", headers={"Authorization": first.request.headers["authorization"]})
    assert_challenged(replay, stale=True)
    assert "replayed" in replay.text


def test_digest_replay_is_refused_by_another_app_process(orclient, world, settings):
    """Nonce counts live in the database: a second app over it refuses the replay too."""
    from app.main import create_app

    headers = digest_header("monitor", PASSWORD, nonce=make_nonce(int(time.time())), uri="/test-openrosa")
    assert orclient.get("/test-openrosa", headers=headers).status_code == 200
    other = create_app(settings)

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username}

    other.add_api_route("/test-openrosa", whoami, dependencies=[Depends(_mark_openrosa)])
    with TestClient(other) as second:
        assert_challenged(second.get("/test-openrosa", headers=headers), stale=True)
    other.state.engine.dispose()


def test_digest_lower_count_after_a_higher_one_is_a_replay(orclient, world):
    nonce = make_nonce(int(time.time()))
    ok = digest_header("monitor", PASSWORD, nonce=nonce, uri="/test-openrosa", nc="00000005")
    assert orclient.get("/test-openrosa", headers=ok).status_code == 200
    older = digest_header("monitor", PASSWORD, nonce=nonce, uri="/test-openrosa", nc="00000003")
    assert_challenged(orclient.get("/test-openrosa", headers=older), stale=True)


def test_digest_expired_nonce_is_stale(orclient, world):
    old = make_nonce(int(time.time()) - NONCE_TTL_SECONDS - 5)
    response = orclient.get("/test-openrosa", headers=digest_header("monitor", PASSWORD, nonce=old, uri="/test-openrosa"))
    assert_challenged(response, stale=True)
    assert "expired" in response.text


def test_digest_forged_nonce_is_refused_without_stale(orclient, world):
    forged = make_nonce(int(time.time()), secret="not-the-server-secret-at-all")
    response = orclient.get("/test-openrosa", headers=digest_header("monitor", PASSWORD, nonce=forged, uri="/test-openrosa"))
    assert_challenged(response)
    assert "unknown Digest nonce" in response.text
    for junk in ("no-dots-here", "1.2.\u00e9t\u00e9", "99999999999999999999999.a.b"):
        headers = digest_header("monitor", PASSWORD, nonce=junk, uri="/test-openrosa")
        headers = {k: v.encode("utf-8") for k, v in headers.items()}
        assert_challenged(orclient.get("/test-openrosa", headers=headers))


def test_digest_uri_must_match_the_request(orclient, world):
    headers = digest_header("monitor", PASSWORD, nonce=make_nonce(int(time.time())), uri="/forms/other.xml")
    response = orclient.get("/test-openrosa", headers=headers)
    assert response.status_code == 400
    assert "Digest uri does not match the request" in response.text


def test_digest_other_method_than_signed_fails(orclient, world):
    headers = digest_header("monitor", PASSWORD, nonce=make_nonce(int(time.time())), uri="/test-openrosa", method="GET")
    assert_challenged(orclient.post("/test-openrosa", headers=headers))


def test_digest_refuses_other_algorithms_and_foreign_opaque(orclient, world):
    nonce = make_nonce(int(time.time()))
    sha = digest_header("monitor", PASSWORD, nonce=nonce, uri="/test-openrosa")
    sha["Authorization"] = sha["Authorization"].replace("algorithm=MD5", "algorithm=SHA-256")
    response = orclient.get("/test-openrosa", headers=sha)
    assert_challenged(response)
    assert "unsupported Digest algorithm" in response.text
    foreign = digest_header("monitor", PASSWORD, nonce=nonce, uri="/test-openrosa", extra=', opaque="abc"')
    assert_challenged(orclient.get("/test-openrosa", headers=foreign))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest username="monitor", realm="asmfield"', "missing nonce, uri, response"),
        ('Digest realm="asmfield", username="monitor', "unterminated quoted value"),
        ('Digest username="m", realm="asmfield", nonce="1.2.3", uri="/x", response="r", qop=auth-int', "unsupported Digest qop"),
        ('Digest username="m", realm="asmfield", nonce="1.2.3", uri="/x", response="r", qop=auth', "needs nc and cnonce"),
    ],
)
def test_malformed_digest_headers_are_400(orclient, world, value, message):
    response = orclient.get("/test-openrosa", headers={"Authorization": value})
    assert response.status_code == 400
    assert message in response.text


def test_digest_bad_nonce_count_is_400(orclient, world):
    headers = digest_header("monitor", PASSWORD, nonce=make_nonce(int(time.time())), uri="/test-openrosa", nc="zz")
    assert orclient.get("/test-openrosa", headers=headers).status_code == 400


def test_old_digest_nonces_are_forgotten(orclient, world, engine):
    from datetime import timedelta

    from app.timeutil import utcnow

    with session_scope(engine) as s:
        # A nonce issued yesterday: the digest code only issues fresh ones, so the row is written directly.
        s.add(DigestNonce(nonce="ancient", issued_at=utcnow() - timedelta(days=1), last_nc=3))
    assert orclient.get("/test-openrosa", auth=httpx.DigestAuth("monitor", PASSWORD)).status_code == 200
    with session_scope(engine) as s:
        assert s.get(DigestNonce, "ancient") is None
        assert len(s.exec(select(DigestNonce)).all()) == 1


# -- device tokens -----------------------------------------------------------------------


def test_device_token_in_the_path_acts_as_its_user(orclient, world):
    created = orclient.post("/api/v1/devices", json={"name": "tablet-01"}, headers=world.monitor.basic).json()
    response = orclient.get(f"/key/{created['token']}/test-openrosa")
    assert response.json() == {"user": "monitor", "via": "device", "device": "tablet-01"}
    devices = orclient.get("/api/v1/devices", headers=world.monitor.bearer).json()
    assert devices[0]["last_seen_at"] is not None


def test_revoked_device_token_is_403_at_once(orclient, world):
    token = orclient.post("/api/v1/devices", json={"name": "tablet-02"}, headers=world.monitor.basic).json()["token"]
    assert orclient.get(f"/key/{token}/test-openrosa").status_code == 200
    assert orclient.delete("/api/v1/devices/tablet-02", headers=world.monitor.bearer).status_code == 200
    response = orclient.get(f"/key/{token}/test-openrosa")
    assert response.status_code == 403
    assert "revoked" in response.text
    assert "www-authenticate" not in response.headers
    assert orclient.get("/api/v1/devices", headers=world.monitor.bearer).json()[0]["revoked_at"] is not None


def test_unknown_device_token_is_403(orclient, world):
    assert orclient.get("/key/not-a-token/test-openrosa").status_code == 403
    assert orclient.get("/key/" + "x" * 500 + "/test-openrosa").status_code == 403


def test_device_of_a_deactivated_user_stops_working(orclient, world, engine):
    token = orclient.post("/api/v1/devices", json={"name": "tablet-03"}, headers=world.monitor.basic).json()["token"]
    with session_scope(engine) as s:
        accounts.set_active(s, accounts.get_user(s, "monitor"), False)
    assert orclient.get(f"/key/{token}/test-openrosa").status_code == 403


def _second_app(settings):
    """Another app process over the same database (its own engine, its own device-id cache)."""
    other = create_app(settings)

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username, "device": actor.device.name if actor.device else None}

    other.add_api_route("/key/{device_token}/test-openrosa", whoami, dependencies=[Depends(_mark_openrosa)])
    return other


def test_device_ids_are_remembered_per_engine_and_revocation_still_counts_at_once(orclient, world, app, settings):
    """The per-process cache (token hash -> device id) is warm in both apps; a revocation made
    through either is refused by the other on its very next request."""
    token = orclient.post("/api/v1/devices", json={"name": "tablet-05"}, headers=world.monitor.basic).json()["token"]
    other = _second_app(settings)
    try:
        with TestClient(other) as second:
            for _ in range(2):
                assert orclient.get(f"/key/{token}/test-openrosa").status_code == 200
                assert second.get(f"/key/{token}/test-openrosa").json() == {"user": "monitor", "device": "tablet-05"}
            assert list(accounts._DEVICE_IDS[app.state.engine].values()) == \
                list(accounts._DEVICE_IDS[other.state.engine].values())
            assert second.delete("/api/v1/devices/tablet-05", headers=world.monitor.bearer).status_code == 200
            assert orclient.get(f"/key/{token}/test-openrosa").status_code == 403
            assert second.get(f"/key/{token}/test-openrosa").status_code == 403
    finally:
        other.state.engine.dispose()


def test_deactivation_in_another_process_stops_a_cached_device_at_once(orclient, world, settings):
    token = orclient.post("/api/v1/devices", json={"name": "tablet-06"}, headers=world.monitor.basic).json()["token"]
    assert orclient.get(f"/key/{token}/test-openrosa").status_code == 200  # cached now
    other = _second_app(settings)
    try:
        with session_scope(other.state.engine) as s:
            accounts.set_active(s, accounts.get_user(s, "monitor"), False)
        assert orclient.get(f"/key/{token}/test-openrosa").status_code == 403
    finally:
        other.state.engine.dispose()


def test_a_stale_cached_device_id_is_checked_not_trusted(orclient, world, app):
    """A remembered id that now names another device (or none) falls back to the search by hash."""
    token = orclient.post("/api/v1/devices", json={"name": "tablet-07"}, headers=world.monitor.basic).json()["token"]
    other = orclient.post("/api/v1/devices", json={"name": "tablet-08"}, headers=world.monitor.basic).json()["token"]
    assert orclient.get(f"/key/{token}/test-openrosa").json()["device"] == "tablet-07"
    with session_scope(app.state.engine) as s:
        other_id = accounts.get_device(s, "tablet-08").id
    ids = accounts._DEVICE_IDS[app.state.engine]
    for wrong in (other_id, 10**9):  # another device's id, a missing row
        for hashed in ids:
            ids[hashed] = wrong
        assert orclient.get(f"/key/{token}/test-openrosa").json()["device"] == "tablet-07"
        assert orclient.get(f"/key/{other}/test-openrosa").json()["device"] == "tablet-08"


def test_device_token_as_bearer_may_sync_but_not_use_the_api(orclient, world):
    token = orclient.post("/api/v1/devices", json={"name": "tablet-04"}, headers=world.monitor.basic).json()["token"]
    assert orclient.get("/test-openrosa", headers={"Authorization": f"Bearer {token}"}).json()["device"] == "tablet-04"
    response = orclient.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "auth.device_not_allowed"


# -- API tokens --------------------------------------------------------------------------


def test_api_token_create_use_list_revoke(client, world):
    created = client.post("/api/v1/tokens", json={"name": "reporting script"}, headers=world.coordinator.basic)
    assert created.status_code == 201
    token = created.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=bearer).json()["via"] == "token"
    listed = client.get("/api/v1/tokens", headers=bearer).json()
    assert [t["name"] for t in listed] == ["tests", "reporting script"]
    assert all("token" not in t for t in listed)
    revoked = client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=world.coordinator.bearer)
    assert revoked.json() == {"id": created.json()["id"], "revoked": True}
    response = client.get("/api/v1/me", headers=bearer)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.invalid_token"


def test_api_token_of_somebody_else_cannot_be_revoked(client, world):
    created = client.post("/api/v1/tokens", json={}, headers=world.monitor.bearer).json()
    response = client.delete(f"/api/v1/tokens/{created['id']}", headers=world.monitor2.bearer)
    assert response.status_code == 404
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['token']}"}).status_code == 200


def test_api_token_use_is_recorded_at_most_once_a_minute(client, world, engine):
    from app.models import ApiToken

    client.get("/api/v1/me", headers=world.monitor.bearer)
    with session_scope(engine) as s:
        first = s.exec(select(ApiToken).where(ApiToken.user_id == world.monitor.user.id)).one().last_used_at
    client.get("/api/v1/me", headers=world.monitor.bearer)
    with session_scope(engine) as s:
        again = s.exec(select(ApiToken).where(ApiToken.user_id == world.monitor.user.id)).one().last_used_at
    assert first is not None and again == first


@pytest.mark.parametrize("token", ["", "x" * 300, "nonsense"])
def test_bad_bearer_tokens_are_401_or_400(client, world, token):
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == (400 if not token else 401)


# -- lockout -----------------------------------------------------------------------------


@pytest.fixture
def locked_settings(settings):
    return settings.model_copy(update={"login_lockout_failures": 3, "login_lockout_minutes": 15})


def test_repeated_failures_lock_the_username_for_every_method(locked_settings, world):
    from app.main import create_app

    app = create_app(locked_settings)

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username}

    app.add_api_route("/test-openrosa", whoami, dependencies=[Depends(_mark_openrosa)])
    with TestClient(app) as c:
        assert c.post("/api/v1/login", json={"username": "monitor", "password": "guess-number-1"}).status_code == 401
        assert c.get("/api/v1/me", auth=("monitor", "guess-number-2")).status_code == 401
        assert c.get("/test-openrosa", auth=httpx.DigestAuth("monitor", "guess-number-3")).status_code == 401
        # Now even the right password is refused, by every method, with a clear reason.
        for response in (
            c.post("/api/v1/login", json={"username": "monitor", "password": PASSWORD}),
            c.get("/api/v1/me", headers=world.monitor.basic),
            c.get("/test-openrosa", auth=httpx.DigestAuth("monitor", PASSWORD)),
        ):
            assert response.status_code == 429, response.text
            assert response.headers["retry-after"] == "900"
            assert "too many failed logins for 'monitor'" in response.text
        page = c.post("/login", data={"username": "monitor", "password": PASSWORD})
        assert page.status_code == 429 and "too many failed logins" in page.text
        # Other users and token holders are unaffected.
        assert c.get("/api/v1/me", headers=world.monitor2.basic).status_code == 200
        assert c.get("/api/v1/me", headers=world.monitor.bearer).status_code == 200
    app.state.engine.dispose()


def test_old_failures_do_not_count(locked_settings, world, engine):
    from datetime import timedelta

    from app import audit
    from app.main import create_app
    from app.timeutil import utcnow

    with session_scope(engine) as s:
        for _ in range(5):
            entry = audit.record(s, "auth.login_failed", label="monitor", method="basic")
            entry.at = entry.last_at = utcnow() - timedelta(minutes=16)
    app = create_app(locked_settings)
    with TestClient(app) as c:
        assert c.get("/api/v1/me", headers=world.monitor.basic).status_code == 200
    app.state.engine.dispose()


def test_lockout_is_checked_before_the_basic_cache(locked_settings, world):
    """Issue 9 finding 4: 140 guesses got 429, then the right (cached) password got 200. Now the
    lockout comes before any cache: the right password is refused during the lockout too."""
    from app.main import create_app

    app = create_app(locked_settings)

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username}

    app.add_api_route("/test-openrosa", whoami, dependencies=[Depends(_mark_openrosa)])
    with TestClient(app) as c:
        # The good credentials are verified once, so this process caches them.
        assert c.get("/test-openrosa", headers=world.monitor.basic).status_code == 200
        assert c.get("/api/v1/me", headers=world.monitor.basic).status_code == 200
        answers = [c.get("/api/v1/me", auth=("monitor", f"guess-number-{i}")).status_code for i in range(140)]
        assert answers[:3] == [401, 401, 401] and set(answers[3:]) == {429}
        for response in (c.get("/test-openrosa", headers=world.monitor.basic),
                         c.get("/api/v1/me", headers=world.monitor.basic)):
            assert response.status_code == 429, response.text
            assert "too many failed logins for 'monitor'" in response.text
    app.state.engine.dispose()


# -- throttling and aggregated audit of failed authentications -----------------------------


@pytest.fixture
def throttled_settings(settings):
    return settings.model_copy(update={"auth_throttle_failures": 5, "auth_throttle_minutes": 15})


def _app(settings):
    from app.main import create_app

    app = create_app(settings)

    def whoami(actor: OpenRosaActor) -> dict:
        return {"user": actor.user.username, "via": actor.via}

    for path in ("/test-openrosa", "/key/{device_token}/test-openrosa"):
        app.add_api_route(path, whoami, dependencies=[Depends(_mark_openrosa)])
    return app


def test_invalid_bearer_tokens_are_throttled_per_address_and_aggregated(throttled_settings, world, engine):
    """Issue 9 finding 15: each invalid Bearer token wrote an audit row at no cost. Now one row per
    (address, username/method, window) counts them, and the address gets 429 after N failures —
    in every app process — while valid tokens keep working."""
    app, other = _app(throttled_settings), _app(throttled_settings)
    with TestClient(app) as c, TestClient(other) as second, \
            TestClient(app, client=("192.0.2.7", 4000)) as elsewhere:
        bad = [c.get("/api/v1/me", headers={"Authorization": f"Bearer guess-{i}"}) for i in range(5)]
        assert [r.status_code for r in bad] == [401] * 5
        for client in (c, second):  # the count lives in the database: another process refuses too
            refused = client.get("/api/v1/me", headers={"Authorization": "Bearer guess-again"})
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "auth.throttled"
            assert refused.headers["retry-after"] == "900"
        # Passwords from this address are not even checked; OpenRosa guesses neither.
        assert c.get("/api/v1/me", headers=world.monitor.basic).status_code == 429
        assert c.post("/api/v1/login", json={"username": "coord", "password": PASSWORD}).status_code == 429
        assert c.get("/key/not-a-device-token/test-openrosa").status_code == 429
        # Valid API and device tokens are never throttled.
        assert c.get("/api/v1/me", headers=world.monitor.bearer).status_code == 200
        with session_scope(world.engine) as s:
            _, token = accounts.create_device(s, name="tablet-t", user="monitor")
        assert c.get(f"/key/{token}/test-openrosa").json()["via"] == "device"
        assert c.get("/test-openrosa", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # Another address is not affected.
        assert elsewhere.get("/api/v1/me", headers=world.monitor.basic).status_code == 200
    rows = failed_logins(engine)
    assert {(r.actor_label, r.client_addr, r.details["method"]) for r in rows} == {("?", "testclient", "bearer")}
    assert sum(r.count for r in rows) == 5 and len(rows) <= 2  # one row per window (two if the test straddles one)
    assert rows[0].last_at >= rows[0].at
    for a in (app, other):
        a.state.engine.dispose()


def test_failed_logins_are_one_audit_row_per_address_username_and_method(orclient, world, engine, client):
    """Issue 9 finding 15: repeated failures are aggregated with a counter, not one row each."""
    for i in range(4):
        assert orclient.get("/test-openrosa", auth=("monitor", f"guess-{i}")).status_code == 401
    for i in range(2):
        assert orclient.get("/test-openrosa", auth=httpx.DigestAuth("monitor", f"guess-{i}")).status_code == 401
    assert orclient.get("/api/v1/me", auth=("monitor2", "guess-x")).status_code == 401
    assert orclient.get("/key/not-a-device-token/test-openrosa").status_code == 403
    rows = failed_logins(engine)
    counts = {}
    for r in rows:
        counts[(r.actor_label, r.details["method"])] = counts.get((r.actor_label, r.details["method"]), 0) + r.count
    assert counts == {("monitor", "basic"): 4, ("monitor", "digest"): 2, ("monitor2", "basic"): 1,
                      ("?", "device_token"): 1}
    assert len(rows) <= 2 * len(counts)  # one row per window (two if the test straddles a window boundary)
    listed = client.get("/api/v1/audit", params={"action": "auth.login_failed"}, headers=world.admin.bearer).json()
    listed_counts = {}
    for e in listed:
        key = (e["actor"], e["details"]["method"])
        listed_counts[key] = listed_counts.get(key, 0) + e["count"]
    assert listed_counts == counts  # the API shows the aggregated rows, counts summed per window
    assert all(e["last_at"] for e in listed)


def test_aggregated_failures_still_lock_the_username(locked_settings, world):
    """The per-username lockout sums the aggregated counts (finding 15 keeps finding 4's lockout)."""
    app = _app(locked_settings)
    with TestClient(app) as c:
        assert [c.get("/api/v1/me", auth=("monitor", f"g-{i}")).status_code for i in range(4)] == [401, 401, 401, 429]
        assert c.get("/api/v1/me", headers=world.monitor2.basic).status_code == 200
    app.state.engine.dispose()


def test_concurrent_failures_share_one_row_and_lose_no_count(app, world, engine):
    """Two app processes opening the same window's row at once: one INSERT wins, the other
    adds to it (the unique aggregate key), so no failure goes uncounted (finding 15)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from starlette.requests import Request


    barrier = Barrier(6)

    def fail_five(_: int) -> None:
        request = Request({"type": "http", "app": app, "client": ("198.51.100.4", 1), "headers": []})
        barrier.wait()
        for _ in range(5):
            record_failed_login(request, "monitor", "basic")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(fail_five, range(6)))
    rows = failed_logins(engine)
    assert sum(r.count for r in rows) == 30
    assert len(rows) == 1 or len({r.at.timestamp() // FAILURE_WINDOW_SECONDS for r in rows}) == len(rows)


def test_the_basic_cache_belongs_to_its_app(app, settings, orclient, world):
    """Verified Basic credentials are cached per app (``app.state.basic_cache``), not per process:
    another app (another test) starts with an empty cache (issue 10: module-global caches)."""
    assert orclient.get("/test-openrosa", headers=world.monitor.basic).status_code == 200
    assert app.state.basic_cache._entries
    assert create_app(settings).state.basic_cache._entries == {}
