"""Issue 9, finding 11: counts through paging.

Walking the intake list with ``limit=1`` counted other NGOs' intakes through empty pages that
still carried a next cursor. Rows are now scoped before paging: a page never reflects a row the
caller may not read — no empty page with a cursor, no total counting other organisations' rows.
"""

import pytest

from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from sync import reading
from tests.cases.conftest import eligible_answers


def _walk_submissions(client, person, form_id):
    """Every page of the generic submission list with limit=1, following next_cursor."""
    pages, cursor = [], None
    while len(pages) < 50:
        url = f"/api/v1/forms/{form_id}/submissions?limit=1" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url, headers=person.bearer)
        pages.append(r)
        if r.status_code != 200:
            break
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    return pages


def _walk_cases(client, person):
    pages = []
    for offset in range(10):
        r = client.get(f"/api/v1/cases?limit=1&offset={offset}", headers=person.bearer)
        assert r.status_code == 200 and set(r.json()) == {"cases"}  # no total, no cursor
        pages.append(r.json()["cases"])
    return pages


@pytest.fixture
def intakes(kit, world):
    """Three intakes of NGO B, one of NGO A, one flagged (adult) intake of NGO B."""

    b = [kit.intake(world.caseworker_b, child_given_name=f"B{i}", caregiver_phone=f"+24397000010{i}").code
         for i in range(3)]
    a = kit.intake(world.caseworker_a).code
    kit.submit(world.caseworker_b, "child_case_intake", eligible_answers(age_estimated_years=22))
    return {"a": [a], "b": b}


def test_walking_the_generic_submission_list_counts_nothing(client, world, intakes):
    """The attacker's route: GET /api/v1/forms/child_case_intake/submissions with limit=1."""
    for person in (world.caseworker_a, world.coordinator, world.monitor, world.admin):
        pages = _walk_submissions(client, person, "child_case_intake")
        assert len(pages) == 1  # refused at once, or one empty page without a cursor
        r = pages[0]
        assert r.status_code in (200, 403, 404), r.text
        if r.status_code == 200:
            assert r.json() == {"items": [], "next_cursor": None}


def test_the_submission_service_scopes_case_rows_before_paging(engine, world, intakes):
    """Below the route: the paging function itself returns no page and no cursor for case rows."""
    for person in (world.caseworker_a, world.coordinator):
        with session_scope(engine) as s:
            page = reading.list_submissions(s, actor=Actor(user=person.user), hooks=build_hooks(),
                                            xml_form_id="child_case_intake", limit=1)
        assert (page.items, page.next_cursor) == ([], None)


def test_walking_the_case_list_with_limit_1_shows_only_readable_cases(client, world, intakes):
    def walked(person):
        pages = _walk_cases(client, person)
        full = [p for p in pages if p]
        assert all(len(p) == 1 for p in full) and pages == full + [[]] * (len(pages) - len(full))
        return {p[0]["code"] for p in full}

    assert walked(world.caseworker_a) == set(intakes["a"])
    assert walked(world.caseworker_b) == set(intakes["b"])
    assert walked(world.monitor) == set()
    assert walked(world.coordinator) == set(intakes["a"]) | set(intakes["b"])
