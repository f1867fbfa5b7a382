"""Consent per purpose (``cases.consent``): each change an event; withdrawals act at once."""

from tests.cases.conftest import eligible_answers, photo_file
from tests.cases.factories import go


def test_consent_is_recorded_per_purpose_and_withdrawals_act(client, kit, world, settings, tmp_path):
    cw, co = world.caseworker_a, world.coordinator
    sub = kit.submit(cw, "child_case_intake", eligible_answers(consent_photo="yes", child_photo="child.jpg"),
                     files=[photo_file(tmp_path)])
    code = kit.case_of(sub).code
    go(client, co, code, "verify")
    r = client.post(f"/api/v1/cases/{code}/consent", headers=co.bearer,
                    json={"purpose": "share_partner", "given": False, "given_by": "caregiver"})
    assert r.status_code == 200 and r.json()["consent"]["share_partner"] is False
    assert go(client, co, code, "refer", expect=422)["error"]["code"] == "case.no_consent_to_share"
    client.post(f"/api/v1/cases/{code}/consent", headers=co.bearer, json={"purpose": "share_partner", "given": True})
    go(client, co, code, "refer", organisation="NGO A")
    go(client, cw, code, "accept")
    assert client.get(f"/api/v1/cases/{code}/photos/child.jpg", headers=cw.bearer).status_code == 200
    r = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer, json={"purpose": "photo", "given": False})
    assert r.status_code == 200
    assert client.get(f"/api/v1/cases/{code}/photos/child.jpg", headers=cw.bearer).status_code == 403
    assert "child.jpg" not in kit.submission(sub).xml
    assert client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer).json()["photos"] == []
    body = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer,
                       json={"purpose": "services", "given": False, "reason": "family moved to Likasi"}).json()
    assert body["pending_request"] == {"kind": "closure", "reason": "consent_withdrawn"}
    assert body["allowed_actions"] == []  # a coordinator approves the closure
    assert go(client, co, code, "approve_closure")["closure_reason"] == "consent_withdrawn"
    events = [(e["action"], e["reason"]) for e in client.get(f"/api/v1/cases/{code}", headers=cw.bearer).json()["events"]]
    assert events.count(("consent", None)) == 3 and ("consent", "family moved to Likasi") in events
    bad = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer, json={"purpose": "everything", "given": True})
    assert bad.status_code == 422
