"""Plain new submissions of a batch are stored together (one statement per table for a run of them):
what is stored and what each item answers are exactly what storing them one by one gives."""

from __future__ import annotations

from sqlmodel import select

from app.db import session_scope
from app.errors import Conflict
from app.events import SubmissionStored
from app.models import AuditLog
from forms.queries import get_form, published_version
from sync.models import Submission, SubmissionGeopoint
from sync.submission_xml import build_instance_xml
from tests.factories import batch_item, multipart, new_instance_id, visit_data

URL = "/api/v1/sync/batches"
#: Columns that differ between two stored submissions of the same answers.
OWN_COLUMNS = {"id", "instance_id", "root_instance_id", "received_at", "updated_at", "xml", "xml_sha256",
               "client_device_id", "user_agent"}


def results(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["results"]


def row_of(engine, instance_id: str) -> tuple[dict, list[tuple], list[tuple]]:
    """(submission columns but its own, its geopoints, its audit entries) of one stored submission."""
    with session_scope(engine) as s:
        row = s.exec(select(Submission).where(Submission.instance_id == instance_id)).one()
        columns = {k: v for k, v in row.model_dump().items() if k not in OWN_COLUMNS}
        points = [(p.field_path, p.repeat_index, p.lon, p.lat, p.altitude, p.accuracy)
                  for p in s.exec(select(SubmissionGeopoint).where(SubmissionGeopoint.submission_id == row.id))]
        entries = [(a.action, a.actor_user_id, a.actor_label, a.object_type, a.details, a.count)
                   for a in s.exec(select(AuditLog).where(AuditLog.object_id == instance_id))]
    return columns, points, entries


def test_a_batch_item_is_stored_as_its_openrosa_upload_would_be(client, world, visit_form, engine):
    data = visit_data(workers=7, lat=-2.51, lon=28.81)
    by_openrosa, by_batch = new_instance_id(), new_instance_id()
    with session_scope(engine) as s:
        xml = build_instance_xml(published_version(s, get_form(s, "field_visit")), data, by_openrosa)
    body, headers = multipart(xml, None)
    assert client.post("/submission", content=body, headers=headers | world.monitor.basic).status_code == 201
    out = results(client.post(URL, json={"items": [batch_item(by_batch, data=data)]}, headers=world.monitor.basic))
    assert out == [{"instance_id": by_batch, "status": "created", "missing": [], "complete": True}]
    assert row_of(engine, by_batch) == row_of(engine, by_openrosa)
    assert row_of(engine, by_batch)[1], "the geopoint row is written"
    assert [e[0] for e in row_of(engine, by_batch)[2]] == ["submission.create"]


def test_items_keep_the_effects_of_their_order(client, world, visit_form, engine):
    original, edit, twin = new_instance_id(), new_instance_id(), new_instance_id()
    items = [
        batch_item(edit, data=visit_data(workers=2), deprecated_id=original),  # names a record not there yet
        batch_item(original, data=visit_data(workers=1)),
        batch_item(twin, data=visit_data(workers=3)),
        batch_item(twin, data=visit_data(workers=3)),  # the same item twice in one batch
        batch_item(twin, data=visit_data(workers=4)),  # same instanceID, other answers
        batch_item(new_instance_id(), data=visit_data(workers=5), deprecated_id=original),  # an edit after it
    ]
    out = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert [r["status"] for r in out] == ["invalid", "created", "created", "duplicate", "conflict", "edit"]
    assert out[0]["code"] == "submission.deprecated_not_found"
    assert out[4]["code"] == "submission.xml_conflict"
    with session_scope(engine) as s:
        stored = [(r.instance_id, r.data["/field_visit/workers"]) for r in s.exec(select(Submission).order_by(Submission.id))]
    assert stored == [(original, 1), (twin, 3), (items[5]["instance_id"], 5)]


def test_an_item_refused_while_its_run_is_stored_is_rolled_back_alone(client, app, world, visit_form, engine):
    refused = new_instance_id()
    seen = []  # a subscriber may keep the submissions it is given (the rolled-back ones too)

    def refuse_one(event: SubmissionStored) -> None:
        seen.append(event.submission)
        if event.submission.instance_id == refused:
            raise Conflict("this one is refused after its insert", code="test.refused")

    app.state.hooks.subscribe(SubmissionStored, refuse_one)
    items = [batch_item(new_instance_id(), data=visit_data(workers=n)) for n in range(3)]
    items.insert(1, batch_item(refused, data=visit_data(workers=9)))
    out = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert [(r["status"], r.get("code")) for r in out] == [("created", None), ("conflict", "test.refused"),
                                                           ("created", None), ("created", None)]
    with session_scope(engine) as s:
        stored = {r.instance_id for r in s.exec(select(Submission))}
        audited = {a.object_id for a in s.exec(select(AuditLog).where(AuditLog.action == "submission.create"))}
    assert stored == audited == {items[i]["instance_id"] for i in (0, 2, 3)}


def test_a_run_of_many_items_answers_each_in_order(client, world, visit_form, engine):
    items = [batch_item(new_instance_id(), data=visit_data(workers=n, lat=-2.5 + n * 1e-4)) for n in range(120)]
    out = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert [r["instance_id"] for r in out] == [i["instance_id"] for i in items]
    assert {r["status"] for r in out} == {"created"}
    with session_scope(engine) as s:
        stored = {r.instance_id: (r.data["/field_visit/workers"], r.lat) for r in s.exec(select(Submission))}
    assert stored == {i["instance_id"]: (n, -2.5 + n * 1e-4) for n, i in enumerate(items)}
    again = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert {r["status"] for r in again} == {"duplicate"}


def test_a_resent_batch_with_new_items_among_known_ones(client, world, visit_form, engine):
    sent = [batch_item(new_instance_id(), data=visit_data(workers=n)) for n in range(3)]
    results(client.post(URL, json={"items": sent}, headers=world.monitor.bearer))
    new = [batch_item(new_instance_id(), data=visit_data(workers=n)) for n in (10, 11)]
    bad = batch_item(new_instance_id(), data=visit_data() | {"/field_visit/workers": "many"})
    out = results(client.post(URL, json={"items": [sent[0], new[0], bad, sent[1], new[1], sent[2]]},
                              headers=world.monitor.bearer))
    assert [r["status"] for r in out] == ["duplicate", "created", "invalid", "duplicate", "created", "duplicate"]
    assert [r["instance_id"] for r in out] == [i["instance_id"] for i in (sent[0], new[0], bad, sent[1], new[1], sent[2])]
    with session_scope(engine) as s:
        assert {r.instance_id for r in s.exec(select(Submission))} == {i["instance_id"] for i in sent + new}
