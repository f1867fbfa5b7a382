"""Builders for the case tests: a case moved through its lifecycle over the API, the KPI over a wide
period, and ``asmfield cases …`` run in-process."""

from datetime import date, timedelta

from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.identity import Actor
from cases.kpi import child_labour_kpi

#: A period wide enough to hold every case a test makes.
WIDE = {"date_from": date(2020, 1, 1), "date_to": date.today() + timedelta(days=1)}

runner = CliRunner()


def go(client, person, code, action, expect=200, **body):
    """POST one transition of case ``code`` as ``person``; asserts the status, returns the JSON."""
    r = client.post(f"/api/v1/cases/{code}/transitions", json={"action": action, **body}, headers=person.bearer)
    assert r.status_code == expect, r.text
    return r.json()


def run(settings, *args, code=0, env=None):
    """``asmfield cases *args`` over the test database; asserts the exit code."""
    env = {"ASMFIELD_DATA_DIR": str(settings.data_dir), "ASMFIELD_SECRET_KEY": settings.secret, **(env or {})}
    if settings.database_url:
        env["ASMFIELD_DATABASE_URL"] = settings.database_url
    result = runner.invoke(cli, ["cases", *args], env=env)
    assert result.exit_code == code, f"{args}: {result.output} {result.exception!r}"
    return result


def kpi(engine, person, **period):
    """The child-labour KPI as ``person`` sees it (no small-cell suppression), over ``period`` or WIDE."""
    with session_scope(engine) as s:
        return child_labour_kpi(s, actor=Actor(user=person.user), small_cells=False, **(period or WIDE))


def observe(client, cw, code, days_ago, *, good=True):
    """A follow-up ``days_ago`` days back: the child found, in school (``good``) or in hazardous work."""
    r = client.post(f"/api/v1/cases/{code}/followups", headers=cw.bearer, json={
        "observed_on": (date.today() - timedelta(days=days_ago)).isoformat(), "child_found": True,
        "in_hazardous_work": not good, "in_school_or_training": good})
    assert r.status_code == 201, r.text
    return r.json()


def deliver(client, cw, code, days_ago, service_type="education"):
    """A service implemented ``days_ago`` days back."""
    r = client.post(f"/api/v1/cases/{code}/services", headers=cw.bearer, json={
        "service_type": service_type, "implemented": True,
        "implemented_on": (date.today() - timedelta(days=days_ago)).isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


def to_services(client, world, code, cw, org):
    """Verified, referred to ``org``, accepted by ``cw``, plan submitted and approved."""
    co = world.coordinator
    for action, who, extra in (("verify", co, {}), ("refer", co, {"organisation": org}), ("accept", cw, {}),
                               ("submit_plan", cw, {}), ("approve_plan", co, {})):
        go(client, who, code, action, **extra)


def withdraw(client, world, code, cw, org):
    """Verified, referred, served, then two good follow-ups 100 days apart."""
    to_services(client, world, code, cw, org)
    deliver(client, cw, code, 250)
    observe(client, cw, code, 200)
    assert observe(client, cw, code, 100)["status"] == "withdrawn_pending_closure"
