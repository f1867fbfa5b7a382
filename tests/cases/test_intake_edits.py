"""Issue 9, finding 1, for children's records: only the NGO that owns a case may edit its intake
(another NGO, the coordinator: 403 ``submission.edit_forbidden``, nothing stored, the case and the
KPI untouched), and an accepted edit that changes consent, age band, proposed organisation or site
is stored as the current version but waits in the review queue: the case keeps its state and
values until a coordinator approves (applied, with an event naming them) or rejects (unchanged)."""

from __future__ import annotations

from sqlmodel import func, select

from app.db import session_scope
from app.models import AuditLog
from cases.models import CaseEvent
from sync.models import Blob, Submission
from sync.submission_xml import build_instance_xml
from tests.cases.conftest import eligible_answers
from tests.cases.factories import kpi, withdraw
from tests.factories import jpeg, multipart

INTAKE = "child_case_intake"


def intake_xml(kit, instance_id: str, deprecated_id: str | None = None, **answers) -> bytes:
    version = kit.versions[INTAKE]
    paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
    data = {paths[name]: value for name, value in eligible_answers(**answers).items()}
    return build_instance_xml(version, data, instance_id, deprecated_id=deprecated_id)


def post(client, person, xml: bytes, files: dict[str, bytes] | None = None):
    body, headers = multipart(xml, files)
    return client.post("/submission", content=body, headers={**headers, **person.basic})


def snapshot(kit, code: str) -> dict:
    """The case as the KPI and the case routes see it, and what a stored edit would add."""
    case = kit.reload(code)
    with session_scope(kit.engine) as s:
        return {
            "case": {k: getattr(case, k) for k in ("status", "age_band", "site_code", "consent_services",
                                                   "consent_reporting", "consent_photo", "proposed_organisation_id",
                                                   "classification", "updated_at")},
            "kpi": kpi(kit.engine, kit.world.coordinator),
            "submissions": s.exec(select(func.count()).select_from(Submission)).one(),
            "blobs": s.exec(select(func.count()).select_from(Blob)).one(),
            "edits_audited": s.exec(select(func.count()).select_from(AuditLog)
                                    .where(AuditLog.action == "submission.edit")).one(),
        }


def current_intake(kit, root: str) -> Submission:
    with session_scope(kit.engine) as s:
        return s.exec(select(Submission).where(Submission.root_instance_id == root,
                                               Submission.current == True)).one()  # noqa: E712


def withdrawn_case(client, kit, world, root: str) -> str:
    """An intake of NGO A's caseworker whose child counts in the KPI."""
    kit.submit(world.caseworker_a, INTAKE, eligible_answers(), instance_id=root)
    code = kit.case_of(current_intake(kit, root)).code
    withdraw(client, world, code, world.caseworker_a, "NGO A")
    assert kpi(kit.engine, world.coordinator)["value"] == 1
    return code


def test_another_ngo_cannot_edit_an_intake_over_openrosa_or_in_a_batch(client, kit, world):
    code = withdrawn_case(client, kit, world, "uuid:child-1")
    kit.submit(world.caseworker_b, INTAKE, eligible_answers(child_given_name="Ilunga"), instance_id="uuid:b-own")
    before = snapshot(kit, code)
    forged = intake_xml(kit, "uuid:child-1-forged", "uuid:child-1", child_given_name="Someone", consent_reporting="no",
                        age_estimated_years=17, site_id="OTHER-SITE", consent_photo="yes", child_photo="c.jpg")
    response = post(client, world.caseworker_b, forged, {"c.jpg": jpeg()})
    assert response.status_code == 403 and b"may not edit" in response.content
    batch = [{"instance_id": "uuid:child-1-forged", "form_id": INTAKE, "xml": forged.decode()},
             {"instance_id": "uuid:b-own-2", "form_id": INTAKE, "deprecated_id": "uuid:b-own",
              "xml": intake_xml(kit, "uuid:b-own-2", "uuid:b-own", child_given_name="Ilunga",
                                monitor_notes="seen again").decode()}]
    results = client.post("/api/v1/sync/batches", json={"items": batch}, headers=world.caseworker_b.bearer)
    assert [(r["status"], r.get("code")) for r in results.json()["results"]] == [
        ("invalid", "submission.edit_forbidden"), ("edit", None)]
    after = snapshot(kit, code)
    assert after == {**before, "submissions": before["submissions"] + 1, "edits_audited": before["edits_audited"] + 1}
    assert current_intake(kit, "uuid:child-1").instance_id == "uuid:child-1"
    # The coordinator does not rewrite a record the NGO owns either.
    assert post(client, world.coordinator, forged).status_code == 403


def test_the_owning_caseworker_edits_a_harmless_field_at_once(client, kit, world):
    first = kit.submit(world.caseworker_a, INTAKE, eligible_answers(), instance_id="uuid:child-2")
    code = kit.case_of(first).code
    edit = intake_xml(kit, "uuid:child-2b", "uuid:child-2", child_given_name="Mwambe",
                      activities=["digging_underground"])
    assert post(client, world.caseworker_a, edit).status_code == 201
    case = kit.reload(code)
    assert case.risk_level == "high" and case.status == "submitted"
    assert current_intake(kit, "uuid:child-2").review_state == "received"
    identity = client.get(f"/api/v1/cases/{code}/identity", headers=world.caseworker_a.bearer).json()
    assert identity["identity"]["child_given_name"] == "Mwambe"
    assert client.get("/api/v1/cases/review", headers=world.coordinator.bearer).json()["submissions"] == []


def test_an_edit_of_consent_age_band_or_site_waits_for_a_coordinator(client, kit, world):
    code = withdrawn_case(client, kit, world, "uuid:child-3")
    before = snapshot(kit, code)
    edit = intake_xml(kit, "uuid:child-3b", "uuid:child-3", consent_reporting="no", age_estimated_years=16,
                      site_id="KOL-009")
    assert post(client, world.caseworker_a, edit).status_code == 201
    assert current_intake(kit, "uuid:child-3").instance_id == "uuid:child-3b"  # ODK: the edit is the record now
    after = snapshot(kit, code)
    assert after["case"] == before["case"] and after["kpi"] == before["kpi"]

    queue = client.get("/api/v1/cases/review", headers=world.coordinator.bearer).json()["submissions"]
    (item,) = [i for i in queue if i["instance_id"] == "uuid:child-3b"]
    assert code in item["reason"]
    assert all(name in item["reason"] for name in ("age_band", "consent_reporting", "site_code"))

    # Rejected: the case stays exactly as it was.
    r = client.post("/api/v1/cases/review/uuid:child-3b", json={"decision": "rejected"}, headers=world.coordinator.bearer)
    assert r.status_code == 200 and r.json()["applied"] is False
    assert snapshot(kit, code)["case"] == before["case"]
    assert kpi(kit.engine, world.coordinator)["value"] == 1

    # The same change sent again and approved: applied, with events naming the coordinator.
    again = intake_xml(kit, "uuid:child-3c", "uuid:child-3b", consent_reporting="no", age_estimated_years=16,
                       site_id="KOL-009")
    assert post(client, world.caseworker_a, again).status_code == 201
    assert snapshot(kit, code)["case"] == before["case"]
    r = client.post("/api/v1/cases/review/uuid:child-3c", json={"decision": "approved", "note": "checked by phone"},
                    headers=world.coordinator.bearer)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True and r.json()["changed"] == ["age_band", "consent_reporting", "site_code"]
    case = kit.reload(code)
    assert (case.age_band, case.site_code, case.consent_reporting, case.status) == \
        ("15-17", "KOL-009", False, before["case"]["status"])
    assert kpi(kit.engine, world.coordinator)["value"] == 0  # no consent to statistics any more
    with session_scope(kit.engine) as s:
        events = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                CaseEvent.action.in_(("intake_edit", "consent")))).all()
        assert {(e.action, e.actor_user_id, e.actor_role) for e in events} == {
            ("consent", world.coordinator.user.id, "coordinator"),
            ("intake_edit", world.coordinator.user.id, "coordinator")}


def test_an_edit_replaced_before_the_decision_cannot_be_approved(client, kit, world):
    first = kit.submit(world.caseworker_a, INTAKE, eligible_answers(), instance_id="uuid:child-4")
    code = kit.case_of(first).code
    assert post(client, world.caseworker_a, intake_xml(kit, "uuid:child-4b", "uuid:child-4",
                                                       consent_share_partner="no")).status_code == 201
    assert post(client, world.caseworker_a, intake_xml(kit, "uuid:child-4c", "uuid:child-4b",
                                                       consent_share_partner="no")).status_code == 201
    r = client.post("/api/v1/cases/review/uuid:child-4b", json={"decision": "approved"}, headers=world.coordinator.bearer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "case.edit_superseded"
    assert kit.reload(code).consent_share_partner is True


def test_changing_the_proposed_partner_ngo_waits_for_a_coordinator(client, kit, world):
    first = kit.submit(world.coordinator, INTAKE, eligible_answers(referral_partner="NGO A"), instance_id="uuid:child-5")
    code = kit.case_of(first).code
    # Before any NGO owns the case, the coordinator who sent the intake may still edit it.
    edit = intake_xml(kit, "uuid:child-5b", "uuid:child-5", referral_partner="NGO B")
    assert post(client, world.coordinator, edit).status_code == 201
    assert kit.reload(code).proposed_organisation_id == world.ngo_a.id
    assert "proposed_organisation" in current_intake(kit, "uuid:child-5").review_reason
    r = client.post("/api/v1/cases/review/uuid:child-5b", json={"decision": "approved"}, headers=world.coordinator.bearer)
    assert r.status_code == 200 and r.json()["changed"] == ["proposed_organisation"]
    assert kit.reload(code).proposed_organisation_id == world.ngo_b.id
    # NGO A's caseworker, who does not own the case, may not edit it.
    assert post(client, world.caseworker_a, intake_xml(kit, "uuid:child-5c", "uuid:child-5b")).status_code == 403
