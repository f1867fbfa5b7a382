"""Intakes open cases and follow-ups advance them; what cannot be applied is kept, restricted and
flagged for a coordinator, never dropped."""

from datetime import date, timedelta

from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from cases import codes, transitions
from cases.models import CaseEvent, CaseService, ChildCase
from sync.models import SubmissionAttachment
from tests.cases.conftest import add_site, eligible_answers, photo_file
from tests.cases.factories import go


def test_an_eligible_intake_opens_a_submitted_case(kit, world):
    case = kit.intake(world.caseworker_a)
    assert case is not None and codes.is_valid(case.code)
    assert case.status == "submitted"
    assert case.organisation_id == world.ngo_a.id  # the NGO's own caseworker identified the child
    assert (case.age_band, case.sex, case.classification) == ("12-14", "male", "wfcl_hazardous")
    assert case.consent_share_partner and case.consent_reporting and not case.consent_photo
    with session_scope(kit.engine) as s:
        events = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
        assert [(e.action, e.to_status) for e in events] == [("submit", "submitted")]


def test_a_coordinator_intake_names_the_partner_without_sharing_yet(kit, world):
    case = kit.intake(world.coordinator, referral_partner="NGO B")
    assert case.organisation_id is None and case.proposed_organisation_id == world.ngo_b.id


def test_an_intake_aged_18_or_over_is_kept_restricted_minimal_and_opens_nothing(kit, world):
    sub = kit.submit(world.caseworker_a, "child_case_intake", _answers(age_estimated_years=19))
    stored = kit.submission(sub)
    assert stored.restricted and stored.review_state == "needs_review"
    assert "18 or over" in stored.review_reason
    assert kit.case_of(sub) is None
    # Minimal: the facts stay, the name, phone and notes do not.
    assert stored.data["/child_case_intake/work/activities"] == ["carrying_ore"]
    assert "Mwamba" not in stored.xml and "Mwamba" not in str(stored.data) and "+243" not in stored.xml
    with session_scope(kit.engine) as s:
        assert s.exec(select(ChildCase)).all() == []


def test_a_resend_of_a_minimised_intake_is_still_a_duplicate(kit, world):
    from sync.ingest import receive_submission
    from sync.submission_xml import build_instance_xml

    answers = _answers(consent_services="no", consent_giver="caregiver")
    kit.submit(world.caseworker_a, "child_case_intake", answers, instance_id="uuid:resent-1")
    version = kit.versions["child_case_intake"]
    paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
    xml = build_instance_xml(version, {paths[k]: v for k, v in answers.items()}, "uuid:resent-1")
    with session_scope(kit.engine) as s:
        result = receive_submission(s, blobs=kit.blobs, settings=kit.settings, hooks=build_hooks(),
                                    actor=Actor(user=world.caseworker_a.user), xml=xml, files=[])
    assert result.status == "duplicate"


def test_an_intake_with_a_date_of_birth_18_years_back_is_an_adult(kit, world):
    today = date.today()
    sub = kit.submit(world.caseworker_a, "child_case_intake", _answers(
        dob_known="yes", age_estimated_years=None, intake_date=today.isoformat(),
        date_of_birth=date(today.year - 18, 1, 1).isoformat()))
    assert kit.submission(sub).restricted and kit.case_of(sub) is None


def test_an_intake_without_consent_to_services_is_kept_restricted_and_opens_nothing(kit, world):
    sub = kit.submit(world.caseworker_a, "child_case_intake", _answers(consent_services="no"))
    stored = kit.submission(sub)
    assert stored.restricted and stored.review_state == "needs_review" and "consent" in stored.review_reason
    assert kit.case_of(sub) is None


def test_an_edit_of_an_intake_updates_its_case_instead_of_opening_another(kit, world):
    first = kit.submit(world.caseworker_a, "child_case_intake", _answers(), instance_id="uuid:intake-1")
    case = kit.case_of(first)
    edit = kit.submit(world.caseworker_a, "child_case_intake", _answers(activities=["digging_underground"]),
                      instance_id="uuid:intake-1b", deprecated_id="uuid:intake-1")
    assert kit.case_of(edit).id == case.id
    assert kit.reload(case.code).risk_level == "high"
    with session_scope(kit.engine) as s:
        assert len(s.exec(select(ChildCase)).all()) == 1


def test_a_followup_naming_an_unknown_case_is_flagged(kit, world):
    sub = kit.followup(world.caseworker_a, codes.new_case_code(), followup_date=date.today().isoformat(),
                       followup_type="observation", child_found="yes", in_hazardous_work="no",
                       in_school_or_training="yes")
    stored = kit.submission(sub)
    assert stored.restricted and stored.review_state == "needs_review" and "unknown case" in stored.review_reason
    assert kit.case_of(sub) is None


def test_a_followup_naming_another_organisations_case_is_flagged_and_advances_nothing(kit, world):
    case = kit.intake(world.caseworker_a)
    _walk_to_services(kit, world, case.code)
    sub = kit.followup(world.caseworker_b, case.code, followup_date=date.today().isoformat(),
                       followup_type="service", service_type="education", service_implemented="yes")
    stored = kit.submission(sub)
    assert stored.restricted and "not a case of the submitter's organisation" in stored.review_reason
    assert kit.reload(case.code).status == "in_services"
    with session_scope(kit.engine) as s:
        assert s.exec(select(CaseService)).all() == []


def test_followups_deliver_services_and_the_system_moves_to_withdrawn_pending_closure(kit, world):
    case = kit.intake(world.caseworker_a)
    _walk_to_services(kit, world, case.code)
    start = date.today() - timedelta(days=200)
    kit.followup(world.caseworker_a, case.code, followup_date=start.isoformat(), followup_type="service",
                 service_type="education", service_implemented="yes")
    assert kit.reload(case.code).status == "monitoring"
    for days in (10, 60, 110):
        kit.followup(world.caseworker_a, case.code, followup_date=(start + timedelta(days=days)).isoformat(),
                     followup_type="observation", child_found="yes", in_hazardous_work="no",
                     in_school_or_training="yes")
    after = kit.reload(case.code)
    assert after.status == "withdrawn_pending_closure"
    assert after.first_withdrawn_on == start + timedelta(days=110)
    assert (after.pending_request, after.pending_reason) == ("closure", "withdrawn_and_supported")


def test_a_followup_that_cannot_apply_is_linked_but_flagged(kit, world):
    case = kit.intake(world.caseworker_a)  # still submitted: no services yet
    sub = kit.followup(world.caseworker_a, case.code, followup_date=date.today().isoformat(),
                       followup_type="service", service_type="education", service_implemented="yes")
    stored = kit.submission(sub)
    assert stored.review_state == "needs_review" and not stored.restricted
    assert "services are recorded in states" in stored.review_reason
    assert kit.case_of(sub).id == case.id


# -- helpers -------------------------------------------------------------------------------


def _answers(**overrides):
    return eligible_answers(**overrides)


def _walk_to_services(kit, world, code):
    """submitted → verified → referred → accepted → plan → in_services through the API's service."""

    steps = [(world.coordinator, "verify", {}), (world.coordinator, "refer", {"organisation": "NGO A"}),
             (world.caseworker_a, "accept", {}), (world.caseworker_a, "submit_plan", {}),
             (world.coordinator, "approve_plan", {})]
    for person, action, kwargs in steps:
        with session_scope(kit.engine) as s:
            case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
            transitions.transition(s, actor=Actor(user=person.user), case=case, action=action, **kwargs)


def test_a_closure_request_from_the_field_waits_for_a_coordinator(client, kit, world):

    case = kit.intake(world.caseworker_a)
    _walk_to_services(kit, world, case.code)
    sub = kit.followup(world.caseworker_a, case.code, followup_date=date.today().isoformat(),
                       followup_type="closure_request", closure_reason="death")
    assert kit.submission(sub).review_state == "received"
    after = kit.reload(case.code)
    assert (after.status, after.pending_request, after.pending_reason) == ("in_services", "closure", "death")
    body = go(client, world.coordinator, case.code, "approve_closure")
    assert (body["status"], body["closure_reason"]) == ("closed", "death")
    # "Lost to follow-up" without two failed visits: kept and flagged, not applied.
    other = kit.intake(world.caseworker_a, child_given_name="Ilunga", caregiver_phone="+243970000002")
    _walk_to_services(kit, world, other.code)
    sub = kit.followup(world.caseworker_a, other.code, followup_date=date.today().isoformat(),
                       followup_type="closure_request", closure_reason="lost_to_follow_up")
    assert "needs at least 2 failed follow-ups" in kit.submission(sub).review_reason
    assert kit.reload(other.code).pending_request is None


def test_a_site_code_from_a_file_choice_is_not_trusted_for_length(kit, world):
    # Static choices are checked by sync; a select_one_from_file value is not.
    case = kit.intake(world.caseworker_a, site_id="S" * 300)
    assert case.site_code == "S" * 100 and case.site_id is None


def test_an_intake_links_its_case_to_the_named_site_and_province(kit, world, engine, settings):
    add_site(engine, settings)
    case = kit.intake(world.caseworker_a, site_id="KZ-0042")
    assert (case.site_code, case.province) == ("KZ-0042", "Lualaba") and case.site_id is not None


def test_a_photo_of_an_intake_that_opens_no_case_is_not_kept(kit, world, settings, tmp_path):
    sub = kit.submit(world.caseworker_a, "child_case_intake",
                     eligible_answers(age_estimated_years=21, consent_photo="yes", child_photo="child.jpg"),
                     files=[photo_file(tmp_path)])
    stored = kit.submission(sub)
    assert stored.restricted and "child.jpg" not in stored.xml
    with session_scope(kit.engine) as s:
        assert s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).all() == []
    assert not any(p.is_file() for p in FilesystemBlobStore(settings.media_path).root.rglob("*"))
