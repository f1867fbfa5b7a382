"""Duplicate candidates on keyed hashes (domain.md §3.6): normalised, phonetic names + sex + birth
year (± 1), the caregiver's phone, names + site. Only HMAC values under the server secret are
stored (``app.security.keyed_hash``), so the dedup index reveals nothing if exfiltrated.

The key functions are pure; ``store_keys`` writes the index; ``cases.duplicates.duplicate_candidates``
reads it (cases of different persons sharing a hash).

Only cases opened by a partner NGO's caseworker are indexed (issue 9, finding 10): an intake
from a coordinator or an administrator is never looked up, so nobody can type a phone number or
a name into a test intake and learn which NGO's child it matches. Such an intake opens its case
as usual and waits in the review queue, saying that no duplicate check was run. Every lookup (at
intake, and each listing) is audited.
"""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import Session

from app import audit
from app.models import Organisation, User
from app.security import keyed_hash
from cases import lifecycle, queries
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


def opened_by_partner(session: Session, case: ChildCase) -> bool:
    """Was ``case`` opened by the intake of a partner NGO's caseworker (the only ones indexed)?"""
    user = session.get(User, case.created_by_user_id) if case.created_by_user_id else None
    org = session.get(Organisation, case.created_by_org_id) if case.created_by_org_id else None
    return user is not None and user.role == "caseworker" and org is not None and org.kind == "ngo"


#: Review reason of an intake that was not checked for duplicates.
UNCHECKED = ("intake not from a partner NGO's caseworker: no duplicate check was run for case {code}; "
             "check for an existing case before verifying it")


def store_keys(session: Session, *, secret: str, case: ChildCase, keys: list[tuple[str, str]]) -> None:
    """Replace the dedup keys of ``case`` and run the (audited) candidate lookup of its intake.

    A case not opened by a partner NGO's caseworker keeps no keys and is not looked up; the first
    version of its intake goes to the review queue instead.
    """
    for old in queries.dedup_keys(session, case.id):
        session.delete(old)
    if not opened_by_partner(session, case):
        _queue_unchecked(session, case)
        return
    for kind, value in keys:
        session.add(CaseDedupKey(case_id=case.id, kind=kind, value=hashed(secret, kind, value)))
    session.flush()
    found = candidates_of(session, case)
    audit.record(session, "case.duplicate_lookup", label="system (intake)", object_type="case", object_id=case.code,
                 trigger="intake", intake_by_user_id=case.created_by_user_id, candidates=len(found),
                 kinds=sorted({k for kinds in found.values() for k in kinds}))


def candidates_of(session: Session, case: ChildCase) -> dict[int, set[str]]:
    """Indexed open cases of other persons sharing a key with ``case``: {case id: kinds matched}."""
    found: dict[int, set[str]] = {}
    for other_id, kind in queries.key_matches(session, case.id):
        found.setdefault(other_id, set()).add(kind)
    out = {}
    for other_id, kinds in found.items():
        other = session.get(ChildCase, other_id)
        if (other is not None and other.person_id != case.person_id and other.status not in lifecycle.TERMINAL_STATES
                and opened_by_partner(session, other)):
            out[other_id] = kinds
    return out


def _queue_unchecked(session: Session, case: ChildCase) -> None:
    intake = queries.current_intake(session, case)
    if intake is None or intake.instance_id != intake.root_instance_id or intake.review_state == "needs_review":
        return  # an edit, or already waiting for a coordinator
    intake.review_state = "needs_review"
    intake.review_reason = UNCHECKED.format(code=case.code)[:500]
    session.add(intake)
