"""What each event says: a site's stage change, a case transition (no identifying field, ever),
submissions of case forms (ids only), a review; announced events follow their transaction."""

from __future__ import annotations

import json

import geopandas as gpd
import shapely
from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.db import session_scope
from app.events import announce
from app.identity import Actor
from cases import transitions
from cases.models import ChildCase
from geodata import importers, upsert
from geodata.models import Site
from tests.cases.conftest import CaseKit, eligible_answers
from tests.factories import batch_item, new_instance_id, visit_data
from webhooks import endpoints, outbox
from webhooks.models import WebhookDelivery

HOOKS = "/api/v1/webhooks"


def register(client, world, url, *events) -> dict:
    response = client.post(HOOKS, json={"url": url, "events": list(events)}, headers=world.admin.bearer)
    assert response.status_code == 201, response.text
    return response.json()


def bodies(engine, event: str | None = None) -> list[dict]:
    with session_scope(engine) as s:
        rows = s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return [json.loads(r.body) for r in rows if event is None or r.event == event]


def add_site(engine, settings, code="SITE-001", lon=28.8, lat=-2.5):
    frame = gpd.GeoDataFrame({"code": [code], "name": ["Kanina pit"], "kind": ["asm_site"]},
                             geometry=[shapely.box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)], crs=4326)
    with session_scope(engine) as s:
        upsert.upsert_sites(s, read=importers.clean(frame), settings=settings,
                            blobs=FilesystemBlobStore(settings.media_path))
        return s.exec(select(Site.id).where(Site.code == code)).one()


def test_a_visit_that_changes_a_site_stage_sends_the_site_and_its_stages(client, world, visit_form, engine,
                                                                         settings, receiver):
    add_site(engine, settings)
    register(client, world, receiver.url, "site.stage_changed", "submission.created")
    response = client.post("/api/v1/sync/batches", json={"items": [batch_item(new_instance_id(), data=visit_data())]},
                           headers=world.monitor.bearer)
    assert response.status_code == 200, response.text
    (visit,) = bodies(engine, "submission.created")
    assert visit["data"]["site"] == "SITE-001"
    (change,) = bodies(engine, "site.stage_changed")
    assert change["form"] is None
    assert change["data"]["site"] == "SITE-001" and change["data"]["from"] == {"stage": 0, "status": "unassessed"}
    assert change["data"]["to"] != change["data"]["from"]


def test_announced_events_roll_back_with_their_transaction(client, world, visit_form, engine, settings, receiver):
    site_id = add_site(engine, settings)
    register(client, world, receiver.url, "site.stage_changed")
    payload = {"site_id": site_id, "from": [0, "unassessed"], "to": [2, "assessed"]}
    try:
        with session_scope(engine) as s:
            announce(s, "site.stage_changed", payload)
            s.flush()
            raise RuntimeError("the change fails after the event was announced")
    except RuntimeError:
        pass
    assert bodies(engine) == []
    with session_scope(engine) as s:
        announce(s, "site.stage_changed", payload)  # drained at commit even without a flush before
    assert [b["data"]["to"] for b in bodies(engine)] == [{"stage": 2, "status": "assessed"}]


def test_case_events_and_case_form_submissions_carry_no_identifying_field(client, world, engine, settings,
                                                                          receiver):
    register(client, world, receiver.url, "case.transition", "submission.created", "submission.reviewed")
    kit = CaseKit(engine=engine, settings=settings, world=world)
    kit.install_forms()
    answers = eligible_answers()
    case = kit.intake(world.caseworker_a)
    with session_scope(engine) as s:
        case = s.get(ChildCase, case.id)
        transitions.transition(s, actor=Actor(user=world.coordinator.user), case=case, action="verify")

    (intake,) = bodies(engine, "submission.created")
    assert intake["form"] == "child_case_intake"
    assert "data" not in intake["data"] and "site" not in intake["data"]
    opened, event = bodies(engine, "case.transition")
    assert set(event["data"]) == set(opened["data"]) == {"case", "action", "from", "to", "organisation", "at"}
    assert (opened["data"]["case"], opened["data"]["action"]) == (case.code, "submit")
    assert (opened["data"]["from"], opened["data"]["to"]) == (None, "submitted")
    assert (event["data"]["case"], event["data"]["action"]) == (case.code, "verify")
    assert (event["data"]["from"], event["data"]["to"]) == ("submitted", "verified")
    sent = json.dumps(bodies(engine))
    for value in (answers["child_given_name"], answers["child_family_name"], answers["caregiver_phone"],
                  answers["monitor_notes"]):
        assert value not in sent


def test_a_review_is_sent_with_the_states_before_and_after(client, world, visit_form, engine, receiver):
    register(client, world, receiver.url, "submission.reviewed")
    instance_id = new_instance_id()
    client.post("/api/v1/sync/batches", json={"items": [batch_item(instance_id)]}, headers=world.monitor.bearer)
    response = client.patch(f"/api/v1/submissions/{instance_id}/review", json={"state": "approved"},
                           headers=world.coordinator.bearer)
    assert response.status_code < 300, response.text
    (review,) = bodies(engine, "submission.reviewed")
    assert review["data"]["review"] == {"from": "received", "to": "approved"}
    assert review["data"]["review_state"] == "approved"


def test_each_process_follows_endpoint_changes_and_never_keeps_a_rolled_back_one(engine, settings, receiver):
    def add(session, event: str) -> int:
        made = endpoints.register(session, url=receiver.url, events=[event], server_secret=settings.secret,
                                  allow_private=True)
        return made.endpoint.id

    with session_scope(engine) as s:
        assert outbox.matching(s, "case.transition") == []  # read and cached: no endpoint
    try:
        with session_scope(engine) as s:
            ghost = add(s, "case.transition")
            assert outbox.matching(s, "case.transition") == [ghost]  # seen by its own transaction only
            raise RuntimeError("the registration rolls back")
    except RuntimeError:
        pass
    with session_scope(engine) as s:
        real = add(s, "site.stage_changed")  # the counter moves to the value the rolled-back change had reached
    with session_scope(engine) as s:
        assert outbox.matching(s, "case.transition") == []
        assert outbox.matching(s, "site.stage_changed") == [real]
