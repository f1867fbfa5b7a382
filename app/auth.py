"""Who is calling: web session cookie, Bearer API token, HTTP Basic, HTTP Digest, device token.

* JSON API (``/api/...``): session cookie, ``Authorization: Bearer <api token>`` or Basic.
* OpenRosa routes: a device token in the path (``/key/{token}/...``), else Basic or Digest.
  Without credentials they answer 401 with both a Digest and a Basic challenge (never 403,
  which would stop ODK Collect from asking for credentials).

Role rules live with the routes (``require_roles``); this module only establishes identity.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy import case, delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app import accounts
from app.accounts import REALM
from app.deps import SessionDep, client_addr
from app.errors import BadRequest, DomainError, Forbidden, Unauthorized
from app.identity import Actor, Role
from app.models import ApiToken, AuditLog, Device, DigestNonce, User, WebSession
from app.security import token_hash
from app.timeutil import utcnow

SESSION_COOKIE = "asmfield_session"
#: Digest nonces are valid this long; a stale nonce gets a fresh challenge with stale=true.
NONCE_TTL_SECONDS = 600
MAX_AUTH_HEADER = 4096
#: ``last_seen_at`` / ``last_used_at`` are written at most this often (not a write per request).
TOUCH_SECONDS = 60
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# -- challenges --------------------------------------------------------------------------


def _nonce(secret: str) -> str:
    stamp = str(int(time.time()))
    rand = secrets.token_hex(8)
    mac = hmac.new(secret.encode(), f"{stamp}:{rand}".encode(), hashlib.sha256).hexdigest()[:24]
    return f"{stamp}.{rand}.{mac}"


def _nonce_valid(secret: str, nonce: str) -> tuple[bool, bool]:
    """(authentic, fresh) for a nonce we may have issued."""
    try:
        stamp, rand, mac = nonce.split(".")
        issued = int(stamp)
    except ValueError:
        return False, False
    expected = hmac.new(secret.encode(), f"{stamp}:{rand}".encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
        return False, False
    return True, time.time() - issued <= NONCE_TTL_SECONDS


def _opaque(secret: str) -> str:
    return hashlib.sha256(f"opaque:{secret}".encode()).hexdigest()[:32]


def challenge_headers(secret: str, *, stale: bool = False) -> list[tuple[str, str]]:
    """A Digest and a Basic challenge: ODK Collect answers Digest, curl and scripts Basic."""
    digest = (f'Digest realm="{REALM}", qop="auth", nonce="{_nonce(secret)}", opaque="{_opaque(secret)}", '
              "algorithm=MD5")
    if stale:
        digest += ", stale=true"
    return [("WWW-Authenticate", digest), ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]


def _unauthorized(request: Request, message: str, *, stale: bool = False, challenge: bool = True) -> Unauthorized:
    """401 with Digest+Basic challenges (OpenRosa), or with a Bearer one (JSON API: a Basic
    challenge there would make browsers pop up a password dialog over our own pages)."""
    if challenge:
        headers = challenge_headers(request.app.state.settings.secret, stale=stale)
    else:
        headers = [("WWW-Authenticate", f'Bearer realm="{REALM}"')]
    return Unauthorized(message, headers=headers)


# -- failed logins -----------------------------------------------------------------------

#: Failed authentications are aggregated into one audit row per (client address, username,
#: method) and window of this many seconds, with a counter: guessing cannot flood the audit log.
FAILURE_WINDOW_SECONDS = 300
FAILED_LOGIN = "auth.login_failed"


def record_failed_login(request: Request, username: str | None, method: str) -> None:
    """Count a failed authentication in its aggregated audit row, in its own transaction
    (the request itself fails): an UPDATE of the window's row, or the row's INSERT.

    ``username`` is None for token failures (audited as "?", which is never a username).
    """
    addr = client_addr(request)
    label = (username or "?")[:150]
    now = utcnow()
    window = int(now.timestamp()) // FAILURE_WINDOW_SECONDS
    key = hashlib.sha256(json.dumps([FAILED_LOGIN, addr, label, method, window]).encode()).hexdigest()
    engine = request.app.state.engine
    table = AuditLog.__table__

    def bump() -> bool:
        with engine.begin() as conn:
            result = conn.execute(
                update(table).where(table.c.aggregate_key == key).values(count=table.c.count + 1, last_at=now)
            )
            return result.rowcount == 1

    if bump():
        return
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(
                at=now, last_at=now, count=1, aggregate_key=key, action=FAILED_LOGIN, actor_label=label,
                client_addr=addr, details={"method": method},
            ))
    except IntegrityError:  # another process opened this window's row a moment ago
        if not bump():
            raise


def _since(minutes: int) -> datetime:
    return utcnow() - timedelta(minutes=minutes)


def _addr_matches(addr: str | None):  # noqa: ANN202
    return AuditLog.client_addr.is_(None) if addr is None else AuditLog.client_addr == addr[:100]


def recent_failures(session: Session, *, addr: str | None, minutes: int) -> int:
    """Failed authentications from ``addr`` whose aggregated row saw a failure in the last
    ``minutes`` (a row counts whole, so the window is at most ``FAILURE_WINDOW_SECONDS`` longer)."""
    query = sa_select(func.coalesce(func.sum(AuditLog.count), 0)).where(
        AuditLog.action == FAILED_LOGIN, _addr_matches(addr), AuditLog.last_at > _since(minutes))
    return int(session.execute(query).scalar_one())


def _throttled(request: Request) -> DomainError:
    settings = request.app.state.settings
    return DomainError(
        f"too many failed authentications from this address; try again in {settings.auth_throttle_minutes} minutes",
        code="auth.throttled", status_code=429, headers=[("Retry-After", str(settings.auth_throttle_minutes * 60))],
    )


def check_throttle(session: Session, request: Request) -> None:
    """Refuse to answer an invalid token for a client address with too many recent failed
    authentications (429), before recording one more. Counted in the database, so every app
    process refuses; valid device and API tokens never get here."""
    settings = request.app.state.settings
    if recent_failures(session, addr=client_addr(request), minutes=settings.auth_throttle_minutes) >= \
            settings.auth_throttle_failures:
        raise _throttled(request)


def check_lockout(session: Session, request: Request, username: str) -> None:
    """Refuse a username with too many recent failed logins (password guessing), whatever the
    method, and a client address with too many failed authentications (throttle).

    Called before any password check or cache, so a locked username is refused even with the
    right password. One indexed query over the audit log's aggregated failure rows, so every
    app process sees the same counts.
    """
    settings = request.app.state.settings
    addr = client_addr(request)
    since_user, since_addr = _since(settings.login_lockout_minutes), _since(settings.auth_throttle_minutes)
    by_user = (AuditLog.actor_label == username[:150]) & (AuditLog.last_at > since_user)
    by_addr = _addr_matches(addr) & (AuditLog.last_at > since_addr)
    user_failures, addr_failures = session.execute(
        sa_select(func.coalesce(func.sum(case((by_user, AuditLog.count), else_=0)), 0),
                  func.coalesce(func.sum(case((by_addr, AuditLog.count), else_=0)), 0))
        .where(AuditLog.action == FAILED_LOGIN, AuditLog.last_at > min(since_user, since_addr),
               (AuditLog.actor_label == username[:150]) | _addr_matches(addr))
    ).one()
    if addr_failures >= settings.auth_throttle_failures:
        raise _throttled(request)
    if user_failures >= settings.login_lockout_failures:
        raise DomainError(
            f"too many failed logins for {username[:150]!r}; try again in {settings.login_lockout_minutes} minutes",
            code="auth.locked", status_code=429,
            headers=[("Retry-After", str(settings.login_lockout_minutes * 60))],
        )


# -- parsers -----------------------------------------------------------------------------


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("malformed Basic credentials: not base64 of 'user:password'", code="auth.malformed") from exc
    if ":" not in decoded:
        raise BadRequest("malformed Basic credentials: missing ':' between user and password", code="auth.malformed")
    username, password = decoded.split(":", 1)
    return username, password


def parse_digest(value: str) -> dict[str, str]:
    """Parse the parameters of a Digest Authorization header (quoted or token values)."""
    params: dict[str, str] = {}
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " ,\t":
            i += 1
        eq = value.find("=", i)
        if eq == -1:
            break
        key = value[i:eq].strip().lower()
        i = eq + 1
        if i < n and value[i] == '"':
            j = i + 1
            buf = []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            if j >= n:
                raise BadRequest("malformed Digest credentials: unterminated quoted value", code="auth.malformed")
            params[key] = "".join(buf)
            i = j + 1
        else:
            j = value.find(",", i)
            j = n if j == -1 else j
            params[key] = value[i:j].strip()
            i = j
        if not key:
            raise BadRequest("malformed Digest credentials", code="auth.malformed")
    return params


def _authorization(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    if len(header) > MAX_AUTH_HEADER:
        raise BadRequest("Authorization header is too long", code="auth.header_too_long", status_code=431)
    scheme, _, rest = header.strip().partition(" ")
    if not scheme or not rest.strip():
        raise BadRequest("malformed Authorization header: expected '<scheme> <credentials>'", code="auth.malformed")
    return scheme.lower(), rest.strip()


# -- verifiers ---------------------------------------------------------------------------


#: Basic credentials verified recently: sha256(header) -> (user id, password hash, expiry).
#: Argon2 costs ~50 ms by design; tablets send Basic on every request. An entry is only used
#: while the user's stored hash is unchanged, so a password change or reset ends it in every process.
_basic_cache: dict[str, tuple[int, str, float]] = {}
BASIC_CACHE_SECONDS = 300
BASIC_CACHE_MAX = 10_000


def _basic_user(session: Session, request: Request, credentials: str, *, challenge: bool) -> User:
    username, password = _basic_credentials(credentials)
    # Lockout and throttle first: the cache only saves the argon2 cost, never a refusal.
    check_lockout(session, request, username)
    key = hashlib.sha256(f"{request.app.state.settings.secret}:{credentials}".encode()).hexdigest()
    cached = _basic_cache.get(key)
    if cached is not None and cached[2] > time.monotonic():
        user = session.get(User, cached[0])
        if user is not None and user.active and user.password_hash == cached[1]:
            return user
        _basic_cache.pop(key, None)
    user = accounts.authenticate(session, username, password)
    if user is None:
        record_failed_login(request, username, "basic")
        raise _unauthorized(request, "wrong username or password", challenge=challenge)
    if len(_basic_cache) >= BASIC_CACHE_MAX:
        _basic_cache.clear()
    _basic_cache[key] = (user.id, user.password_hash, time.monotonic() + BASIC_CACHE_SECONDS)
    return user


def _digest_uri_matches(request: Request, uri: str) -> bool:
    """The Digest ``uri`` must name this request (path and query; raw or decoded; absolute or not)."""
    query = request.url.query
    raw_path = request.scope.get("raw_path")
    paths = {request.url.path}
    if raw_path:
        paths.add(raw_path.decode("latin-1"))
    candidates = {p + (f"?{query}" if query else "") for p in paths} | paths
    if uri in candidates:
        return True
    if "://" in uri:  # some clients send the absolute URL
        parts = urlsplit(uri)
        return (parts.path + (f"?{parts.query}" if parts.query else "")) in candidates
    return False


def _digest_user(session: Session, request: Request, credentials: str) -> User:
    params = parse_digest(credentials)
    required = ("username", "realm", "nonce", "uri", "response")
    missing = [k for k in required if not params.get(k)]
    if missing:
        raise BadRequest(f"malformed Digest credentials: missing {', '.join(missing)}", code="auth.malformed")
    secret = request.app.state.settings.secret
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise _unauthorized(request, f"unsupported Digest algorithm {algorithm[:20]!r}; this server uses MD5")
    qop = params.get("qop")
    if qop not in (None, "auth"):
        raise BadRequest(f"unsupported Digest qop {qop[:20]!r}; use qop=auth", code="auth.malformed")
    if qop == "auth" and (not params.get("nc") or not params.get("cnonce")):
        raise BadRequest("malformed Digest credentials: qop=auth needs nc and cnonce", code="auth.malformed")
    if "opaque" in params and not hmac.compare_digest(params["opaque"].encode(), _opaque(secret).encode()):
        raise _unauthorized(request, "Digest opaque value was not issued by this server; authenticate again")
    authentic, fresh = _nonce_valid(secret, params["nonce"])
    if not authentic:
        raise _unauthorized(request, "unknown Digest nonce; authenticate again")
    if not fresh:
        raise _unauthorized(request, "Digest nonce expired; authenticate again", stale=True)
    if not _digest_uri_matches(request, params["uri"]):
        # RFC 7616 3.4.6: a uri that does not match the request line is a bad request.
        raise BadRequest("Digest uri does not match the request", code="auth.malformed")
    check_lockout(session, request, params["username"])
    user = session.exec(select(User).where(User.username == params["username"][:150])).first()
    ha1 = user.digest_ha1 if user and user.active and params["realm"] == REALM else None
    # Always compute a response, so unknown users cost the same as wrong passwords.
    ha1_used = ha1 or hashlib.md5(secrets.token_bytes(16)).hexdigest()  # noqa: S324
    ha2 = hashlib.md5(f"{request.method}:{params['uri']}".encode()).hexdigest()  # noqa: S324
    if qop == "auth":
        material = f"{ha1_used}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}"
    else:
        material = f"{ha1_used}:{params['nonce']}:{ha2}"
    expected = hashlib.md5(material.encode()).hexdigest()  # noqa: S324
    ok = hmac.compare_digest(expected.encode(), params["response"].lower().encode()) and ha1 is not None
    if not ok:
        record_failed_login(request, params["username"], "digest")
        raise _unauthorized(request, "wrong username or password")
    _check_nonce_count(request, params["nonce"], params.get("nc"))
    return user


def _check_nonce_count(request: Request, nonce: str, nc: str | None) -> None:
    """Refuse a replayed (nonce, nc): each use must raise the nonce count.

    The highest count per nonce lives in the database, so the check holds across app
    processes; the update is conditional (``last_nc < count``), so two processes racing with
    the same count cannot both win.
    """
    try:
        count = int(nc, 16) if nc else 1
    except ValueError as exc:
        raise BadRequest("malformed Digest nonce count: expected 8 hex digits", code="auth.malformed") from exc
    if not 0 < count < 2**31:
        raise BadRequest("malformed Digest nonce count: out of range", code="auth.malformed")
    engine = request.app.state.engine
    table = DigestNonce.__table__

    def advance() -> bool:
        with engine.begin() as conn:
            result = conn.execute(
                update(table).where(table.c.nonce == nonce, table.c.last_nc < count).values(last_nc=count)
            )
            return result.rowcount == 1

    if advance():
        return
    with engine.connect() as conn:
        known = conn.execute(sa_select(table.c.nonce).where(table.c.nonce == nonce)).first() is not None
    if not known:
        try:
            with engine.begin() as conn:
                # Nonces older than twice their lifetime are refused anyway; forget them.
                cutoff = utcnow() - timedelta(seconds=2 * NONCE_TTL_SECONDS)
                conn.execute(delete(table).where(table.c.issued_at < cutoff))
                conn.execute(insert(table).values(nonce=nonce, last_nc=count, issued_at=utcnow()))
            return
        except IntegrityError:  # another process recorded this nonce a moment ago
            if advance():
                return
    raise _unauthorized(request, "replayed Digest credentials; authenticate again", stale=True)


def _session_user(session: Session, request: Request) -> User | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 200:
        return None
    row = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(cookie))).first()
    if row is None or row.ended_at is not None or row.expires_at < utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def session_user(session: Session, request: Request) -> User | None:
    """The user of the web session cookie, if it is live (for web pages)."""
    return _session_user(session, request)


# -- cross-site request forgery ----------------------------------------------------------


def same_origin(request: Request) -> bool | None:
    """Whether the request comes from one of our own pages: True, False, or None when the
    browser sent neither ``Origin`` nor ``Referer`` (old browsers, privacy settings)."""
    origin = request.headers.get("origin")
    source = origin if origin and origin != "null" else request.headers.get("referer")
    if not source:
        return False if origin == "null" else None
    netloc = urlsplit(source).netloc.lower()
    allowed = {(request.headers.get("host") or "").lower()}
    base_url = request.app.state.settings.base_url
    if base_url:
        allowed.add(urlsplit(base_url).netloc.lower())
    return netloc in allowed


def check_csrf(request: Request, *, strict: bool) -> None:
    """Refuse an unsafe request that a browser sent on behalf of another site.

    Session cookies are SameSite=Strict already; this is the second lock. With ``strict``
    (JSON API calls authenticated by cookie), a request without Origin/Referer must carry
    ``X-Requested-With`` (a header no other site can make a browser send without CORS,
    which this server never grants).
    """
    if request.method in SAFE_METHODS:
        return
    verdict = same_origin(request)
    if verdict is False or (verdict is None and strict and "x-requested-with" not in request.headers):
        raise Forbidden(
            "cross-site request refused: send it from this server's pages, or add an X-Requested-With header",
            code="auth.csrf",
        )


def _touch(row: Device | ApiToken, attr: str, session: Session) -> None:
    """Record use of a credential, at most once a minute (not a database write per request)."""
    now = utcnow()
    last = getattr(row, attr)
    if last is None or (now - last).total_seconds() > TOUCH_SECONDS:
        setattr(row, attr, now)
        session.add(row)


def _device_actor(session: Session, device: Device, addr: str | None) -> Actor:
    _touch(device, "last_seen_at", session)
    return Actor(user=session.get(User, device.user_id), device=device, via="device", client_addr=addr)


def _token_user(session: Session, credentials: str) -> User | None:
    if len(credentials) > 200:
        return None
    row = accounts.api_token_for(session, credentials)
    if row is None:
        return None
    _touch(row, "last_used_at", session)
    return session.get(User, row.user_id)


# -- dependencies ------------------------------------------------------------------------


def api_actor(request: Request, session: SessionDep) -> Actor:
    """Caller of the JSON API: Bearer token, Basic or the web session cookie."""
    addr = client_addr(request)
    auth = _authorization(request)
    if auth is not None:
        scheme, credentials = auth
        if scheme == "bearer":
            user = _token_user(session, credentials)
            if user is not None:
                return Actor(user=user, via="token", client_addr=addr)
            device = accounts.device_for_token(session, credentials) if len(credentials) <= 200 else None
            if device is not None:
                # Device tokens may only sync; routes that allow them check actor.device.
                return _device_actor(session, device, addr)
            check_throttle(session, request)
            record_failed_login(request, None, "bearer")
            raise Unauthorized("invalid or revoked API token", code="auth.invalid_token",
                               headers=[("WWW-Authenticate", f'Bearer realm="{REALM}", error="invalid_token"')])
        if scheme == "basic":
            return Actor(user=_basic_user(session, request, credentials, challenge=False), via="basic", client_addr=addr)
        raise BadRequest(f"unsupported Authorization scheme {scheme[:20]!r}; use Bearer or Basic", code="auth.malformed")
    user = _session_user(session, request)
    if user is None:
        raise Unauthorized("authentication required: log in, or send a Bearer token or Basic credentials",
                           headers=[("WWW-Authenticate", f'Bearer realm="{REALM}"')])
    check_csrf(request, strict=True)
    return Actor(user=user, via="session", client_addr=addr)


def user_actor(actor: Annotated[Actor, Depends(api_actor)]) -> Actor:
    """A person (not a device token): for everything that is not sync."""
    if actor.device is not None:
        raise Forbidden("device tokens may only list forms, download them and sync submissions", code="auth.device_not_allowed")
    return actor


def openrosa_actor(request: Request, session: SessionDep) -> Actor:
    """Caller of an OpenRosa route: device token in the path, else Basic or Digest."""
    addr = client_addr(request)
    token = request.path_params.get("device_token")
    if token is not None:
        device = accounts.device_for_token(session, token) if len(token) <= 200 else None
        if device is None:
            check_throttle(session, request)
            record_failed_login(request, None, "device_token")
            # 403, not 401: a 401 would make clients prompt for a password that cannot help.
            raise Forbidden("this device token is unknown or has been revoked", code="auth.device_revoked")
        return _device_actor(session, device, addr)
    auth = _authorization(request)
    if auth is None:
        raise _unauthorized(request, "authentication required")
    scheme, credentials = auth
    if scheme == "basic":
        return Actor(user=_basic_user(session, request, credentials, challenge=True), via="basic", client_addr=addr)
    if scheme == "digest":
        return Actor(user=_digest_user(session, request, credentials), via="digest", client_addr=addr)
    if scheme == "bearer":
        user = _token_user(session, credentials)
        if user is not None:
            return Actor(user=user, via="token", client_addr=addr)
        device = accounts.device_for_token(session, credentials) if len(credentials) <= 200 else None
        if device is not None:
            return _device_actor(session, device, addr)
        check_throttle(session, request)
        record_failed_login(request, None, "bearer")
        raise _unauthorized(request, "invalid or revoked API token")
    raise _unauthorized(request, f"unsupported Authorization scheme {scheme[:20]!r}; use Basic or Digest")


def require_roles(*roles: str, allow_device: bool = False):  # noqa: ANN201
    """Dependency factory: the API caller must have one of ``roles``."""

    def check(actor: Annotated[Actor, Depends(api_actor)]) -> Actor:
        if actor.device is not None and not allow_device:
            raise Forbidden("device tokens may only list forms, download them and sync submissions", code="auth.device_not_allowed")
        if actor.role not in roles:
            raise Forbidden(f"this needs one of the roles: {', '.join(roles)}", code="auth.forbidden")
        return actor

    return check


ApiActor = Annotated[Actor, Depends(user_actor)]
OpenRosaActor = Annotated[Actor, Depends(openrosa_actor)]
AdminActor = Annotated[Actor, Depends(require_roles(Role.admin))]
StaffActor = Annotated[Actor, Depends(require_roles(Role.admin, Role.coordinator))]
