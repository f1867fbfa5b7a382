"""Issue 9, finding 9: small-count suppression must not be undone by subtraction.

A published KPI hides every count from 1 to 4 *and* whatever would let one be derived from the
figures that are shown (complementary suppression), and it is published for whole calendar
months only. The tests below build the data through the real services, then try every
subtraction an attacker can make within one response.
"""

import itertools
import random
from collections import Counter
from datetime import date

import numpy as np
import pytest

from app.db import session_scope
from app.identity import Actor
from cases.kpi import LEVELS, SMALL_CELL, TOTAL, child_labour_kpi, protect
from tests.cases.conftest import add_site
from tests.cases.factories import withdraw

HIDDEN = ("<5", "suppressed")


def _derivable_small_values(body: dict, site_province: dict[str, str]) -> list[str]:
    """Every subtraction within one response that yields a count from 1 to 4.

    * the total minus the sum of any subset of the published cells of one breakdown;
    * a province minus the sum of any subset of its published sites (a site lies in one province).
    """
    leaks = []
    total = body["value"]
    groups = []
    if total not in HIDDEN:
        for level in ("by_organisation", "by_province", "by_site"):
            groups.append((f"total {total}", total, body[level]))
    for province, value in body["by_province"].items():
        if value in HIDDEN:
            continue
        sites = {s: v for s, v in body["by_site"].items() if site_province.get(s, "unknown") == province}
        groups.append((f"province {province} {value}", value, sites))
    for label, whole, cells in groups:
        shown = {name: v for name, v in cells.items() if v not in HIDDEN}
        for n in range(len(shown) + 1):
            for subset in itertools.combinations(sorted(shown), n):
                rest = whole - sum(shown[name] for name in subset)
                if 0 < rest < SMALL_CELL:
                    leaks.append(f"{label} - {subset} = {rest}")
    for cells in (body["by_organisation"], body["by_province"], body["by_site"], body["companions"]):
        leaks += [f"{name} = {v}" for name, v in cells.items() if isinstance(v, int) and 0 < v < SMALL_CELL]
    return leaks


def test_no_subtraction_within_a_kpi_response_reveals_a_count_under_5(client, kit, world, engine, settings):
    """Naively published, these 8 children would give: total 8, NGO A 5 → NGO B is 3; Lualaba 7 →
    Haut-Katanga is 1; site L1 6 → the two other sites hold 2; Lualaba − L1 → site L2 is 1."""
    add_site(engine, settings, code="L1", province="Lualaba")
    add_site(engine, settings, code="L2", province="Lualaba")
    add_site(engine, settings, code="H1", province="Haut-Katanga")
    site_province = {"L1": "Lualaba", "L2": "Lualaba", "H1": "Haut-Katanga"}
    children = [(world.caseworker_a, "NGO A", "L1")] * 4 + [(world.caseworker_a, "NGO A", "L2")] + \
               [(world.caseworker_b, "NGO B", "L1")] * 2 + [(world.caseworker_b, "NGO B", "H1")]
    for i, (cw, org, site) in enumerate(children):
        code = kit.intake(cw, site_id=site, child_given_name=f"Child{chr(65 + i)}",
                          caregiver_phone=f"+2439700001{i:02d}").code
        withdraw(client, world, code, cw, org)

    month = date.today().strftime("%Y-%m")
    with session_scope(engine) as s:
        exact = child_labour_kpi(s, actor=Actor(user=world.coordinator.user), small_cells=False,
                                 date_from=date.today().replace(day=1), date_to=date(2100, 1, 1))
    assert exact["value"] == 8 and exact["by_province"] == {"Haut-Katanga": 1, "Lualaba": 7}
    assert exact["by_organisation"] == {"NGO A": 5, "NGO B": 3} and exact["by_site"] == {"H1": 1, "L1": 6, "L2": 1}
    # The naive publication of these figures leaks (the test below would catch it).
    naive = {**exact, "by_organisation": {"NGO A": 5, "NGO B": "<5"}, "by_province": {"Haut-Katanga": "<5",
             "Lualaba": 7}, "by_site": {"H1": "<5", "L1": 6, "L2": "<5"}, "companions": {}}
    assert len(_derivable_small_values(naive, site_province)) >= 3

    r = client.get(f"/api/v1/kpis/child-labour?from={month}&to={month}", headers=world.coordinator.bearer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _derivable_small_values(body, site_province) == []
    # What is shown is true, and something is still shown.
    for level in ("by_organisation", "by_province", "by_site"):
        assert set(body[level]) == set(exact[level])
        for name, value in body[level].items():
            assert value in HIDDEN or value == exact[level][name]
    assert body["value"] == 8
    # No breakdown publishes the total and all cells but one.
    for level in ("by_organisation", "by_province", "by_site"):
        assert sum(1 for v in body[level].values() if v in HIDDEN) != 1
    # A caseworker's own view (one organisation) is protected the same way.
    mine = client.get(f"/api/v1/kpis/child-labour?from={month}&to={month}", headers=world.caseworker_a.bearer)
    assert mine.status_code == 200 and _derivable_small_values(mine.json(), site_province) == []


@pytest.mark.parametrize("query", [
    "from=2026-01-15&to=2026-03-31",   # not the first day of a month
    "from=2026-01-01&to=2026-03-30",   # not the last day of a month
    "from=2026-02&to=2026-02-28x",     # not a date
    "from=2026-13&to=2026-12",         # no month 13
    "from=2026-03&to=2026-01",         # backwards
    "from=yesterday",
])
def test_kpi_periods_are_whole_calendar_months(client, world, query):
    r = client.get(f"/api/v1/kpis/child-labour?{query}", headers=world.coordinator.bearer)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "kpi.bad_period"
    assert "whole calendar months" in error["message"] or "is after" in error["message"]


@pytest.mark.parametrize("query,period", [
    ("from=2026-01&to=2026-03", ("2026-01-01", "2026-03-31")),
    ("from=2024-02-01&to=2024-02-29", ("2024-02-01", "2024-02-29")),
    ("from=2025-02&to=2025-02", ("2025-02-01", "2025-02-28")),
])
def test_month_periods_are_accepted(client, world, query, period):
    r = client.get(f"/api/v1/kpis/child-labour?{query}", headers=world.coordinator.bearer)
    assert r.status_code == 200, r.text
    assert (r.json()["from"], r.json()["to"]) == period


# -- the suppression rule on many random tables (pure) -------------------------------------------


def _random_table(rng: random.Random) -> Counter:
    """Children per (organisation, province, site); each site lies in one province."""
    provinces = [f"P{i}" for i in range(rng.randint(1, 3))]
    sites = {f"S{i}": rng.choice(provinces) for i in range(rng.randint(1, 7))}
    orgs = [f"O{i}" for i in range(rng.randint(1, 4))]
    atoms: Counter = Counter()
    for _ in range(rng.randint(1, 40)):
        site = rng.choice(sorted(sites))
        atoms[(rng.choice(orgs), sites[site], site)] += rng.choice((1, 1, 1, 2, 3, 6))
    return atoms


def _span(vectors: list[np.ndarray]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 0))
    _, singular, vt = np.linalg.svd(np.array(vectors), full_matrices=False)
    return vt[singular > 1e-9 * max(1.0, singular[0])]


@pytest.mark.parametrize("seed", range(60))
def test_protect_leaves_no_count_under_5_derivable(seed):
    """Random tables: within each breakdown and within each province, the published figures never
    subtract to a count from 1 to 4; no hidden count under 5 (nor any cross-tabulated count under
    5) is a linear combination of what is published."""
    atoms = _random_table(random.Random(seed))
    result = protect(atoms)
    shown = {k: v for k, v in result.values.items() if k not in result.hidden}
    assert all(not 0 < v < SMALL_CELL for v in shown.values())
    by_level = {level: {k: v for k, v in result.values.items() if k[0] == level} for level in LEVELS}
    relations = []
    if TOTAL in shown:
        relations += [(shown[TOTAL], cells) for cells in by_level.values()]
    for (level, province), value in shown.items():
        if level == "province":
            sites = {("site", a[2]) for a in atoms if a[1] == province}
            relations.append((value, {k: v for k, v in by_level["site"].items() if k in sites}))
    for whole, cells in relations:
        published = [v for k, v in cells.items() if k in shown]
        hidden = [k for k in cells if k in result.hidden]
        assert len(hidden) != 1 or len(cells) == 1 and whole != result.values[hidden[0]]
        for n in range(len(published) + 1):
            for subset in itertools.combinations(published, n):
                assert not 0 < whole - sum(subset) < SMALL_CELL, (atoms, result.hidden)
    # Linear algebra: nothing small lies in the span of the published figures.
    columns = {a: i for i, a in enumerate(sorted(atoms))}

    def vector(members):
        v = np.zeros(len(columns))
        v[[columns[a] for a in members]] = 1
        return v

    def members(key):
        if key == TOTAL:
            return list(atoms)
        i = LEVELS.index(key[0])
        return [a for a in atoms if a[i] == key[1]]

    basis = _span([vector(members(k)) for k in shown])
    small = [members(k) for k in result.hidden if result.values[k] < SMALL_CELL]
    small += [[a] for a, n in atoms.items() if n < SMALL_CELL]
    for group in small:
        v = vector(group)
        residual = v - basis.T @ (basis @ v) if len(basis) else v
        assert np.abs(residual).max() > 1e-6, (atoms, result.hidden, group)
