"""Password hashing (argon2), random tokens and keyed hashes.

Tokens (API, device, web session) are random 256-bit strings; only their SHA-256 is stored,
which is safe for high-entropy secrets and lets any app process look them up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import Invalid

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
#: A few passwords refused outright, whatever their length.
COMMON_PASSWORDS = {"password", "passw0rd", "1234567890", "0123456789", "qwertyuiop", "azertyuiop", "motdepasse"}


def check_password_strength(password: str | None, username: str = "") -> str:
    """Return the password if acceptable; raise ``Invalid`` naming the problem otherwise."""
    if not password or not password.strip():
        raise Invalid("password is empty", code="user.password_empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must have at least {MIN_PASSWORD_LENGTH} characters", code="user.password_weak")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"password must have at most {MAX_PASSWORD_LENGTH} characters", code="user.password_too_long")
    lowered = password.lower()
    # The username adds nothing an attacker does not know: the rest must be long enough alone.
    rest = lowered.replace(username.lower(), "") if username else lowered
    if lowered in COMMON_PASSWORDS or len(rest) < MIN_PASSWORD_LENGTH or len(set(password)) < 4:
        raise Invalid("password is too easy to guess (too common, too repetitive, or mostly the username)",
                      code="user.password_weak")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(secret: str, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under the server secret, separated by ``purpose``."""
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def digest_ha1(username: str, realm: str, password: str) -> str:
    """HTTP Digest HA1 = MD5(username:realm:password), kept so OpenRosa Digest clients can log in."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 (protocol-mandated)
