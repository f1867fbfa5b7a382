"""The formalisation ladder (domain.md §2.9), stage by stage and override by override (pure)."""

from datetime import date, timedelta

import pytest

from geodata import ladder
from geodata.ladder import SiteContext, Visit
from geodata.stages import effective_stage

TODAY = date(2026, 6, 1)
CONTEXT = SiteContext(legal_codes=["ZEA-360"])


def answers(stage: int, **changes):
    """Visit answers that satisfy the evidence of ``stage`` (and every lower stage)."""
    a = {"visit_type": "announced", "activity_status": "active", "minerals": ["cobalt"], "workers_total": 300,
         "cooperative_present": "no", "legal_zone": "unknown", "coop_documents_seen": ["none"],
         "state_services_present": ["none"], "armed_presence": ["none"], "forced_labour_indicators": ["none"],
         "sgbv_reported": "no", "children_u15_seen": 0, "children_15_17_seen": 0, "fatalities_since_last_visit": 0}
    if stage >= 2:
        a.update(cooperative_present="yes", coop_documents_seen=["coop_approval"], state_services_present=["saemape"],
                 document_photos=[{"/f/document_photos/photo_documents": "doc.jpg"}])
    if stage >= 3:
        a.update(legal_zone="inside_zea", zea_or_title_ref="ZEA 360",
                 coop_documents_seen=["coop_approval", "site_authorisation"])
    if stage >= 4:
        a.update(access_control="fenced_badge", miner_cards_share="over_75", traceability_in_place="coop_register",
                 programmes_active=["better_mining"], grievance_mechanism="known_used")
    if stage >= 5:
        a.update(ppe_observed="over_75", corrective_actions_status="all_done")
    a.update(changes)
    return a


def visit(days_ago: int, a: dict, sid: int | None = None) -> Visit:
    return Visit(submission_id=sid if sid is not None else 1000 - days_ago, on=TODAY - timedelta(days=days_ago), answers=a)


def stage_of(visits, context=CONTEXT):
    return ladder.evaluate(visits, context, TODAY)


def test_rules_are_versioned_data():
    rules = ladder.load_rules("v1")
    assert rules["version"] == "v1" and set(rules["stages"]) == {str(s) for s in range(7)}


def test_stage_0_without_any_on_site_visit():
    assert stage_of([]).stage == 0
    remote = stage_of([visit(10, answers(4, visit_type="remote"))])
    assert (remote.stage, remote.status) == (0, "unassessed")


def test_stage_0_when_basic_evidence_is_missing():
    assert stage_of([visit(10, answers(1, workers_total=None))]).stage == 0


def test_stage_1_mapped_informal():
    r = stage_of([visit(10, answers(1))])
    assert (r.stage, r.status, r.red_flag) == (1, "assessed", False)


def test_stage_2_organised_needs_cooperative_approval_with_a_photo_and_state_services():
    assert stage_of([visit(10, answers(2))]).stage == 2
    assert stage_of([visit(10, answers(2, document_photos=None))]).stage == 1
    assert stage_of([visit(10, answers(2, state_services_present=["police_mines"]))]).stage == 1
    # services seen at one of the last two visits is enough
    assert stage_of([visit(100, answers(2)), visit(10, answers(2, state_services_present=["none"]))]).stage == 2


def test_stage_3_needs_legal_zone_matching_polygon_and_authorisation():
    assert stage_of([visit(10, answers(3))]).stage == 3
    assert stage_of([visit(10, answers(3))], SiteContext(legal_codes=["ZEA-361"])).stage == 2
    assert stage_of([visit(10, answers(3, zea_or_title_ref="360"))]).stage == 3
    assert stage_of([visit(10, answers(3, legal_zone="title_without_agreement"))]).stage == 2
    assert stage_of([visit(10, answers(3, coop_documents_seen=["coop_approval"]))]).stage == 2


def test_documents_are_sticky_until_they_expire():
    earlier = visit(200, answers(3))
    later = visit(10, answers(3, coop_documents_seen=["none"], document_photos=None))
    assert stage_of([earlier, later]).stage == 3
    old = visit(400, answers(3))
    assert stage_of([old, later]).stage == 1


def test_stage_4_controlled_and_monitored():
    assert stage_of([visit(10, answers(4))]).stage == 4
    assert stage_of([visit(10, answers(4, access_control="informal_guard"))]).stage == 3
    assert stage_of([visit(10, answers(4, programmes_active=["none"]))]).stage == 3


def test_stage_5_needs_two_clean_visits_at_least_60_days_apart():
    assert stage_of([visit(10, answers(5))]).stage == 4
    assert stage_of([visit(40, answers(5)), visit(10, answers(5))]).stage == 4
    assert stage_of([visit(80, answers(5)), visit(10, answers(5))]).stage == 5
    assert stage_of([visit(80, answers(5)), visit(10, answers(5, children_u15_seen=1))]).stage == 4
    assert stage_of([visit(80, answers(5)), visit(10, answers(5, armed_presence=["fardc"]))]).stage == 4
    assert stage_of([visit(80, answers(5)), visit(10, answers(5, armed_presence=["police_mines"]))]).stage == 5


def test_stage_6_needs_an_unexpired_attestation():
    visits = [visit(80, answers(5)), visit(10, answers(5))]
    good = SiteContext(legal_codes=["ZEA-360"], assurance_type="craft_verification",
                       assurance_valid_until=TODAY + timedelta(days=30))
    expired = SiteContext(legal_codes=["ZEA-360"], assurance_type="craft_verification",
                          assurance_valid_until=TODAY - timedelta(days=1))
    assert stage_of(visits, good).stage == 6
    assert stage_of(visits, expired).stage == 5


@pytest.mark.parametrize("abuse", [{"armed_presence": ["nsag"]}, {"forced_labour_indicators": ["debt_bondage"]},
                                   {"sgbv_reported": "yes"},
                                   {"children_u15_seen": 2, "children_tasks": ["carrying_loads"]}])
def test_serious_abuse_caps_at_stage_2_with_a_red_flag(abuse):
    r = stage_of([visit(80, answers(5)), visit(10, answers(5, **abuse))])
    assert (r.stage, r.red_flag) == (2, True)


def test_cap_stays_until_stage_5_evidence_is_reestablished_over_two_visits():
    abusive = visit(200, answers(5, armed_presence=["nsag"]))
    one_clean = stage_of([abusive, visit(10, answers(5))])
    assert (one_clean.stage, one_clean.red_flag) == (2, False)
    two_clean = stage_of([abusive, visit(100, answers(5)), visit(10, answers(5))])
    assert two_clean.stage == 5


def test_children_accompanying_a_parent_is_no_serious_abuse_but_blocks_stage_5():
    a = answers(5, children_u15_seen=1, children_tasks=["accompanying_parent"])
    r = stage_of([visit(80, answers(5)), visit(10, a)])
    assert (r.stage, r.red_flag) == (4, False)


def test_suspended_site_keeps_its_stage_with_status_inactive():
    r = stage_of([visit(10, answers(3, activity_status="suspended"))])
    assert (r.stage, r.status) == (3, "inactive")


def test_stale_evidence_counts_as_unassessed_but_keeps_the_last_known_stage():
    r = stage_of([visit(400, answers(4))])
    assert (r.stage, r.last_known_stage, r.status) == (0, 4, "unassessed")


def test_history_records_each_change_with_its_visit_and_the_lapse():
    visits = [visit(900, answers(1), sid=1), visit(800, answers(2), sid=2), visit(700, answers(2), sid=3),
              visit(100, answers(3), sid=4)]
    changes = ladder.history(visits, CONTEXT, TODAY)
    summary = [(d, r.stage, r.status, r.submission_id) for d, r in changes]
    assert summary == [
        (TODAY - timedelta(days=900), 1, "assessed", 1),
        (TODAY - timedelta(days=800), 2, "assessed", 2),
        (TODAY - timedelta(days=700) + timedelta(days=366), 0, "unassessed", None),
        (TODAY - timedelta(days=100), 3, "assessed", 4),
    ]
    assert all(r.ladder_version == "v1" for _, r in changes)


def test_reference_numbers_are_normalised():
    assert ladder.normalise_ref("ZEA-360") == ladder.normalise_ref("zea 360") == "360"
    assert ladder.normalise_ref("PE 1234") == ladder.normalise_ref("1234") == "1234"


def test_the_staleness_rule_a_stage_counts_for_valid_visit_days_after_the_last_on_site_visit():
    """Written once (``ladder.is_stale``); the ladder, the site list, the detail, the statistics and
    the export all read stored stages through it (``stages.effective_stage``)."""
    days = ladder.load_rules()["valid_visit_days"]
    last = TODAY - timedelta(days=days)
    assert not ladder.is_stale(last, TODAY)
    assert ladder.is_stale(last - timedelta(days=1), TODAY)
    assert effective_stage(3, "assessed", last, TODAY) == (3, "assessed")
    assert effective_stage(3, "assessed", last - timedelta(days=1), TODAY) == (0, "unassessed")
    assert effective_stage(2, "inactive", last - timedelta(days=1), TODAY) == (0, "unassessed")
    assert effective_stage(0, "unassessed", None, TODAY) == (0, "unassessed")
    # the ladder itself: the same visit, a day apart
    assert stage_of([visit(days, answers(3))]).stage == 3
    assert stage_of([visit(days + 1, answers(3))]).stage == 0
