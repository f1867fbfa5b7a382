"""Authorisation matrix: every case route × every role × own/other organisation. No route returns
another organisation's case data; identities go only where domain.md §3.5 allows."""

from datetime import date

import pytest
from sqlmodel import select

from app.db import session_scope
from app.identity import Actor
from cases import access
from cases.models import ChildCase
from sync.models import Submission
from tests.cases.factories import go

ROLES = ("admin", "monitor", "cw_other", "coordinator", "cw_own")  # the allowed ones last: some routes write

#: route -> expected status per role, for a case owned by NGO A in state ``accepted``.
MATRIX = {
    "list":       {"admin": 403, "monitor": 200, "cw_other": 200, "coordinator": 200, "cw_own": 200},
    "detail":     {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 200, "cw_own": 200},
    "identity":   {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 403, "cw_own": 200},
    "transition": {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 403, "cw_own": 200},
    "service":    {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 403, "cw_own": 201},
    "followup":   {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 403, "cw_own": 409},
    "consent":    {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 200, "cw_own": 200},
    "photo":      {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 403, "cw_own": 403},  # no photo consent
    "merge":      {"admin": 403, "monitor": 404, "cw_other": 404, "coordinator": 200, "cw_own": 403},
    "duplicates": {"admin": 403, "monitor": 403, "cw_other": 403, "coordinator": 200, "cw_own": 403},
    "review":     {"admin": 403, "monitor": 403, "cw_other": 403, "coordinator": 200, "cw_own": 403},
    "resolve":    {"admin": 403, "monitor": 403, "cw_other": 403, "coordinator": 200, "cw_own": 403},
    "kpi":        {"admin": 200, "monitor": 403, "cw_other": 200, "coordinator": 200, "cw_own": 200},
}


@pytest.fixture
def scene(client, kit, world):
    """A case of NGO A in state accepted, another case to merge into, a flagged submission."""
    cw, co = world.caseworker_a, world.coordinator
    code = kit.intake(cw).code
    for action, who in (("verify", co), ("refer", co), ("accept", cw)):
        go(client, who, code, action)
    other = kit.intake(cw, child_given_name="Ilunga").code
    flagged = kit.submit(cw, "child_case_intake", _adult())
    people = {"admin": world.admin, "monitor": world.monitor, "cw_other": world.caseworker_b,
              "coordinator": co, "cw_own": cw}
    return {"code": code, "other": other, "flagged": flagged.instance_id, "people": people}


def _adult():
    from tests.cases.conftest import eligible_answers

    return eligible_answers(age_estimated_years=20)


def _call(client, route, scene, headers):
    code = scene["code"]
    calls = {
        "list": lambda: client.get("/api/v1/cases", headers=headers),
        "detail": lambda: client.get(f"/api/v1/cases/{code}", headers=headers),
        "identity": lambda: client.get(f"/api/v1/cases/{code}/identity", headers=headers),
        "transition": lambda: client.post(f"/api/v1/cases/{code}/transitions", json={"action": "submit_plan"},
                                          headers=headers),
        "service": lambda: client.post(f"/api/v1/cases/{code}/services", json={"service_type": "education"},
                                       headers=headers),
        "followup": lambda: client.post(f"/api/v1/cases/{code}/followups", headers=headers,
                                        json={"observed_on": date.today().isoformat(), "child_found": True,
                                              "in_hazardous_work": False, "in_school_or_training": True}),
        "consent": lambda: client.post(f"/api/v1/cases/{code}/consent", json={"purpose": "reporting", "given": True},
                                       headers=headers),
        "photo": lambda: client.get(f"/api/v1/cases/{code}/photos/child.jpg", headers=headers),
        "merge": lambda: client.post(f"/api/v1/cases/{code}/merge", json={"into": scene["other"]}, headers=headers),
        "duplicates": lambda: client.get("/api/v1/cases/duplicates", headers=headers),
        "review": lambda: client.get("/api/v1/cases/review", headers=headers),
        "resolve": lambda: client.post(f"/api/v1/cases/review/{scene['flagged']}", json={"decision": "rejected"},
                                       headers=headers),
        "kpi": lambda: client.get("/api/v1/kpis/child-labour?from=2020-01-01&to=2030-12-31", headers=headers),
    }
    return calls[route]()


@pytest.mark.parametrize("route", list(MATRIX))
def test_every_route_for_every_role(client, scene, route):
    for role in ROLES:
        person = scene["people"][role]
        r = _call(client, route, scene, person.bearer)
        assert r.status_code == MATRIX[route][role], f"{route} as {role}: {r.status_code} {r.text}"
        if role in ("admin", "monitor", "cw_other"):
            # Nothing of NGO A's cases reaches anyone else: no names, no other codes, no person ids.
            assert "Mwamba" not in r.text and "Ilunga" not in r.text and "+243" not in r.text
            assert scene["other"] not in r.text and '"person"' not in r.text
        if route == "list" and role in ("monitor", "cw_other"):
            assert r.json() == {"cases": []}


def test_without_credentials_every_route_is_401(client, scene):
    for route in MATRIX:
        assert _call(client, route, scene, {}).status_code == 401, route


def test_a_device_token_cannot_read_cases(client, scene, world, engine):
    from app import accounts

    with session_scope(engine) as s:
        _, token = accounts.create_device(s, name="tablet-a", user=world.caseworker_a.user.id)
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_the_coordinator_reads_identity_only_before_the_ngo_accepts(client, kit, world):
    co, cw = world.coordinator, world.caseworker_a
    code = kit.intake(co, referral_partner="NGO A").code
    assert client.get(f"/api/v1/cases/{code}/identity", headers=co.bearer).status_code == 200
    # Not yet referred: the proposed NGO sees nothing.
    assert client.get(f"/api/v1/cases/{code}", headers=cw.bearer).status_code == 404
    go(client, co, code, "verify")
    go(client, co, code, "refer")
    assert client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer).status_code == 200
    go(client, cw, code, "accept")
    r = client.get(f"/api/v1/cases/{code}/identity", headers=co.bearer)
    assert r.status_code == 403 and r.json()["error"]["code"] == "case.identity_forbidden"


def test_a_monitor_who_created_a_case_sees_a_status_summary_after_acceptance(client, kit, world, engine):
    cw, co, monitor = world.caseworker_a, world.coordinator, world.monitor
    code = kit.intake(co).code
    with session_scope(engine) as s:  # e.g. an intake a monitor made under an earlier form policy
        case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
        case.created_by_user_id = monitor.user.id
        s.add(case)
    before = client.get(f"/api/v1/cases/{code}", headers=monitor.bearer).json()
    assert before["identity_readable"] is True and "site" in before
    for action, who, extra in (("verify", co, {}), ("refer", co, {"organisation": "NGO A"}), ("accept", cw, {})):
        go(client, who, code, action, **extra)
    after = client.get(f"/api/v1/cases/{code}", headers=monitor.bearer).json()
    assert set(after) == {"code", "status", "updated_at"} and after["status"] == "accepted"
    assert client.get(f"/api/v1/cases/{code}/identity", headers=monitor.bearer).status_code == 403
    assert client.get(f"/api/v1/cases/{code}", headers=world.monitor2.bearer).status_code == 404


def test_case_submissions_are_readable_only_as_the_case_is(kit, world, engine):

    case = kit.intake(world.caseworker_a)
    flagged = kit.submit(world.caseworker_a, "child_case_intake", _adult())
    with session_scope(engine) as s:
        intake = s.exec(select(Submission).where(
            Submission.root_instance_id == case.intake_root_instance_id)).one()
        restricted = s.get(Submission, flagged.id)
        may = {name: access.may_read_case_submission(s, Actor(user=getattr(world, name).user), intake)
               for name in ("admin", "coordinator", "monitor", "caseworker_a", "caseworker_b")}
        assert may == {"admin": False, "coordinator": True, "monitor": False, "caseworker_a": True,
                       "caseworker_b": False}
        assert access.may_read_case_submission(s, Actor(user=world.coordinator.user), restricted)
        assert not access.may_read_case_submission(s, Actor(user=world.caseworker_a.user), restricted)
        # An unsaved row of a form that does not exist: no ingest can make it, the check only reads form_id.
        not_a_case_form = Submission(instance_id="uuid:x", root_instance_id="uuid:x", form_id=-1,
                                     form_version_id=1, xml_sha256="", xml="")
        assert access.may_read_case_submission(s, Actor(user=world.monitor.user), not_a_case_form)
