"""HTTP Basic: the credentials parser and the verification, with a short-lived cache of
verified credentials held by the app (``app.state.basic_cache``, built by ``create_app``): argon2
costs ~50 ms by design and tablets send Basic on every request."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time

from fastapi import Request
from sqlmodel import Session

from app import accounts
from app.digest import unauthorized
from app.errors import BadRequest
from app.lockout import check_lockout, record_failed_login
from app.models import User

BASIC_CACHE_SECONDS = 300
BASIC_CACHE_MAX = 10_000


class BasicCache:
    """Basic credentials verified recently: sha256(secret, header) -> (user id, password hash, expiry).

    An entry is only used while the user's stored hash is unchanged, so a password change or
    reset ends it in every process. One per app, so tests (and two apps in a process) share nothing.
    """

    def __init__(self, *, seconds: float = BASIC_CACHE_SECONDS, max_entries: int = BASIC_CACHE_MAX) -> None:
        self.seconds, self.max_entries = seconds, max_entries
        self._entries: dict[str, tuple[int, str, float]] = {}

    def get(self, key: str) -> tuple[int, str] | None:
        entry = self._entries.get(key)
        if entry is None or entry[2] <= time.monotonic():
            return None
        return entry[0], entry[1]

    def put(self, key: str, user: User) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (user.id, user.password_hash, time.monotonic() + self.seconds)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("malformed Basic credentials: not base64 of 'user:password'", code="auth.malformed") from exc
    if ":" not in decoded:
        raise BadRequest("malformed Basic credentials: missing ':' between user and password", code="auth.malformed")
    username, password = decoded.split(":", 1)
    return username, password


def basic_user(session: Session, request: Request, credentials: str, *, challenge: bool) -> User:
    username, password = _basic_credentials(credentials)
    # Lockout and throttle first: the cache only saves the argon2 cost, never a refusal.
    check_lockout(session, request, username)
    key = hashlib.sha256(f"{request.app.state.settings.secret}:{credentials}".encode()).hexdigest()
    cache: BasicCache = request.app.state.basic_cache
    cached = cache.get(key)
    if cached is not None:
        user = session.get(User, cached[0])
        if user is not None and user.active and user.password_hash == cached[1]:
            return user
        cache.forget(key)
    user = accounts.authenticate(session, username, password)
    if user is None:
        record_failed_login(request, username, "basic")
        raise unauthorized(request, "wrong username or password", challenge=challenge)
    cache.put(key, user)
    return user
