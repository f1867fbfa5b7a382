"""The §3.6 KPI: distinct persons counted once across all time, with companion figures."""

from datetime import date, timedelta

from sqlmodel import func, select

from app.db import session_scope
from app.identity import Actor
from app.models import AuditLog
from cases.duplicates import duplicate_candidates
from cases.kpi import child_labour_kpi, suppress
from tests.cases.factories import deliver, go, kpi, observe, to_services, withdraw


def test_the_kpi_counts_a_child_once_across_two_cases_relapse_and_merge(client, kit, world, engine):
    cw_a, cw_b, co = world.caseworker_a, world.caseworker_b, world.coordinator
    first = kit.intake(cw_a).code
    withdraw(client, world, first, cw_a, "NGO A")
    assert kpi(engine, co)["value"] == 1

    # Relapse: the closure is refused, the child is back in services, then withdrawn again.
    go(client, co, first, "reject_closure", reason="child seen at the pit last week")
    go(client, cw_a, first, "resume_services", reason="relapse")
    deliver(client, cw_a, first, 130, "vocational_training")
    observe(client, cw_a, first, 120)
    assert observe(client, cw_a, first, 10)["status"] == "withdrawn_pending_closure"
    go(client, co, first, "approve_closure")
    figures = kpi(engine, co)
    assert figures["value"] == 1
    assert figures["companions"]["relapses"] == 1 and figures["companions"]["withdrawn"] == 1
    assert figures["companions"]["closed_by_reason"] == {"withdrawn_and_supported": 1}

    # The same child, found again and taken in by another NGO: a second case, a second person...
    second = kit.intake(cw_b, child_family_name="Kabeia", age_estimated_years=14).code
    withdraw(client, world, second, cw_b, "NGO B")
    assert kpi(engine, co)["value"] == 2
    with session_scope(engine) as s:
        pairs = duplicate_candidates(s, actor=Actor(user=co.user))
    assert [(p.case, p.candidate) for p in pairs] == [(second, first)]
    assert "phone" in pairs[0].matched_on and "name_year" in pairs[0].matched_on

    # ...until the coordinator merges it: the child is counted once, for the NGO that got there first.
    r = client.post(f"/api/v1/cases/{second}/merge", json={"into": first}, headers=co.bearer)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn_pending_closure"
    figures = kpi(engine, co)
    assert figures["value"] == 1 and figures["by_organisation"] == {"NGO A": 1}
    assert figures["companions"]["identified"] == 1 and figures["companions"]["withdrawn"] == 1
    assert kpi(engine, cw_b)["value"] == 0 and kpi(engine, cw_a)["value"] == 1


def test_the_period_holds_the_day_all_conditions_were_first_met(client, kit, world, engine):
    code = kit.intake(world.caseworker_a).code
    withdraw(client, world, code, world.caseworker_a, "NGO A")
    today = date.today()
    assert kpi(engine, world.coordinator, date_from=today, date_to=today)["value"] == 1
    assert kpi(engine, world.coordinator, date_from=today - timedelta(days=300),
               date_to=today - timedelta(days=1))["value"] == 0


def test_awareness_alone_and_no_consent_to_statistics_do_not_count(client, kit, world, engine):
    cw = world.caseworker_a
    aware = kit.intake(cw).code
    to_services(client, world, aware, cw, "NGO A")
    deliver(client, cw, aware, 250, "awareness")
    observe(client, cw, aware, 200)
    assert observe(client, cw, aware, 100)["status"] == "withdrawn_pending_closure"
    private = kit.intake(cw, child_given_name="Ilunga", caregiver_phone="+243970000002",
                         consent_reporting="no").code
    withdraw(client, world, private, cw, "NGO A")
    assert kpi(engine, world.coordinator)["value"] == 0


def test_the_api_suppresses_small_counts_and_checks_the_period(client, kit, world):
    code = kit.intake(world.caseworker_a).code
    withdraw(client, world, code, world.caseworker_a, "NGO A")
    r = client.get("/api/v1/kpis/child-labour", headers=world.coordinator.bearer)
    assert r.status_code == 200
    body = r.json()
    assert body["value"] == "<5" and body["by_site"] == {"unknown": "suppressed"}
    assert body["companions"]["relapses"] == 0
    r = client.get("/api/v1/kpis/child-labour?from=2026-05-01&to=2026-01-31", headers=world.coordinator.bearer)
    assert r.status_code == 422 and r.json()["error"]["code"] == "kpi.bad_period"
    r = client.get("/api/v1/kpis/child-labour?from=yesterday", headers=world.coordinator.bearer)
    assert r.status_code == 422 and r.json()["error"]["code"] == "kpi.bad_period"


def test_suppress():
    assert [suppress(n) for n in (0, 1, 4, 5, 12)] == [0, "<5", "<5", 5, 12]


def test_each_read_of_the_kpi_is_audited_but_a_page_trend_is_not_one_row_per_month(world, engine):
    def audit_rows() -> int:
        with session_scope(engine) as s:
            return s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "case.kpi")).one()

    before = audit_rows()
    with session_scope(engine) as s:
        coordinator = Actor(user=s.merge(world.coordinator.user))
        child_labour_kpi(s, actor=coordinator, date_from=date(2026, 1, 1), date_to=date(2026, 6, 30))
        for month in range(1, 7):
            child_labour_kpi(s, actor=coordinator, date_from=date(2026, month, 1),
                             date_to=date(2026, month + 1, 1) - timedelta(days=1), audited=False)
    assert audit_rows() == before + 1
