"""KPI of domain.md §3.6: "# children & youth taken out of the worst forms of child labour and
provided with support", with its companion figures.

A person is counted once across all time, in the first period in which one of their cases met
all three conditions: (1) verified as WFCL while under 18, (2) at least one implemented
remediation service (awareness raising alone does not count), (3) withdrawn: two consecutive
good follow-ups ≥ 90 days apart (``first_withdrawn_on``). The date counted is the latest of the
three. Cases merged as duplicates, rejected cases and cases without consent to statistics
(``consent_reporting``) are left out.

Disclosure control (issue 9, finding 9): counts of children from 1 to 4 are not published, and
neither is anything that would let someone derive one by subtraction within a response
(``protect``: complementary suppression across the total and the organisation, province and site
breakdowns). Published periods are whole calendar months (``month_window``).
"""

from __future__ import annotations

import calendar
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlmodel import Session

from app import audit
from app.identity import Actor
from cases import queries
from cases.errors import BadPeriod, CaseForbidden
from cases.models import ChildCase
from cases.remediation import REMEDIATION_TYPES

SMALL_CELL = 5
WFCL = ("wfcl_hazardous", "wfcl_unconditional")
#: The breakdowns of the headline count, each a partition of the same children.
LEVELS = ("organisation", "province", "site")
TOTAL = ("total", "")
#: How a hidden cell of a breakdown is shown: the same for a count under 5 and for a cell hidden to
#: protect one, so that which is which cannot be told apart.
SUPPRESSED = "suppressed"


def suppress(value: int) -> int | str:
    """Counts of children from 1 to 4 are not shown (re-identification risk)."""
    return "<5" if 0 < value < SMALL_CELL else value


# -- periods ---------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def month_window(date_from: str | None, date_to: str | None, *, today: date) -> tuple[date, date]:
    """The period of a published KPI: whole calendar months only.

    ``from`` is ``YYYY-MM`` or the first day of a month, ``to`` is ``YYYY-MM`` or the last day of a
    month (default: January of this year to the end of this month). Any other day is refused,
    so two overlapping windows never differ by a few days (and a few children).
    """
    start = _month_edge(date_from, first=True, name="from") if date_from else date(today.year, 1, 1)
    end = _month_edge(date_to, first=False, name="to") if date_to else _last_day(today.year, today.month)
    if start > end:
        raise BadPeriod(f"from ({start}) is after to ({end})")
    return start, end


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _month_edge(value: str, *, first: bool, name: str) -> date:
    edge = "first" if first else "last"
    hint = (f"{name} must be a month (YYYY-MM) or the {edge} day of a month (YYYY-MM-DD): the KPI is published "
            "for whole calendar months only")
    month, day = _MONTH.match(value.strip()), _DAY.match(value.strip())
    try:
        if month:
            year, mon = int(month[1]), int(month[2])
            return date(year, mon, 1) if first else _last_day(year, mon)
        if day:
            wanted = date(int(day[1]), int(day[2]), int(day[3]))
            if wanted == (date(wanted.year, wanted.month, 1) if first else _last_day(wanted.year, wanted.month)):
                return wanted
            raise BadPeriod(f"{name}={value[:20]!r} is not the {edge} day of its month; {hint}",
                            details={"field": name})
    except ValueError:
        pass
    raise BadPeriod(f"{name}={value[:20]!r}: {hint}", details={"field": name})


def require_whole_months(date_from: date, date_to: date) -> None:
    if date_from.day != 1 or date_to != _last_day(date_to.year, date_to.month):
        raise BadPeriod(f"the KPI is published for whole calendar months only: {date_from} to {date_to} is not "
                        "(from the first day of a month to the last day of a month)")


# -- complementary suppression ---------------------------------------------------------------

Key = tuple[str, str]


@dataclass
class Protected:
    """Counts of the total and of every breakdown cell, and which of them are hidden."""

    values: dict[Key, int]
    hidden: set[Key]

    def shown(self, key: Key) -> int | str:
        if key not in self.hidden:
            return self.values[key]
        return "<5" if key == TOTAL and self.values[key] < SMALL_CELL else SUPPRESSED

    def breakdown(self, level: str) -> dict[str, int | str]:
        return {name: self.shown((lvl, name)) for lvl, name in sorted(self.values) if lvl == level}


def protect_values(atoms: Counter, levels: tuple[str, ...] = LEVELS) -> dict[Key, int]:
    """Exact counts of the total and of every breakdown cell (nothing hidden)."""
    values: Counter = Counter({TOTAL: 0})
    for atom, n in atoms.items():
        values[TOTAL] += n
        for i, level in enumerate(levels):
            values[(level, atom[i])] += n
    return dict(values)


def protect(atoms: Counter, levels: tuple[str, ...] = LEVELS) -> Protected:
    """Which of the total and the breakdown cells to hide so that no count from 1 to 4 can be read
    or derived by subtraction.

    ``atoms`` counts children per combination of the breakdowns' values (organisation, province,
    site): the finest cross-tabulation, never published itself. Every published figure is a sum
    of atoms. Hidden first: every figure from 1 to 4. Then, until nothing changes:

    * local rules, for every published figure P and every breakdown whose cells lie inside P:
      what P minus its published cells leaves must be 0 or at least 5, and must not be exactly
      one hidden cell; a hidden P must not be the sum of published cells. When one fails, the
      next-smallest published cell is hidden too (or P itself, when no cell is left);
    * a global check (linear algebra over the atoms, assuming the reader knows which
      combinations are empty): no count from 1 to 4, hidden cell or atom, may lie in the span of
      the published figures. When one does, the smallest published figure that overlaps it is hidden.
    """
    cells: dict[Key, set] = defaultdict(set)
    for atom, n in atoms.items():
        if n <= 0:
            continue
        cells[TOTAL].add(atom)
        for i, level in enumerate(levels):
            cells[(level, atom[i])].add(atom)
    values = {key: sum(atoms[a] for a in support) for key, support in cells.items()}
    values.setdefault(TOTAL, 0)
    size = {key: len(support) for key, support in cells.items()}
    # For every figure and every other breakdown: the cells of that breakdown lying inside it.
    inside: list[tuple[Key, list[Key]]] = []
    for parent, support in cells.items():
        for level in levels:
            if parent[0] == level:
                continue
            kids = [k for k in cells if k[0] == level and cells[k] <= support]
            if kids:
                inside.append((parent, kids))
    hidden = {key for key, v in values.items() if 0 < v < SMALL_CELL}
    if not hidden:
        return Protected(values=values, hidden=hidden)
    order = {key: (values[key], key) for key in values}

    def local_leak() -> Key | None:
        for parent, kids in inside:
            pub = [k for k in kids if k not in hidden]
            hid = [k for k in kids if k in hidden]
            rest_size = size[parent] - sum(size[k] for k in pub)
            rest_value = values[parent] - sum(values[k] for k in pub)
            if parent in hidden:
                leak = rest_size == 0
            else:
                leak = 0 < rest_value < SMALL_CELL or (len(hid) == 1 and rest_size == size[hid[0]])
            if leak:
                return min(pub, key=order.get) if pub else parent
        return None

    columns = {atom: i for i, atom in enumerate(sorted(cells[TOTAL], key=repr))}

    def matrix(supports: list[set]) -> np.ndarray:
        m = np.zeros((len(supports), len(columns)))
        for row, support in enumerate(supports):
            m[row, [columns[a] for a in support]] = 1.0
        return m

    small_atoms = [{a} for a, n in sorted(atoms.items(), key=repr) if 0 < n < SMALL_CELL]

    def span_leak() -> Key | None:
        published = [k for k in cells if k not in hidden]
        small = [cells[k] for k in sorted(hidden) if 0 < values[k] < SMALL_CELL] + small_atoms
        if not published or not small:
            return None
        # An orthonormal basis of the published rows, from the eigenvectors of their (small) Gram matrix.
        rows = matrix([cells[k] for k in published])
        eigenvalues, eigenvectors = np.linalg.eigh(rows @ rows.T)
        keep = eigenvalues > 1e-9 * max(1.0, eigenvalues.max())
        basis = (eigenvectors[:, keep].T @ rows) / np.sqrt(eigenvalues[keep])[:, None]
        wanted = matrix(small)
        residual = np.abs(wanted - (wanted @ basis.T) @ basis).max(axis=1)
        for support, r in zip(small, residual, strict=True):
            if r < 1e-6:
                overlapping = [k for k in published if k != TOTAL and cells[k] & support]
                return min(overlapping, key=order.get) if overlapping else TOTAL
        return None

    while (key := local_leak() or span_leak()) is not None:
        if key in hidden:  # cannot happen by construction; never loop, never publish a leak
            if TOTAL in hidden:
                break
            key = TOTAL
        hidden.add(key)
    return Protected(values=values, hidden=hidden)


@dataclass
class _Qualified:
    person_id: int
    on: date
    case: Any


def _counted_cases(session: Session) -> list[Any]:
    return queries.counted_cases(session)


def _implemented_services(session: Session) -> list[tuple[int, date]]:
    return queries.implemented_services(session, REMEDIATION_TYPES)


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


def child_labour_kpi(session: Session, *, actor: Actor | None, date_from: date, date_to: date,
                     small_cells: bool = True, audited: bool = True) -> dict[str, Any]:
    """The KPI and companion figures for [date_from, date_to], by organisation, province and site.

    Coordinators and administrators see every partner; a caseworker sees their NGO's cases only;
    ``actor`` None is the server's own shell (``asmfield cases kpi``), which sees every partner.
    :param small_cells: publishable figures (always on in the API and the CLI): whole calendar
        months only, counts from 1 to 4 and whatever would reveal one by subtraction hidden
        (``protect``). Off only for in-process checks of the exact counts.
    :param audited: record the read (``case.kpi``); a page that shows a monthly trend beside the
        headline figure audits the headline only, not one row per month.
    """
    if actor is not None and actor.role not in ("admin", "coordinator", "caseworker"):
        raise CaseForbidden("case aggregates are for coordinators, administrators and partner NGOs")
    if date_from > date_to:
        raise BadPeriod(f"from ({date_from}) is after to ({date_to})")
    if small_cells:
        require_whole_months(date_from, date_to)
    scope_org = actor.organisation_id if actor is not None and actor.role == "caseworker" else None

    def in_scope(case: ChildCase) -> bool:
        return scope_org is None or case.organisation_id == scope_org

    def in_period(day: date | None) -> bool:
        return day is not None and date_from <= day <= date_to

    orgs = {o.id: o.name for o in queries.organisations(session)}
    all_cases = _counted_cases(session)
    services = _implemented_services(session)
    counted = [q for q in qualification_dates(session, all_cases, services).values()
               if in_period(q.on) and in_scope(q.case)]
    atoms: Counter = Counter((orgs.get(q.case.organisation_id, "unassigned"), q.case.province or "unknown",
                              q.case.site_code or "unknown") for q in counted)
    cells = protect(atoms) if small_cells else Protected(values=protect_values(atoms), hidden=set())

    cases = {c.id: c for c in all_cases if in_scope(c)}
    identified = {c.person_id for c in cases.values() if in_period(c.date_identified)}
    in_services = {cases[cid].person_id for cid, on in services if cid in cases and in_period(on)}
    withdrawn: set[int] = set()
    relapses: set[int] = set()
    for case_id, action, reason, at, details in queries.progress_events(session):
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
        "value": cells.shown(TOTAL),
        "companions": {
            "identified": fmt(len(identified)), "in_services": fmt(len(in_services)),
            "withdrawn": fmt(len(withdrawn)), "relapses": fmt(len(relapses)),
            "lost_to_follow_up": fmt(len(closed.get("lost_to_follow_up", ()))),
            "closed_by_reason": {k: fmt(len(v)) for k, v in sorted(closed.items())},
        },
        "by_organisation": cells.breakdown("organisation"),
        "by_province": cells.breakdown("province"),
        "by_site": cells.breakdown("site"),
        "small_cells_suppressed_below": SMALL_CELL if small_cells else None,
        "suppression": (f"counts from 1 to 4 are shown as \"<5\"; in the breakdowns, such a count and every "
                        "figure that would let one be derived by subtraction (the total included) are shown as "
                        f"\"{SUPPRESSED}\"") if small_cells else None,
        "definition": "distinct persons counted once across all time: verified WFCL under 18, an implemented "
                      "remediation service, two consecutive good follow-ups >= 90 days apart; excludes merged "
                      "duplicates and cases without consent to statistics",
    }
    if audited:
        audit.record(session, "case.kpi", actor=actor, label=None if actor else "cli", object_type="kpi",
                     object_id="child-labour", date_from=date_from.isoformat(), date_to=date_to.isoformat(),
                     auth=actor.via if actor else "cli", suppressed=len(cells.hidden))
    return result
