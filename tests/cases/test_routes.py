"""The case API: a case walked through every state by the right people, every wrong role or
transition refused with a clear 4xx, and nothing stored half-way."""

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from app.db import session_scope
from app.models import AuditLog
from cases.models import CaseEvent
from tests.cases.factories import go
from tests.conftest import make_person


def statuses(kit, code):
    with session_scope(kit.engine) as s:
        case = kit.reload(code)
        return [(e.action, e.from_status, e.to_status) for e in
                s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)).all()]


def test_a_case_walks_through_every_state_with_the_right_people(client, kit, world):
    cw, co = world.caseworker_a, world.coordinator
    code = kit.intake(co, referral_partner="NGO A").code
    assert go(client, co, code, "verify", risk_level="high")["status"] == "verified"
    body = go(client, co, code, "refer")
    assert (body["status"], body["organisation"]) == ("referred", "NGO A")
    sent = next(e["at"] for e in body["events"] if e["action"] == "refer")
    due = datetime.fromisoformat(body["referral_due_at"]) - datetime.fromisoformat(sent)
    assert due == timedelta(hours=48)  # high risk: 48 hours to accept
    assert go(client, cw, code, "accept")["status"] == "accepted"
    assert go(client, cw, code, "submit_plan")["status"] == "case_plan_pending_approval"
    # Four-eyes: the caseworker who asked cannot approve her own plan.
    err = go(client, cw, code, "approve_plan", expect=409)["error"]
    assert err["code"] == "case.four_eyes"
    assert go(client, co, code, "reject_plan", reason="add vocational training")["status"] == "assessment"
    go(client, cw, code, "submit_plan")
    assert go(client, co, code, "approve_plan")["status"] == "in_services"
    err = go(client, cw, code, "start_monitoring", expect=422)["error"]
    assert err["code"] == "case.no_implemented_service"
    start = date.today() - timedelta(days=300)
    r = client.post(f"/api/v1/cases/{code}/services", headers=cw.bearer,
                    json={"service_type": "education", "implemented": True, "implemented_on": start.isoformat()})
    assert r.status_code == 201 and r.json()["status"] == "monitoring"
    assert go(client, cw, code, "resume_services", reason="relapse")["status"] == "in_services"
    go(client, cw, code, "start_monitoring")
    for days in (20, 130):
        r = client.post(f"/api/v1/cases/{code}/followups", headers=cw.bearer, json={
            "observed_on": (date.today() - timedelta(days=200 - days)).isoformat(), "child_found": True,
            "in_hazardous_work": False, "in_school_or_training": True})
        assert r.status_code == 201, r.text
    assert r.json()["status"] == "withdrawn_pending_closure"
    err = go(client, cw, code, "approve_closure", expect=403)["error"]
    assert err["code"] == "case.wrong_role"
    body = go(client, co, code, "approve_closure")
    assert (body["status"], body["closure_reason"]) == ("closed", "withdrawn_and_supported")
    go(client, cw, code, "reopen", expect=403, reason="seen again")
    assert go(client, co, code, "reopen", reason="seen again at the washing pond")["status"] == "reopened"
    assert go(client, cw, code, "resume_assessment")["status"] == "assessment"

    trail = statuses(kit, code)
    assert [a for a, _, _ in trail] == [
        "submit", "verify", "refer", "accept", "submit_plan", "reject_plan", "submit_plan", "approve_plan",
        "start_monitoring", "resume_services", "start_monitoring", "criteria_met", "approve_closure", "reopen",
        "resume_assessment"]
    assert all(frm != to for a, frm, to in trail if a != "submit")
    with session_scope(kit.engine) as s:
        system = s.exec(select(CaseEvent).where(CaseEvent.action == "criteria_met")).one()
        assert system.actor_user_id is None and system.actor_role == "system"


def test_the_side_paths_reject_merge_decline_transfer_and_consent_withdrawal(client, kit, world):
    cw_a, cw_b, co = world.caseworker_a, world.caseworker_b, world.coordinator
    rejected = kit.intake(co).code
    assert go(client, co, rejected, "reject", reason="no_child_labour")["status"] == "rejected_not_eligible"
    first = kit.intake(co, referral_partner="NGO A").code
    dup = kit.intake(co, referral_partner="NGO A").code
    r = client.post(f"/api/v1/cases/{dup}/merge", json={"into": first}, headers=co.bearer)
    assert r.status_code == 200 and r.json()["status"] == "merged_duplicate" and r.json()["duplicate_of"] == first
    assert r.json()["person"] == client.get(f"/api/v1/cases/{first}", headers=co.bearer).json()["person"]
    withdrawn = kit.intake(co).code
    go(client, co, withdrawn, "verify")
    body = go(client, co, withdrawn, "close_consent_withdrawn")
    assert (body["status"], body["closure_reason"]) == ("closed", "consent_withdrawn")

    go(client, co, first, "verify")
    go(client, co, first, "refer")
    assert go(client, cw_a, first, "decline", reason="no capacity in Kanina")["status"] == "verified"
    assert client.get(f"/api/v1/cases/{first}", headers=cw_a.bearer).status_code == 404
    go(client, co, first, "refer", organisation="NGO A")
    go(client, cw_a, first, "accept")
    go(client, cw_a, first, "submit_plan")
    go(client, co, first, "approve_plan")
    body = go(client, co, first, "transfer", organisation="NGO B")
    assert (body["status"], body["organisation"]) == ("transferred", "NGO B")
    assert client.get(f"/api/v1/cases/{first}", headers=cw_a.bearer).status_code == 404
    assert go(client, cw_b, first, "accept")["status"] == "accepted"


def test_closure_for_another_reason_needs_a_second_coordinator(client, kit, world, engine):
    co = world.coordinator
    with session_scope(engine) as s:
        co2 = make_person(s, "coord2", "coordinator", world.coord_org)
    code = kit.intake(world.caseworker_a).code
    go(client, co, code, "verify")
    go(client, co, code, "refer", organisation="NGO A")
    go(client, world.caseworker_a, code, "accept")
    go(client, co, code, "request_closure", reason="death")
    assert go(client, co, code, "approve_closure", expect=409)["error"]["code"] == "case.four_eyes"
    body = go(client, co2, code, "approve_closure")
    assert (body["status"], body["closure_reason"]) == ("closed", "death")


def test_lost_to_follow_up_needs_two_failed_followups(client, kit, world):
    cw, co = world.caseworker_a, world.coordinator
    code = kit.intake(cw).code
    for action, who in (("verify", co), ("refer", co), ("accept", cw), ("submit_plan", cw), ("approve_plan", co)):
        go(client, who, code, action)
    err = go(client, cw, code, "request_closure", expect=422, reason="lost_to_follow_up")["error"]
    assert err["code"] == "case.not_lost" and "has 0" in err["message"]
    for days in (40, 10):
        client.post(f"/api/v1/cases/{code}/followups", headers=cw.bearer, json={
            "observed_on": (date.today() - timedelta(days=days)).isoformat(), "child_found": False})
    assert go(client, cw, code, "request_closure", reason="lost_to_follow_up")["pending_request"] == {
        "kind": "closure", "reason": "lost_to_follow_up"}
    assert go(client, co, code, "approve_closure")["closure_reason"] == "lost_to_follow_up"


def test_referral_without_consent_to_share_is_refused_and_nothing_changes(client, kit, world):
    co = world.coordinator
    code = kit.intake(co, consent_share_partner="no", referral_partner="NGO A").code
    go(client, co, code, "verify")
    before = statuses(kit, code)
    err = go(client, co, code, "refer", expect=422)["error"]
    assert err["code"] == "case.no_consent_to_share" and "consent" in err["message"]
    after = kit.reload(code)
    assert (after.status, after.organisation_id) == ("verified", None)
    assert statuses(kit, code) == before


def test_a_referral_names_a_partner_ngo(client, kit, world):
    co = world.coordinator
    code = kit.intake(co).code  # no partner proposed
    go(client, co, code, "verify")
    for target, error in ((None, "case.unknown_organisation"), (99999999999999999999, "case.unknown_organisation"),
                          ("Coordination", "case.not_an_ngo"), ("nobody", "case.unknown_organisation")):
        body = {} if target is None else {"organisation": target}
        assert go(client, co, code, "refer", expect=422, **body)["error"]["code"] == error
    assert kit.reload(code).status == "verified"
    assert go(client, co, code, "refer", organisation=world.ngo_b.id)["organisation"] == "NGO B"


@pytest.mark.parametrize("body,status,code", [
    ({"action": "accept"}, 409, "case.invalid_transition"),
    ({"action": "fly"}, 422, "case.unknown_action"),
    ({"action": "merge"}, 422, "case.use_merge"),
    ({"action": "reject"}, 422, "case.reason"),
    ({"action": "reject", "reason": "because"}, 422, "case.reason"),
    ({"action": "verify", "risk_level": "extreme"}, 422, "request.invalid"),
    ({"reason": "no action"}, 422, "request.invalid"),
])
def test_bad_transition_input_is_a_clear_4xx_and_stores_nothing(client, kit, world, body, status, code):
    case_code = kit.intake(world.coordinator).code
    before = statuses(kit, case_code)
    r = client.post(f"/api/v1/cases/{case_code}/transitions", json=body, headers=world.coordinator.bearer)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert statuses(kit, case_code) == before and kit.reload(case_code).status == "submitted"


def test_the_409_names_the_allowed_actions(client, kit, world):
    code = kit.intake(world.coordinator).code
    err = go(client, world.coordinator, code, "approve_closure", expect=409)["error"]
    assert err["details"]["allowed"] == ["verify", "reject", "merge"]
    assert "allowed: verify, reject, merge" in err["message"]


@pytest.mark.parametrize("path", ["/api/v1/cases/CL-0000-0000", "/api/v1/cases/nonsense",
                                  "/api/v1/cases/CL-0000-0000/identity"])
def test_unknown_or_malformed_codes_are_404(client, world, path):
    r = client.get(path, headers=world.coordinator.bearer)
    assert r.status_code == 404 and r.json()["error"]["code"] == "case.not_found"


def test_bad_service_input_is_refused(client, kit, world):
    cw = world.caseworker_a
    code = kit.intake(cw).code
    for action, who in (("verify", world.coordinator), ("refer", world.coordinator), ("accept", cw)):
        go(client, who, code, action)
    for body, status in (({"service_type": "magic"}, 422), ({"service_type": "education", "implemented_on": "soon"}, 422),
                         ({"service_type": "education", "implemented": True,
                           "implemented_on": (date.today() + timedelta(days=30)).isoformat()}, 422)):
        r = client.post(f"/api/v1/cases/{code}/services", json=body, headers=cw.bearer)
        assert r.status_code == status, r.text
    assert client.get(f"/api/v1/cases/{code}", headers=cw.bearer).json()["services"] == []


def test_identity_reads_are_audited_and_the_list_has_no_names(client, kit, world):
    cw = world.caseworker_a
    code = kit.intake(cw).code
    listing = client.get("/api/v1/cases", headers=cw.bearer)
    assert listing.status_code == 200 and "Mwamba" not in listing.text and "+243" not in listing.text
    detail = client.get(f"/api/v1/cases/{code}", headers=cw.bearer)
    assert "Mwamba" not in detail.text
    r = client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer)
    assert r.status_code == 200
    assert r.json()["identity"]["child_given_name"] == "Mwamba"
    assert r.json()["identity"]["caregiver_phone"] == "+243970000001"
    with session_scope(kit.engine) as s:
        entries = s.exec(select(AuditLog).where(AuditLog.action == "case.read_identity")).all()
        assert [(e.object_id, e.actor_user_id) for e in entries] == [(code, cw.user.id)]
        assert "Mwamba" not in str(entries[0].details)


@pytest.mark.parametrize("query", ["status=flying", "limit=0", "limit=100000", "offset=-1",
                                   "offset=100000000000000000000000"])
def test_bad_list_parameters_are_422(client, world, query):
    r = client.get(f"/api/v1/cases?{query}", headers=world.coordinator.bearer)
    assert r.status_code == 422 and r.json()["error"]["message"]


def test_every_case_route_declares_its_response(app):
    """Issue 10: OpenAPI describes every answer of the cases API (``cases.schemas``; a photo is its bytes)."""
    paths = {p: ops for p, ops in app.openapi()["paths"].items() if p.startswith(("/api/v1/cases", "/api/v1/kpis"))}
    assert len(paths) == 13
    for path, ops in paths.items():
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"]["201"]
            if path.endswith("/photos/{name}"):
                assert "image/jpeg" in ok["content"]
                continue
            assert ok["content"]["application/json"]["schema"]["$ref"], (method, path)
    case = paths["/api/v1/cases/{code}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert case["$ref"].endswith("/CasePublic")
