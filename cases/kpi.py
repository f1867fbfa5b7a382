"""KPI of domain.md §3.6: "# children & youth taken out of the worst forms of child labour and
provided with support", with its companion figures.

A person is counted once across all time, in the first period in which one of their cases met
all three conditions: (1) verified as WFCL while under 18, (2) at least one implemented
remediation service (awareness raising alone does not count), (3) withdrawn: two consecutive
good follow-ups ≥ 90 days apart (``first_withdrawn_on``). The date counted is the latest of the
three. Cases merged as duplicates, rejected cases and cases without consent to statistics
(``consent_reporting``) are left out. Counts of children below 5 are shown as "<5".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from app import audit
from app.errors import Forbidden, Invalid
from app.models import Organisation
from cases import lifecycle
from cases.models import CaseEvent, CaseService, ChildCase
from cases.service import REMEDIATION_TYPES

if TYPE_CHECKING:
    from app.auth import Actor

SMALL_CELL = 5
WFCL = ("wfcl_hazardous", "wfcl_unconditional")


def suppress(value: int) -> int | str:
    """Counts of children from 1 to 4 are not shown (re-identification risk)."""
    return "<5" if 0 < value < SMALL_CELL else value


@dataclass
class _Qualified:
    person_id: int
    on: date
    case: Any


#: The columns the KPI reads (plain rows, not ORM objects: 10,000 cases in well under a second).
_COLUMNS = (ChildCase.id, ChildCase.person_id, ChildCase.organisation_id, ChildCase.province, ChildCase.site_code,
            ChildCase.classification, ChildCase.verified_at, ChildCase.age_at_identification,
            ChildCase.first_withdrawn_on, ChildCase.date_identified, ChildCase.closed_at, ChildCase.closure_reason)


def _counted_cases(session: Session) -> list[Any]:
    return list(session.exec(select(*_COLUMNS).where(
        ChildCase.duplicate_of_id == None,  # noqa: E711
        ChildCase.status.notin_((lifecycle.MERGED, lifecycle.REJECTED)),
        ChildCase.consent_reporting == True)).all())  # noqa: E712


def _implemented_services(session: Session) -> list[tuple[int, date]]:
    return list(session.exec(select(CaseService.case_id, CaseService.implemented_on).where(
        CaseService.implemented == True, CaseService.implemented_on != None,  # noqa: E711, E712
        CaseService.service_type.in_(REMEDIATION_TYPES))).all())


def qualification_dates(session: Session, cases: list[Any] | None = None,
                        services: list[tuple[int, date]] | None = None) -> dict[int, _Qualified]:
    """person id → the first date all three conditions held, with the case that met them (all time)."""
    cases = _counted_cases(session) if cases is None else cases
    first_service: dict[int, date] = {}
    for case_id, on in (_implemented_services(session) if services is None else services):
        if case_id not in first_service or on < first_service[case_id]:
            first_service[case_id] = on
    out: dict[int, _Qualified] = {}
    for case in cases:
        if (case.classification not in WFCL or case.verified_at is None or case.age_at_identification is None
                or case.age_at_identification >= 18 or case.first_withdrawn_on is None
                or case.id not in first_service):
            continue
        on = max(case.verified_at.date(), first_service[case.id], case.first_withdrawn_on)
        best = out.get(case.person_id)
        if best is None or on < best.on:
            out[case.person_id] = _Qualified(case.person_id, on, case)
    return out


def child_labour_kpi(session: Session, *, actor: Actor, date_from: date, date_to: date,
                     small_cells: bool = True) -> dict[str, Any]:
    """The KPI and companion figures for [date_from, date_to], by organisation, province and site.

    Coordinators and administrators see every partner; a caseworker sees their NGO's cases only.
    :param small_cells: suppress child counts 1–4 as "<5" (always on in the API).
    """
    if actor.role not in ("admin", "coordinator", "caseworker"):
        raise Forbidden("case aggregates are for coordinators, administrators and partner NGOs",
                        code="case.forbidden")
    if date_from > date_to:
        raise Invalid(f"from ({date_from}) is after to ({date_to})", code="kpi.bad_period")
    scope_org = actor.organisation_id if actor.role == "caseworker" else None

    def in_scope(case: ChildCase) -> bool:
        return scope_org is None or case.organisation_id == scope_org

    def in_period(day: date | None) -> bool:
        return day is not None and date_from <= day <= date_to

    orgs = {o.id: o.name for o in session.exec(select(Organisation)).all()}
    all_cases = _counted_cases(session)
    services = _implemented_services(session)
    counted = [q for q in qualification_dates(session, all_cases, services).values()
               if in_period(q.on) and in_scope(q.case)]
    by: dict[str, Counter] = {"organisation": Counter(), "province": Counter(), "site": Counter()}
    for q in counted:
        by["organisation"][orgs.get(q.case.organisation_id, "unassigned")] += 1
        by["province"][q.case.province or "unknown"] += 1
        by["site"][q.case.site_code or "unknown"] += 1

    cases = {c.id: c for c in all_cases if in_scope(c)}
    identified = {c.person_id for c in cases.values() if in_period(c.date_identified)}
    in_services = {cases[cid].person_id for cid, on in services if cid in cases and in_period(on)}
    withdrawn: set[int] = set()
    relapses: set[int] = set()
    for case_id, action, reason, at, details in session.exec(
            select(CaseEvent.case_id, CaseEvent.action, CaseEvent.reason, CaseEvent.at, CaseEvent.details)
            .where(CaseEvent.action.in_(("criteria_met", "resume_services")))).all():
        if case_id not in cases:
            continue
        if action == "criteria_met" and in_period(date.fromisoformat((details or {}).get("withdrawn_on", "1900-01-01"))):
            withdrawn.add(cases[case_id].person_id)
        elif action == "resume_services" and reason == "relapse" and in_period(at.date()):
            relapses.add(cases[case_id].person_id)
    closed: dict[str, set[int]] = defaultdict(set)
    for c in cases.values():
        if c.closed_at is not None and in_period(c.closed_at.date()) and c.closure_reason:
            closed[c.closure_reason].add(c.person_id)

    fmt = suppress if small_cells else (lambda v: v)
    result = {
        "indicator": "children and youth taken out of the worst forms of child labour and provided with support",
        "from": date_from.isoformat(), "to": date_to.isoformat(),
        "scope": orgs.get(scope_org) if scope_org else "all partners",
        "value": fmt(len(counted)),
        "companions": {
            "identified": fmt(len(identified)), "in_services": fmt(len(in_services)),
            "withdrawn": fmt(len(withdrawn)), "relapses": fmt(len(relapses)),
            "lost_to_follow_up": fmt(len(closed.get("lost_to_follow_up", ()))),
            "closed_by_reason": {k: fmt(len(v)) for k, v in sorted(closed.items())},
        },
        "by_organisation": {k: fmt(v) for k, v in sorted(by["organisation"].items())},
        "by_province": {k: fmt(v) for k, v in sorted(by["province"].items())},
        "by_site": {k: fmt(v) for k, v in sorted(by["site"].items())},
        "small_cells_suppressed_below": SMALL_CELL if small_cells else None,
        "definition": "distinct persons counted once across all time: verified WFCL under 18, an implemented "
                      "remediation service, two consecutive good follow-ups >= 90 days apart; excludes merged "
                      "duplicates and cases without consent to statistics",
    }
    audit.record(session, "case.kpi", actor=actor, object_type="kpi", object_id="child-labour",
                 date_from=date_from.isoformat(), date_to=date_to.isoformat())
    return result
