"""The state machine of domain.md §3.5 as data: every transition, its roles and four-eyes."""

import pytest

from cases import lifecycle
from cases.lifecycle import TransitionRefused, check


def _check(action, status, role, *, user=1, pending=None, requested_by=None, reason=None):
    return check(action, status=status, role=role, actor_user_id=user, pending_request=pending,
                 requested_by_user_id=requested_by, reason=reason)


@pytest.mark.parametrize("action,status,role,target,kwargs", [
    ("verify", "submitted", "coordinator", "verified", {}),
    ("reject", "submitted", "coordinator", "rejected_not_eligible", {"reason": "age_18_or_over"}),
    ("refer", "verified", "coordinator", "referred", {}),
    ("close_consent_withdrawn", "verified", "coordinator", "closed", {}),
    ("accept", "referred", "caseworker", "accepted", {}),
    ("decline", "referred", "caseworker", "verified", {"reason": "no capacity in that area"}),
    ("submit_plan", "accepted", "caseworker", "case_plan_pending_approval", {}),
    ("approve_plan", "case_plan_pending_approval", "coordinator", "in_services", {"pending": "plan", "requested_by": 2}),
    ("approve_plan", "case_plan_pending_approval", "caseworker", "in_services", {"pending": "plan", "requested_by": 2}),
    ("reject_plan", "case_plan_pending_approval", "coordinator", "assessment",
     {"pending": "plan", "requested_by": 2, "reason": "add school fees"}),
    ("submit_plan", "assessment", "caseworker", "case_plan_pending_approval", {}),
    ("start_monitoring", "in_services", "caseworker", "monitoring", {}),
    ("transfer", "in_services", "coordinator", "transferred", {}),
    ("accept", "transferred", "caseworker", "accepted", {}),
    ("resume_services", "monitoring", "caseworker", "in_services", {"reason": "relapse"}),
    ("criteria_met", "monitoring", "system", "withdrawn_pending_closure", {}),
    ("approve_closure", "withdrawn_pending_closure", "coordinator", "closed", {"pending": "closure", "requested_by": 2}),
    ("reject_closure", "withdrawn_pending_closure", "coordinator", "monitoring", {"reason": "last visit doubtful"}),
    ("request_closure", "monitoring", "caseworker", None, {"reason": "death"}),
    ("reopen", "closed", "coordinator", "reopened", {"reason": "seen again on a site"}),
    ("resume_assessment", "reopened", "caseworker", "assessment", {}),
])
def test_each_transition_of_the_table_is_allowed_to_its_role(action, status, role, target, kwargs):
    assert _check(action, status, role, **kwargs).target == target


def test_every_state_of_the_table_is_reachable():
    targets = {t.target for t in lifecycle.TRANSITIONS if t.target} | {"submitted"}
    assert set(lifecycle.STATES) == targets


@pytest.mark.parametrize("action,status", [("accept", "submitted"), ("verify", "verified"), ("refer", "submitted"),
                                           ("approve_closure", "monitoring"), ("reopen", "monitoring"),
                                           ("approve_plan", "case_plan_pending_approval")])
def test_a_transition_from_the_wrong_state_names_the_allowed_ones(action, status):
    with pytest.raises(TransitionRefused) as exc:
        _check(action, status, "coordinator")
    assert exc.value.kind == "state"
    assert "allowed:" in exc.value.message


def test_the_conflict_message_lists_what_may_follow():
    with pytest.raises(TransitionRefused) as exc:
        _check("accept", "submitted", "caseworker")
    assert exc.value.allowed == ["verify", "reject", "merge"]


@pytest.mark.parametrize("action,status,role", [("verify", "submitted", "caseworker"), ("accept", "referred", "coordinator"),
                                                ("reopen", "closed", "caseworker"), ("verify", "submitted", "monitor"),
                                                ("criteria_met", "monitoring", "coordinator"),
                                                ("submit_plan", "accepted", "admin")])
def test_a_wrong_role_is_refused(action, status, role):
    with pytest.raises(TransitionRefused) as exc:
        _check(action, status, role, reason="x")
    assert exc.value.kind == "role"


def test_four_eyes_the_approver_must_not_be_the_requester():
    for action in ("approve_plan", "reject_plan"):
        with pytest.raises(TransitionRefused) as exc:
            _check(action, "case_plan_pending_approval", "caseworker", user=7, pending="plan", requested_by=7,
                   reason="x")
        assert exc.value.kind == "four_eyes"
    with pytest.raises(TransitionRefused) as exc:
        _check("approve_closure", "monitoring", "coordinator", user=3, pending="closure", requested_by=3)
    assert exc.value.kind == "four_eyes"


def test_reasons_are_required_and_from_their_list():
    with pytest.raises(TransitionRefused, match="needs a reason"):
        _check("reject", "submitted", "coordinator")
    with pytest.raises(TransitionRefused, match="must be one of"):
        _check("resume_services", "monitoring", "caseworker", reason="bored")


def test_closure_can_be_requested_once_and_then_only_approved():
    assert "request_closure" not in lifecycle.allowed_actions("monitoring", pending_request="closure")
    assert "approve_closure" in lifecycle.allowed_actions("monitoring", pending_request="closure")
    assert "approve_closure" not in lifecycle.allowed_actions("monitoring")


@pytest.mark.parametrize("kwargs,expected", [
    ({"age": 13, "activities": ["carrying_ore"]}, "wfcl_hazardous"),
    ({"age": 16, "activities": ["selling_goods"]}, "child_labour_non_wfcl"),
    ({"age": 16, "activities": ["selling_goods"], "night_work": True}, "wfcl_hazardous"),
    ({"age": 10, "activities": [], "forced_signs": ["debt"]}, "wfcl_unconditional"),
    ({"age": 15, "activities": ["guarding"], "works_for": "armed_group"}, "wfcl_unconditional"),
    ({"age": 19, "activities": ["carrying_ore"]}, "not_child_labour"),
])
def test_classification(kwargs, expected):
    args = {"forced_signs": [], "hours_per_day": None, "night_work": False, "works_for": None, **kwargs}
    assert lifecycle.classify(**args) == expected


def test_risk_is_raised_never_lowered_by_the_monitor():
    base = {"classification": "wfcl_hazardous", "activities": ["washing_ore"], "caregiver_relation": "mother",
            "injuries": ["none"]}
    assert lifecycle.default_risk(**base, declared=None) == "medium"
    assert lifecycle.default_risk(**base, declared="high") == "high"
    assert lifecycle.default_risk(**base, declared="low") == "medium"
    assert lifecycle.default_risk(**{**base, "caregiver_relation": "none"}, declared=None) == "high"
