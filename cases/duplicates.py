"""Duplicates, a coordinator's business: pairs of cases of different persons that share a keyed
hash (``cases.dedup`` keeps the index), and merging a case into the one it duplicates."""

from __future__ import annotations

from sqlmodel import Session

from app.events import announce
from app.identity import Actor
from app.timeutil import isoformat, utcnow
from cases import access, codes, dedup, journal, lifecycle, queries
from cases.errors import InvalidTransition, MergeSelf, UnknownMergeTarget, WrongRole
from cases.models import CaseEvent, ChildCase
from cases.schemas import DuplicatePublic

#: At most this many matching key pairs are read per request (common names match widely).
MAX_DUPLICATE_ROWS = 5000


def duplicate_candidates(session: Session, *, actor: Actor) -> list[DuplicatePublic]:
    """Pairs of cases of different persons that share a keyed hash (coordinators only; audited).

    Only cases opened by a partner NGO's caseworker are indexed (``dedup.store_keys``). A pair is
    shown without any identifying field: pseudonymous codes, organisations, sites, age bands,
    dates, statuses and the kind of match (``name_year``, ``name_site``, ``phone``) only.
    """
    access.require_coordinator(actor, "duplicate candidates are shown to coordinators only")
    pairs: dict[tuple[int, int], set[str]] = {}
    for left, right, kind in queries.dedup_key_pairs(session, MAX_DUPLICATE_ROWS):
        pairs.setdefault((left, right), set()).add(kind)
    cases = queries.cases_by_ids(session, {i for pair in pairs for i in pair})
    indexed = {i: dedup.opened_by_partner(session, c) for i, c in cases.items()}
    out = []
    for (left, right), kinds in sorted(pairs.items()):
        ca, cb = cases.get(left), cases.get(right)
        if ca is None or cb is None or ca.person_id == cb.person_id or not (indexed[left] and indexed[right]):
            continue
        if ca.status in lifecycle.TERMINAL_STATES or cb.status in lifecycle.TERMINAL_STATES:
            continue
        out.append(DuplicatePublic(
            case=cb.code, candidate=ca.code, matched_on=sorted(kinds), statuses=[cb.status, ca.status],
            sites=[cb.site_code, ca.site_code],
            organisations=[queries.organisation_name(session, c.organisation_id or c.created_by_org_id)
                           for c in (cb, ca)],
            age_bands=[cb.age_band, ca.age_band],
            identified_on=[cb.date_identified.isoformat(), ca.date_identified.isoformat()],
            opened_at=[isoformat(cb.opened_at), isoformat(ca.opened_at)]))
    journal.record(session, "case.duplicates", actor=actor, object_type="case", rows=len(out),
                   pairs=[[p.case, p.candidate] for p in out][:200])
    return out


def merge(session: Session, *, actor: Actor, case: ChildCase, into: str, reason: str | None = None) -> CaseEvent:
    """Re-point ``case`` to the person of case ``into`` (coordinators). A case still ``submitted``
    becomes ``merged_duplicate`` of it; a case further along keeps its state and only its person.

    :param reason: why the coordinator thinks they are the same child, kept in the event after
        "duplicate of <code>".
    """
    if actor.role != "coordinator":
        raise WrongRole("merging duplicates is a coordinator's decision")
    target = queries.case_by_code(session, codes.normalise(into)) if codes.is_valid(codes.normalise(into)) else None
    if target is None:
        raise UnknownMergeTarget(f"merge target: no case {into!r}")
    while target.duplicate_of_id is not None:
        target = session.get(ChildCase, target.duplicate_of_id)
    if target.id == case.id:
        raise MergeSelf("a case cannot be merged into itself")
    if case.status in lifecycle.TERMINAL_STATES:
        raise InvalidTransition(f"case {case.code} is {case.status}; nothing to merge",
                                details={"status": case.status, "allowed": lifecycle.allowed_actions(case.status)})
    old_person = queries.person(session, case.person_id)
    new_person = queries.person(session, target.person_id)
    source = case.status
    case.person_id = target.person_id
    if source == lifecycle.SUBMITTED:
        case.status = lifecycle.MERGED
        case.duplicate_of_id = target.id
    case.updated_at = utcnow()
    session.add(case)
    event = journal.new_event(case, actor=actor, action="merge", from_status=source, to_status=case.status,
                              reason=f"duplicate of {target.code}" + (f": {reason.strip()}" if reason and reason.strip() else ""),
                              details={"into": target.code, "from_person": old_person.code if old_person else None,
                                       "to_person": new_person.code if new_person else None})
    session.add(event)
    announce(session, "case.transition", {"case_id": case.id, "action": "merge", "from": source, "to": case.status,
                                          "at": event.at})
    session.flush()
    journal.record(session, "case.merge", actor=actor, object_type="case", object_id=case.code, into=target.code)
    return event
