"""Issue 9, finding 8: every case event and case audit row names the real actor — the user, the
device when the action came through a device token, and how they authenticated — so a tablet or a
token acting for a caseworker is never recorded as the caseworker in person."""

import uuid
from datetime import date

from sqlmodel import select

from app import accounts
from app.db import session_scope
from app.identity import Actor
from app.models import AuditLog
from cases.models import CaseEvent, ChildCase
from sync.submission_xml import build_instance_xml
from tests.cases.conftest import eligible_answers
from tests.cases.factories import to_services


def _events(engine, code):
    """The case's events by action (the last of each)."""
    with session_scope(engine) as s:
        case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
        return {e.action: e for e in s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                             .order_by(CaseEvent.id)).all()}


def _audit(engine, action, code):
    with session_scope(engine) as s:
        return s.exec(select(AuditLog).where(AuditLog.action == action, AuditLog.object_id == code)
                      .order_by(AuditLog.id)).all()


def _on_tablet(client, kit, token, answers):
    version = kit.versions["child_case_followup"]
    paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
    xml = build_instance_xml(version, {paths[k]: v for k, v in answers.items()}, f"uuid:{uuid.uuid4()}")
    return client.post(f"/key/{token}/submission", headers={"X-OpenRosa-Version": "1.0"},
                       files=[("xml_submission_file", ("submission.xml", xml, "text/xml"))])


def test_case_events_and_audit_rows_name_the_device_and_the_authentication(client, kit, world, engine):
    cw, co = world.caseworker_a, world.coordinator
    with session_scope(engine) as s:
        device, token = accounts.create_device(s, name="tablet-ngo-a-3", user=cw.user.id, actor=Actor(user=cw.user))
        device_id = device.id
    code = kit.intake(cw).code
    to_services(client, world, code, cw, "NGO A")  # every step through the API with Bearer tokens

    # The tablet records a delivered service: the case moves to monitoring, through the device.
    r = _on_tablet(client, kit, token, {"case_id": code, "followup_date": date.today().isoformat(),
                                         "followup_type": "service", "service_type": "education",
                                         "service_implemented": "yes"})
    assert r.status_code == 201, r.text
    # Consent changed in a browser-like call with Basic credentials.
    r = client.post(f"/api/v1/cases/{code}/consent", json={"purpose": "photo", "given": False}, headers=cw.basic)
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer).status_code == 200

    events = _events(engine, code)
    tablet = events["start_monitoring"]
    assert (tablet.actor_user_id, tablet.actor_role, tablet.actor_org_id) == (cw.user.id, "caseworker", world.ngo_a.id)
    assert (tablet.actor_device_id, tablet.actor_device, tablet.actor_auth) == (device_id, "tablet-ngo-a-3", "device")
    verify = events["verify"]
    assert (verify.actor_user_id, verify.actor_device, verify.actor_auth) == (co.user.id, None, "token")
    assert (events["accept"].actor_user_id, events["accept"].actor_auth) == (cw.user.id, "token")
    assert (events["consent"].actor_user_id, events["consent"].actor_auth, events["consent"].actor_device) == \
        (cw.user.id, "basic", None)
    assert events["submit"].actor_user_id == cw.user.id and events["submit"].actor_auth == "session"

    # The audit log says the same: user, device, method.
    [service_row] = _audit(engine, "case.service", code)
    assert (service_row.actor_user_id, service_row.actor_device_id) == (cw.user.id, device_id)
    assert service_row.actor_label == "cw_a@tablet-ngo-a-3" and service_row.details["auth"] == "device"
    [identity_row] = _audit(engine, "case.read_identity", code)
    assert (identity_row.actor_user_id, identity_row.actor_device_id, identity_row.details["auth"]) == \
        (cw.user.id, None, "token")
    assert _audit(engine, "case.verify", code)[0].details["auth"] == "token"

    # And the case history shown to the NGO names them too.
    body = client.get(f"/api/v1/cases/{code}", headers=cw.bearer).json()
    shown = {e["action"]: e for e in body["events"]}
    assert (shown["start_monitoring"]["actor"], shown["start_monitoring"]["device"],
            shown["start_monitoring"]["auth"]) == ("cw_a", "tablet-ngo-a-3", "device")
    assert (shown["verify"]["actor"], shown["verify"]["device"], shown["verify"]["auth"]) == ("coord", None, "token")


def test_merge_and_review_decisions_name_the_coordinator(client, kit, world, engine):
    co = world.coordinator
    first = kit.intake(world.caseworker_a).code
    dup = kit.intake(world.caseworker_b, child_family_name="Kabeia").code
    r = client.post(f"/api/v1/cases/{dup}/merge", json={"into": first}, headers=co.basic)
    assert r.status_code == 200, r.text
    merge = _events(engine, dup)["merge"]
    assert (merge.actor_user_id, merge.actor_role, merge.actor_auth, merge.actor_device) == \
        (co.user.id, "coordinator", "basic", None)
    assert _audit(engine, "case.merge", dup)[0].details["auth"] == "basic"


    adult = kit.submit(world.caseworker_a, "child_case_intake", eligible_answers(age_estimated_years=30))
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "rejected"}, headers=co.bearer)
    assert r.status_code == 200, r.text
    [row] = _audit(engine, "case.review", adult.instance_id)
    assert (row.actor_user_id, row.details["auth"], row.details["decision"]) == (co.user.id, "token", "rejected")
