"""Duplicate candidates on keyed hashes (domain.md §3.6): normalised, phonetic names + sex + birth
year (± 1), the caregiver's phone, names + site. Only HMAC values under the server secret are
stored (``app.security.keyed_hash``), so the dedup index reveals nothing if exfiltrated.

The key functions are pure; ``store_keys`` and ``candidates_for`` read and write the index.
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
    """(kind, plain key) pairs before hashing; the name-year key is stored for the exact year only."""
    names = phonetic(f"{given or ''} {family or ''}")
    keys: list[tuple[str, str]] = []
    if names and birth_year:
        keys.append(("name_year", f"{names}|{sex or ''}|{birth_year}"))
    if names and site_code:
        keys.append(("name_site", f"{names}|{site_code}"))
    digits = phone_digits(phone)
    if digits:
        keys.append(("phone", digits))
    return keys


def search_keys(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Keys to look up: the name-year key for the year before and after too (ages are estimates)."""
    out = []
    for kind, value in keys:
        out.append((kind, value))
        if kind == "name_year":
            head, year = value.rsplit("|", 1)
            out += [(kind, f"{head}|{int(year) - 1}"), (kind, f"{head}|{int(year) + 1}")]
    return out


def hashed(secret: str, kind: str, value: str) -> str:
    return keyed_hash(secret, f"{kind}:{value}", purpose=PURPOSE)


def store_keys(session: Session, *, secret: str, case: ChildCase, keys: list[tuple[str, str]]) -> None:
    """Replace the dedup keys of ``case``."""
    for old in session.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all():
        session.delete(old)
    for kind, value in keys:
        session.add(CaseDedupKey(case_id=case.id, kind=kind, value=hashed(secret, kind, value)))


def candidates_for(session: Session, *, secret: str, case: ChildCase,
                   keys: list[tuple[str, str]]) -> dict[int, set[str]]:
    """Other cases of other persons sharing a key: {case id: {kinds matched}}."""
    wanted = [(kind, hashed(secret, kind, value)) for kind, value in search_keys(keys)]
    found: dict[int, set[str]] = {}
    if not wanted:
        return found
    rows = session.exec(
        select(CaseDedupKey.case_id, CaseDedupKey.kind, ChildCase.person_id)
        .join(ChildCase, ChildCase.id == CaseDedupKey.case_id)
        .where(CaseDedupKey.value.in_([h for _, h in wanted]), CaseDedupKey.case_id != case.id)
    ).all()
    kinds_by_hash = {h: k for k, h in wanted}
    for case_id, kind, person_id in rows:
        if person_id == case.person_id:
            continue
        found.setdefault(case_id, set()).add(kind)
    del kinds_by_hash
    return found
