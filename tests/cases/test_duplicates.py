"""Issue 9, finding 10: the duplicate lookup is not an oracle.

A coordinator typed a phone number into a test intake and the duplicate list answered with the
matching case of another NGO. Now only intakes from partner NGOs' caseworkers are indexed and
looked up; the list shows no identifying field; every lookup is audited.
"""

from sqlmodel import select

from app.db import session_scope
from app.models import AuditLog
from cases.models import CaseDedupKey, ChildCase
from tests.cases.conftest import eligible_answers

PHONE = "+243970004242"


def _audit(engine, action):
    with session_scope(engine) as s:
        return s.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def _keys(engine, code):
    with session_scope(engine) as s:
        case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
        return s.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all()


def test_a_coordinator_or_admin_intake_is_never_looked_up(client, kit, world, engine):
    co = world.coordinator
    ngo_b_case = kit.intake(world.caseworker_b, child_given_name="Furaha", caregiver_phone=PHONE).code

    # The attack: a test intake with the phone number (and even the same name) of NGO B's child.
    for who in (co, world.admin):
        probe_sub = kit.submit(who, "child_case_intake", eligible_answers(child_given_name="Furaha",
                                                                          caregiver_phone=PHONE))
        probe = kit.case_of(probe_sub)
        assert probe is not None  # the intake still opens its case...
        assert _keys(engine, probe.code) == []  # ...but is not indexed,
        stored = kit.submission(probe_sub)  # and waits in the review queue saying why
        assert stored.review_state == "needs_review" and "no duplicate check" in stored.review_reason
        r = client.get("/api/v1/cases/duplicates", headers=co.bearer)
        assert r.status_code == 200 and r.json()["candidates"] == []
        assert ngo_b_case not in r.text
    review = client.get("/api/v1/cases/review", headers=co.bearer).json()["submissions"]
    assert {item["instance_id"] for item in review} >= {probe_sub.instance_id}
    # Only the caseworker's intake was looked up (audited); the probes were not.
    lookups = _audit(engine, "case.duplicate_lookup")
    assert [row.object_id for row in lookups] == [ngo_b_case]


def test_candidates_from_ngo_intakes_are_listed_without_identifying_fields_and_audited(client, kit, world, engine):
    co = world.coordinator
    first = kit.intake(world.caseworker_b, child_given_name="Furaha", caregiver_phone=PHONE).code
    second = kit.intake(world.caseworker_a, child_given_name="Neema", caregiver_phone=PHONE).code
    [lookup_first, lookup_second] = _audit(engine, "case.duplicate_lookup")
    assert (lookup_first.object_id, lookup_first.details["candidates"]) == (first, 0)
    assert (lookup_second.object_id, lookup_second.details["candidates"]) == (second, 1)
    assert lookup_second.details["kinds"] == ["phone"]

    r = client.get("/api/v1/cases/duplicates", headers=co.bearer)
    assert r.status_code == 200
    [pair] = r.json()["candidates"]
    assert (pair["case"], pair["candidate"], pair["matched_on"]) == (second, first, ["phone"])
    assert pair["organisations"] == ["NGO A", "NGO B"] and pair["age_bands"] == ["12-14", "12-14"]
    assert set(pair) == {"case", "candidate", "matched_on", "statuses", "sites", "organisations", "age_bands",
                         "identified_on", "opened_at"}
    for secret in ("Furaha", "Neema", "Kabeya", "4242", "+243", "caregiver", "photo", "mother", "kanina"):
        assert secret not in r.text
    [listing] = _audit(engine, "case.duplicates")
    assert listing.actor_user_id == co.user.id and listing.details["pairs"] == [[second, first]]
    for person in (world.caseworker_a, world.monitor, world.admin):
        assert client.get("/api/v1/cases/duplicates", headers=person.bearer).status_code == 403
