"""The review queue (``cases.review``): flagged case-form submissions, without names."""

import json

from tests.cases.conftest import eligible_answers
from tests.cases.factories import run


def test_the_review_queue_lists_flagged_submissions_without_names(client, kit, world):
    adult = kit.submit(world.caseworker_a, "child_case_intake", eligible_answers(age_estimated_years=25))
    r = client.get("/api/v1/cases/review", headers=world.coordinator.bearer)
    assert r.status_code == 200
    [item] = r.json()["submissions"]
    assert item["instance_id"] == adult.instance_id and item["restricted"] and "18 or over" in item["reason"]
    assert "Mwamba" not in r.text
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "rejected", "note": "adult"},
                    headers=world.coordinator.bearer)
    assert r.status_code == 200
    assert client.get("/api/v1/cases/review", headers=world.coordinator.bearer).json()["submissions"] == []
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "maybe"},
                    headers=world.coordinator.bearer)
    assert r.status_code == 422


def test_a_decision_answers_its_state_only_and_the_cli_lists_the_same_items(client, kit, world, settings):
    """Issue 10: the decision on a plain flagged submission carries no intake-edit fields (absent, not
    null), and ``asmfield cases review --json`` prints the API's ``ReviewQueue``."""
    adult = kit.submit(world.caseworker_a, "child_case_intake", eligible_answers(age_estimated_years=25))
    api = client.get("/api/v1/cases/review", headers=world.coordinator.bearer).json()
    assert json.loads(run(settings, "review", "--json").stdout) == api
    assert "1 submission(s) to review" in run(settings, "review").stdout
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "approved"},
                    headers=world.coordinator.bearer)
    assert r.json() == {"instance_id": adult.instance_id, "review_state": "approved"}
