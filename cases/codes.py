"""Pseudonymous identifiers: random, non-sequential, nothing embedded (no site, date or province),
with a check character so a mistyped code is caught (Luhn mod N over a Crockford-style alphabet).

``CL-7Q4K-M2XD`` is a case, ``P-3HJ9-0QWE`` a person; the last character is the check.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
_N = len(ALPHABET)
_PATTERN = re.compile(r"^(CL|P)-([0-9A-Z]{4})-([0-9A-Z]{4})$")


def check_char(payload: str) -> str:
    """Luhn mod N check character of ``payload`` (characters of ALPHABET)."""
    factor, total = 2, 0
    for ch in reversed(payload):
        addend = factor * ALPHABET.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // _N + addend % _N
    return ALPHABET[(_N - total % _N) % _N]


def new_code(prefix: str) -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(7))
    full = payload + check_char(payload)
    return f"{prefix}-{full[:4]}-{full[4:]}"


def new_case_code() -> str:
    return new_code("CL")


def new_person_code() -> str:
    return new_code("P")


def normalise(code: str) -> str:
    return (code or "").strip().upper()


def is_valid(code: str, prefix: str = "CL") -> bool:
    """Well formed, right prefix, and the check character matches."""
    m = _PATTERN.match(normalise(code))
    if not m or m.group(1) != prefix:
        return False
    full = m.group(2) + m.group(3)
    if any(ch not in ALPHABET for ch in full):
        return False
    return check_char(full[:-1]) == full[-1]
