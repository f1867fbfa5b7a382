"""Who is calling: web session cookie, Bearer API token, HTTP Basic, HTTP Digest, device token.

* JSON API (``/api/...``): session cookie, ``Authorization: Bearer <api token>`` or Basic.
* OpenRosa routes: a device token in the path (``/key/{token}/...``), else Basic or Digest.
  Without credentials they answer 401 with both a Digest and a Basic challenge (never 403,
  which would stop ODK Collect from asking for credentials).

Role rules live with the routes (``require_roles``); this module only establishes identity and
holds the FastAPI dependencies. Per credential type: ``app.basic`` (Basic and its cache),
``app.digest`` (Digest, challenges), ``app.lockout`` (failed logins, lockout, throttle),
``app.csrf`` (cross-site requests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, select

from app import accounts
from app.accounts import REALM
from app.basic import basic_user
from app.csrf import check_csrf
from app.deps import SessionDep, client_addr
from app.digest import digest_user, unauthorized
from app.errors import BadRequest, Forbidden, Unauthorized
from app.identity import Actor, Role
from app.lockout import check_throttle, record_failed_login
from app.models import ApiToken, Device, User, WebSession
from app.security import token_hash
from app.timeutil import utcnow

SESSION_COOKIE = "asmfield_session"
MAX_AUTH_HEADER = 4096
#: ``last_seen_at`` / ``last_used_at`` are written at most this often (not a write per request).
TOUCH_SECONDS = 60


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


def _stale(last: datetime | None) -> bool:
    return last is None or (utcnow() - last).total_seconds() > TOUCH_SECONDS


def _touch(row: Device | ApiToken, attr: str, session: Session) -> None:
    """Record use of a credential, at most once a minute (not a database write per request)."""
    if _stale(getattr(row, attr)):
        setattr(row, attr, utcnow())
        session.add(row)


def _device_actor(session: Session, device: Device, owner: User, addr: str | None) -> Actor:
    """A device's caller. ``device`` and ``owner`` are read-only copies (``accounts.device_and_owner_for_token``):
    the device row itself is loaded to record its use."""
    if _stale(device.last_seen_at):
        _touch(session.get(Device, device.id), "last_seen_at", session)
    return Actor(user=owner, device=device, via="device", client_addr=addr)


def _token_user(session: Session, credentials: str) -> User | None:
    if len(credentials) > 200:
        return None
    row = accounts.api_token_for(session, credentials)
    if row is None:
        return None
    _touch(row, "last_used_at", session)
    return session.get(User, row.user_id)


# -- dependencies ------------------------------------------------------------------------


def _bearer_actor(session: Session, request: Request, credentials: str) -> Actor | None:
    """The caller of a Bearer token: an API token's user, or a device (device tokens may only sync;
    routes that allow them check ``actor.device``). None, counted as a failed authentication, when
    the token is neither (throttled per address first)."""
    addr = client_addr(request)
    user = _token_user(session, credentials)
    if user is not None:
        return Actor(user=user, via="token", client_addr=addr)
    found = accounts.device_and_owner_for_token(session, credentials) if len(credentials) <= 200 else None
    if found is not None:
        return _device_actor(session, *found, addr)
    check_throttle(session, request)
    record_failed_login(request, None, "bearer")
    return None


def api_actor(request: Request, session: SessionDep) -> Actor:
    """Caller of the JSON API: Bearer token, Basic or the web session cookie."""
    addr = client_addr(request)
    auth = _authorization(request)
    if auth is not None:
        scheme, credentials = auth
        if scheme == "bearer":
            actor = _bearer_actor(session, request, credentials)
            if actor is not None:
                return actor
            raise Unauthorized("invalid or revoked API token", code="auth.invalid_token",
                               headers=[("WWW-Authenticate", f'Bearer realm="{REALM}", error="invalid_token"')])
        if scheme == "basic":
            return Actor(user=basic_user(session, request, credentials, challenge=False), via="basic", client_addr=addr)
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
        found = accounts.device_and_owner_for_token(session, token) if len(token) <= 200 else None
        if found is None:
            check_throttle(session, request)
            record_failed_login(request, None, "device_token")
            # 403, not 401: a 401 would make clients prompt for a password that cannot help.
            raise Forbidden("this device token is unknown or has been revoked", code="auth.device_revoked")
        return _device_actor(session, *found, addr)
    auth = _authorization(request)
    if auth is None:
        raise unauthorized(request, "authentication required")
    scheme, credentials = auth
    if scheme == "basic":
        return Actor(user=basic_user(session, request, credentials, challenge=True), via="basic", client_addr=addr)
    if scheme == "digest":
        return Actor(user=digest_user(session, request, credentials), via="digest", client_addr=addr)
    if scheme == "bearer":
        actor = _bearer_actor(session, request, credentials)
        if actor is not None:
            return actor
        raise unauthorized(request, "invalid or revoked API token")
    raise unauthorized(request, f"unsupported Authorization scheme {scheme[:20]!r}; use Basic or Digest")


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
