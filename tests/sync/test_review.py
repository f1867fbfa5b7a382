"""Reviewing submissions (issue 11): review states in ODK Central's vocabulary, comments, audit, access."""

from __future__ import annotations

from sqlmodel import select

from app.db import session_scope
from app.models import AuditLog
from sync.models import Submission
from sync.review import SubmissionReviewed
from tests.factories import CASE_MD, add_form, batch_item, case_data, new_instance_id, visit_data

BATCH = "/api/v1/sync/batches"


def sync(client, person, *items) -> list[dict]:
    response = client.post(BATCH, json={"items": list(items)}, headers=person.bearer)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def visit(client, person, **kwargs) -> str:
    iid = new_instance_id()
    sync(client, person, batch_item(iid, data=visit_data(**kwargs)))
    return iid


def review_url(iid: str) -> str:
    return f"/api/v1/submissions/{iid}/review"


def comments_url(iid: str) -> str:
    return f"/api/v1/submissions/{iid}/comments"


def test_a_coordinator_marks_a_visit_has_issues_with_a_comment_and_it_is_audited(client, world, visit_form, engine):
    iid = visit(client, world.monitor)
    response = client.patch(review_url(iid), json={"state": "hasIssues", "comment": "GPS far from the site"},
                            headers=world.coordinator.bearer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["review_state"] == "needs_review"
    assert body["step"] | {"id": 0, "at": None} == {"id": 0, "at": None, "instance_id": iid, "author": "coord",
                                                   "from_state": "received", "to_state": "needs_review",
                                                   "comment": "GPS far from the site"}
    assert client.get(f"/api/v1/submissions/{iid}", headers=world.admin.bearer).json()["review_state"] == "needs_review"
    with session_scope(engine) as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "submission.review",
                                              AuditLog.object_id == iid)).one()
        assert entry.details["from_state"] == "received" and entry.details["to_state"] == "needs_review"


def test_comments_alone_and_state_changes_are_listed_oldest_first(client, world, visit_form):
    iid = visit(client, world.monitor)
    assert client.post(comments_url(iid), json={"comment": "Photo is blurry"},
                       headers=world.admin.bearer).status_code == 201
    client.patch(review_url(iid), json={"state": "approved"}, headers=world.coordinator.bearer)
    listed = client.get(comments_url(iid), headers=world.coordinator.bearer).json()
    assert listed["review_state"] == "approved"
    assert [(i["author"], i["from_state"], i["to_state"], i["comment"]) for i in listed["items"]] == [
        ("admin", None, None, "Photo is blurry"), ("coord", "received", "approved", None)]


def test_the_submitting_monitor_reads_the_review_but_cannot_review(client, world, visit_form):
    iid = visit(client, world.monitor)
    client.patch(review_url(iid), json={"state": "rejected", "comment": "Duplicate visit"},
                 headers=world.coordinator.bearer)
    mine = client.get(comments_url(iid), headers=world.monitor.bearer)
    assert mine.status_code == 200 and mine.json()["items"][0]["comment"] == "Duplicate visit"
    refused = client.patch(review_url(iid), json={"state": "approved"}, headers=world.monitor.bearer)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "review.forbidden"
    assert client.post(comments_url(iid), json={"comment": "ok"}, headers=world.monitor.bearer).status_code == 403


def test_another_monitor_and_caseworkers_see_nothing(client, world, visit_form):
    iid = visit(client, world.monitor)
    for person in (world.monitor2, world.caseworker_a):
        for response in (client.get(comments_url(iid), headers=person.bearer),
                         client.patch(review_url(iid), json={"state": "approved"}, headers=person.bearer),
                         client.post(comments_url(iid), json={"comment": "x"}, headers=person.bearer)):
            assert response.status_code == 404, (person.username, response.text)
    assert client.get(comments_url("uuid:nope"), headers=world.coordinator.bearer).status_code == 404


def test_bad_states_and_empty_comments_are_refused(client, world, visit_form):
    iid = visit(client, world.monitor)
    bad = client.patch(review_url(iid), json={"state": "received"}, headers=world.coordinator.bearer)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "review.bad_state"
    same = client.patch(review_url(iid), json={"state": "approved"}, headers=world.coordinator.bearer)
    assert same.status_code == 200
    again = client.patch(review_url(iid), json={"state": "approved"}, headers=world.coordinator.bearer)
    assert again.status_code == 422 and again.json()["error"]["code"] == "review.empty"
    blank = client.post(comments_url(iid), json={"comment": "   "}, headers=world.coordinator.bearer)
    assert blank.status_code == 422 and blank.json()["error"]["code"] == "review.empty"
    assert client.post(comments_url(iid), json={"comment": "x" * 2001},
                       headers=world.coordinator.bearer).status_code == 422


def test_a_review_follows_the_record_across_edits(client, world, visit_form):
    first = visit(client, world.monitor)
    client.post(comments_url(first), json={"comment": "Check the workers count"}, headers=world.coordinator.bearer)
    edit = new_instance_id()
    sync(client, world.monitor, batch_item(edit, data=visit_data(workers=14), deprecated_id=first))
    response = client.patch(review_url(first), json={"state": "approved"}, headers=world.coordinator.bearer)
    assert response.json()["step"]["instance_id"] == edit
    steps = client.get(comments_url(edit), headers=world.coordinator.bearer).json()["items"]
    assert [s["instance_id"] for s in steps] == [first, edit]


def test_case_form_submissions_are_not_reviewed_here(client, world, app, engine, settings):
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
    iid = new_instance_id()
    sync(client, world.caseworker_a, batch_item(iid, form_id="case_check", data=case_data()))
    for person in (world.admin, world.coordinator, world.caseworker_a):
        for response in (client.patch(review_url(iid), json={"state": "approved"}, headers=person.bearer),
                         client.get(comments_url(iid), headers=person.bearer)):
            assert response.status_code == 403 and response.json()["error"]["code"] == "submission.case_data"
    with session_scope(engine) as s:
        assert s.exec(select(Submission.review_state).where(Submission.instance_id == iid)).one() != "approved"


def test_a_change_of_state_is_announced_to_other_capabilities(app, client, world, visit_form):
    """Capabilities that leave rejected visits out of what they compute hear of a rejection."""
    heard = []
    app.state.hooks.subscribe(SubmissionReviewed, lambda e: heard.append((e.submission.instance_id, e.from_state,
                                                                           e.to_state, e.actor.user.username)))
    iid = visit(client, world.monitor)
    client.post(comments_url(iid), json={"comment": "Looks fine"}, headers=world.coordinator.bearer)
    client.patch(review_url(iid), json={"state": "rejected"}, headers=world.coordinator.bearer)
    assert heard == [(iid, "received", "rejected", "coord")]
