"""Issue 9, finding 5: knowing (and announcing) a file's hash grants nothing; only the bytes prove
possession. A caller reads a blob it sent itself or one of a record it may read; HEAD answers alike
for "absent" and "not yours"; case-form files never leave through /api/v1/media."""

from __future__ import annotations

from sqlmodel import select

from app.db import session_scope
from sync.models import Submission, SubmissionAttachment
from sync.submission_xml import build_instance_xml
from tests.factories import (
    batch_item,
    case_data,
    multipart,
    new_instance_id,
    photo,
    sha256,
    visit_data,
)

BATCH = "/api/v1/sync/batches"


def sync(client, person, item) -> dict:
    response = client.post(BATCH, json={"items": [item]}, headers=person.bearer)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def upload(client, person, body: bytes, *, name: str = "site.jpg") -> str:
    """A site visit with a photo, announced then PUT by ``person``; returns the instance id."""
    item = batch_item(new_instance_id(), data=visit_data(photo_name=name), files={name: body})
    assert sync(client, person, item)["missing"] == [sha256(body)]
    assert client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=person.bearer).status_code == 201
    return item["instance_id"]


def head(client, person, sha: str):
    response = client.head(f"/api/v1/blobs/{sha}", headers=person.bearer)
    return response.status_code, dict(response.headers), response.content


def received(engine, instance_id: str) -> list[bool]:
    with session_scope(engine) as s:
        sub = s.exec(select(Submission).where(Submission.instance_id == instance_id)).one()
        return [a.received for a in s.exec(select(SubmissionAttachment)
                                           .where(SubmissionAttachment.submission_id == sub.id))]


def test_announcing_another_monitors_photo_twice_does_not_make_it_yours(client, world, visit_form, engine):
    body = photo(41)
    upload(client, world.monitor, body)
    url = f"/api/v1/media/{sha256(body)}"
    assert client.get(url, headers=world.monitor.bearer).status_code == 200
    # The attack: announce the hash in two batches, then read it.
    for _ in range(2):
        item = batch_item(new_instance_id(), data=visit_data(photo_name="stolen.jpg"), files={"stolen.jpg": body})
        out = sync(client, world.monitor2, item)
        assert (out["status"], out["missing"], out["complete"]) == ("created", [sha256(body)], False)
        assert received(engine, item["instance_id"]) == [False]
    assert client.get(url, headers=world.monitor2.bearer).status_code == 404
    assert client.get(url, params={"size": "thumb"}, headers=world.monitor2.bearer).status_code == 404
    # Staff still read it through the record, and monitor2 only gets it by sending the bytes.
    assert client.get(url, headers=world.coordinator.bearer).status_code == 200
    assert client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor2.bearer).status_code == 200
    assert client.get(url, headers=world.monitor2.bearer).status_code == 200


def test_admins_too_must_send_the_bytes(client, world, visit_form):
    body = photo(42)
    upload(client, world.monitor, body)
    for _ in range(2):
        item = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"), files={"a.jpg": body})
        assert sync(client, world.admin, item)["missing"] == [sha256(body)]


def test_head_answers_alike_for_absent_and_not_yours(client, world, visit_form):
    body = photo(43)
    upload(client, world.monitor, body)
    never = sha256(b"never stored anywhere")
    for person in (world.monitor2, world.caseworker_b, world.coordinator, world.admin):
        assert head(client, person, sha256(body)) == head(client, person, never)
        assert head(client, person, sha256(body))[0] == 404
    # Even after announcing it (which used to unlock the answer).
    item = batch_item(new_instance_id(), data=visit_data(photo_name="x.jpg"), files={"x.jpg": body})
    sync(client, world.monitor2, item)
    assert head(client, world.monitor2, sha256(body)) == head(client, world.monitor2, never)
    assert head(client, world.monitor, sha256(body))[0] == 200


def test_a_caseworker_of_another_ngo_cannot_take_a_child_photo_by_its_hash(client, world, app, engine, case_version):
    original = photo(44)
    xml = build_instance_xml(case_version, case_data(child_photo="child.jpg"), new_instance_id())
    body, headers = multipart(xml, {"child.jpg": original})
    assert client.post("/submission", content=body, headers=headers | world.caseworker_a.basic).status_code == 201
    with session_scope(engine) as s:
        stored = s.exec(select(SubmissionAttachment)).one().sha256
    never = sha256(b"nothing")
    for sha in (stored, sha256(original)):
        for _ in range(2):
            item = batch_item(new_instance_id(), form_id="case_check", data=case_data(child_photo="c.jpg"),
                              files={"c.jpg": original if sha == sha256(original) else b"unknown"})
            item["attachments"][0]["sha256"] = sha
            out = sync(client, world.caseworker_b, item)
            assert out["missing"] == [sha] and out["complete"] is False
            assert received(engine, item["instance_id"]) == [False]
        assert head(client, world.caseworker_b, sha) == head(client, world.caseworker_b, never)
    # Case-form files never leave through the generic media route, not even to the owning NGO.
    for person in (world.caseworker_a, world.caseworker_b, world.coordinator, world.admin):
        assert client.get(f"/api/v1/media/{stored}", headers=person.bearer).status_code == 404
        assert client.get(f"/api/v1/media/{stored}", params={"size": "web"}, headers=person.bearer).status_code == 404
