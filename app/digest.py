"""HTTP Digest (what ODK Collect answers): the 401 challenges (Digest and Basic), signed nonces,
the ``Authorization: Digest`` parser and the verification, with a database-kept nonce count
so a replayed (nonce, nc) is refused across processes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import delete, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.accounts import REALM
from app.errors import BadRequest, Unauthorized
from app.lockout import check_lockout, record_failed_login
from app.models import DigestNonce, User
from app.timeutil import utcnow

#: Digest nonces are valid this long; a stale nonce gets a fresh challenge with stale=true.
NONCE_TTL_SECONDS = 600


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


def unauthorized(request: Request, message: str, *, stale: bool = False, challenge: bool = True) -> Unauthorized:
    """401 with Digest+Basic challenges (OpenRosa), or with a Bearer one (JSON API: a Basic
    challenge there would make browsers pop up a password dialog over our own pages)."""
    if challenge:
        headers = challenge_headers(request.app.state.settings.secret, stale=stale)
    else:
        headers = [("WWW-Authenticate", f'Bearer realm="{REALM}"')]
    return Unauthorized(message, headers=headers)


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


def digest_user(session: Session, request: Request, credentials: str) -> User:
    params = parse_digest(credentials)
    required = ("username", "realm", "nonce", "uri", "response")
    missing = [k for k in required if not params.get(k)]
    if missing:
        raise BadRequest(f"malformed Digest credentials: missing {', '.join(missing)}", code="auth.malformed")
    secret = request.app.state.settings.secret
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise unauthorized(request, f"unsupported Digest algorithm {algorithm[:20]!r}; this server uses MD5")
    qop = params.get("qop")
    if qop not in (None, "auth"):
        raise BadRequest(f"unsupported Digest qop {qop[:20]!r}; use qop=auth", code="auth.malformed")
    if qop == "auth" and (not params.get("nc") or not params.get("cnonce")):
        raise BadRequest("malformed Digest credentials: qop=auth needs nc and cnonce", code="auth.malformed")
    if "opaque" in params and not hmac.compare_digest(params["opaque"].encode(), _opaque(secret).encode()):
        raise unauthorized(request, "Digest opaque value was not issued by this server; authenticate again")
    authentic, fresh = _nonce_valid(secret, params["nonce"])
    if not authentic:
        raise unauthorized(request, "unknown Digest nonce; authenticate again")
    if not fresh:
        raise unauthorized(request, "Digest nonce expired; authenticate again", stale=True)
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
        raise unauthorized(request, "wrong username or password")
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
    raise unauthorized(request, "replayed Digest credentials; authenticate again", stale=True)
