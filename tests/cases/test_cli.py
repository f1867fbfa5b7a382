"""`asmfield cases …` in-process over the test database (SQLite file or PostgreSQL)."""

import json

from sqlmodel import select

from app.db import session_scope
from app.models import AuditLog
from tests.cases.factories import go, run, withdraw


def test_purge_review_and_kpi_from_the_command_line(client, kit, world, settings, engine):
    code = kit.intake(world.caseworker_a).code
    withdraw(client, world, code, world.caseworker_a, "NGO A")
    go(client, world.coordinator, code, "approve_closure")
    assert json.loads(run(settings, "purge", "--json").stdout)["cases"] == 0
    now = {"ASMFIELD_CASE_RETENTION_DAYS": "0"}
    assert json.loads(run(settings, "purge", "--dry-run", "--json", env=now).stdout)["codes"] == [code]
    assert "erased identifying fields of 1 case(s)" in run(settings, "purge", env=now).stdout
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "case.purge")).first() is not None

    kit.submit(world.caseworker_a, "child_case_intake", {"intake_date": "2026-01-05", "consent_giver": "not_obtained"})
    assert "1 submission(s) to review" in run(settings, "review").stdout
    out = json.loads(run(settings, "kpi", "--from", "2020-01-01", "--to", "2030-12-31").stdout)
    assert out["value"] == "<5" and out["companions"]["closed_by_reason"] == {"withdrawn_and_supported": "<5"}
    bad = run(settings, "kpi", "--from", "soon", "--to", "2030-12-31", code=1)
    assert "Error:" in bad.stderr
