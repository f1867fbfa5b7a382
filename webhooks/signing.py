"""Signatures of webhook bodies, and the sealed storage of endpoint secrets.

Header (as Stripe does it): ``X-Asmfield-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
f"{t}.{body}")>``. A receiver recomputes the HMAC over the timestamp and the raw body with its
secret, compares in constant time, and refuses old timestamps (replays of a captured request).

Secrets are shown once at creation and stored sealed: XOR with an HMAC-SHA256 keystream under a key
derived from the server's SECRET_KEY, with a random nonce and an HMAC tag (no extra dependency).
A copy of the database alone does not give the secrets; with a new SECRET_KEY they cannot be opened
(the endpoint must be re-created, ``signing.SecretUnreadable``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

HEADER = "X-Asmfield-Signature"
#: A receiver should refuse signatures older than this (seconds).
TOLERANCE = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Asmfield-Signature`` value: ``t=<timestamp>,v1=<signature>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, value: str, body: bytes, *, now: int, tolerance: int = TOLERANCE) -> bool:
    """What a receiver does (README): parse the header, check the age, compare in constant time."""
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), parts.get("v1", ""))


# -- sealed secrets -------------------------------------------------------------------------


class SecretUnreadable(Exception):
    """The sealed secret was not sealed under this SECRET_KEY (or was altered)."""


def _keys(server_secret: str) -> tuple[bytes, bytes]:
    base = hashlib.sha256(b"asmfield.webhooks.secret:" + server_secret.encode()).digest()
    return (hmac.new(base, b"encrypt", hashlib.sha256).digest(),
            hmac.new(base, b"authenticate", hashlib.sha256).digest())


def _stream(key: bytes, nonce: bytes, size: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def seal(server_secret: str, secret: str) -> str:
    """``secret`` encrypted and authenticated under a key derived from the server's SECRET_KEY."""
    enc, auth = _keys(server_secret)
    nonce = secrets.token_bytes(16)
    plain = secret.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _stream(enc, nonce, len(plain)), strict=True))
    tag = hmac.new(auth, nonce + cipher, hashlib.sha256).digest()
    return "v1:" + base64.urlsafe_b64encode(nonce + tag + cipher).decode()


def unseal(server_secret: str, sealed: str) -> str:
    enc, auth = _keys(server_secret)
    try:
        raw = base64.urlsafe_b64decode(sealed.removeprefix("v1:"))
    except ValueError as exc:
        raise SecretUnreadable("sealed secret is not base64") from exc
    nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
    if not hmac.compare_digest(tag, hmac.new(auth, nonce + cipher, hashlib.sha256).digest()):
        raise SecretUnreadable("the endpoint secret was sealed under another SECRET_KEY")
    return bytes(a ^ b for a, b in zip(cipher, _stream(enc, nonce, len(cipher)), strict=True)).decode()
