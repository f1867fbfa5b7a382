"""Duplicate candidates on keyed hashes (domain.md §3.6): normalised, phonetic names + sex + birth
year (± 1), the caregiver's phone, names + site. Only HMAC values under the server secret are
stored (``app.security.keyed_hash``), so the dedup index reveals nothing if exfiltrated.

The key functions are pure; ``store_keys`` writes the index; ``cases.service.duplicate_candidates``
reads it (cases of different persons sharing a hash).
"""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import Session, select

from app.security import keyed_hash
from cases.models import CaseDedupKey, ChildCase

PURPOSE = "case-dedup"


def fold(text: str | None) -> str:
    """ASCII-folded, lower-case letters and single spaces."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z ]+", " ", ascii_text.lower()).split())


_REWRITES = (("ph", "f"), ("sch", "s"), ("sh", "s"), ("ch", "s"), ("ck", "k"), ("qu", "k"), ("q", "k"),
             ("c", "k"), ("x", "ks"), ("z", "s"), ("y", "i"), ("w", "u"), ("h", ""))


def phonetic(name: str | None) -> str:
    """A coarse sound key of a name: French/Swahili spellings of one name share it (Kabeya ~ Kabeia,
    Tshibanda ~ Chibanda ~ Shibanda). Tokens are sorted so given/family order does not matter."""
    tokens = []
    for token in fold(name).split():
        if token.startswith("ts"):
            token = token[1:]
        for a, b in _REWRITES:
            token = token.replace(a, b)
        token = re.sub(r"(.)\1+", r"\1", token)
        if not token:
            continue
        skeleton = token[0] + re.sub(r"[aeiou]+", "", token[1:])
        tokens.append(skeleton)
    return " ".join(sorted(tokens))


def phone_digits(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-9:] if len(digits) >= 9 else None


def raw_keys(*, given: str | None, family: str | None, sex: str | None, birth_year: int | None,
             phone: str | None, site_code: str | None) -> list[tuple[str, str]]:
    """(kind, plain key) pairs before hashing.

    Birth years are estimates, so the name key is stored for two two-year windows starting at
    year-1 and year: two children share a window exactly when their years differ by at most one.
    """
    names = phonetic(f"{given or ''} {family or ''}")
    keys: list[tuple[str, str]] = []
    if names and birth_year:
        keys += [("name_year", f"{names}|{sex or ''}|{start}") for start in (birth_year - 1, birth_year)]
    if names and site_code:
        keys.append(("name_site", f"{names}|{site_code}"))
    digits = phone_digits(phone)
    if digits:
        keys.append(("phone", digits))
    return keys


def hashed(secret: str, kind: str, value: str) -> str:
    return keyed_hash(secret, f"{kind}:{value}", purpose=PURPOSE)


def store_keys(session: Session, *, secret: str, case: ChildCase, keys: list[tuple[str, str]]) -> None:
    """Replace the dedup keys of ``case``."""
    for old in session.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all():
        session.delete(old)
    for kind, value in keys:
        session.add(CaseDedupKey(case_id=case.id, kind=kind, value=hashed(secret, kind, value)))
