"""The JSON sync flow against a real uvicorn process: batch → PUT the missing files → resend the
batch (all duplicate, all complete) → read it all back through the read API."""

from __future__ import annotations

import httpx
import pytest

from app import accounts
from app.blobs import FilesystemBlobStore
from app.db import session_scope
from tests.factories import add_form, batch_item, new_instance_id, photo_of_bytes, sha256, visit_data

pytestmark = pytest.mark.e2e


def test_batch_then_blobs_then_resend(live_server, world, settings, engine):
    with session_scope(engine) as s:
        add_form(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings)
        _, token = accounts.create_device(s, name="json-tablet", user=world.monitor.user.id)
    device = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    photos = {f"p{i}.jpg": photo_of_bytes(30_000, seed=i) for i in range(4)}
    shared = photos["p0.jpg"]  # the same photo used by two submissions is uploaded once
    items = [
        batch_item(new_instance_id(), data=visit_data(photo_name="p0.jpg", pit_photos=["p1.jpg"]),
                   files={"p0.jpg": shared, "p1.jpg": photos["p1.jpg"]}),
        batch_item(new_instance_id(), data=visit_data(photo_name="p2.jpg", pit_photos=["p0.jpg", "p3.jpg"]),
                   files={"p2.jpg": photos["p2.jpg"], "p0.jpg": shared, "p3.jpg": photos["p3.jpg"]}),
        batch_item(new_instance_id(), data=visit_data(workers=3)),
    ]
    first = device.post("/api/v1/sync/batches", json={"items": items}).json()["results"]
    assert [r["status"] for r in first] == ["created", "created", "created"]
    missing = {h for r in first for h in r["missing"]}
    assert missing == {sha256(b) for b in photos.values()}

    for digest in sorted(missing):
        assert device.head(f"/api/v1/blobs/{digest}").status_code == 404
        body = next(b for b in photos.values() if sha256(b) == digest)
        assert device.put(f"/api/v1/blobs/{digest}", content=body).status_code == 201
        assert device.head(f"/api/v1/blobs/{digest}").status_code == 200

    again = device.post("/api/v1/sync/batches", json={"items": items}).json()["results"]
    assert [(r["status"], r["missing"], r["complete"]) for r in again] == [("duplicate", [], True)] * 3

    reader = httpx.Client(base_url=live_server.url, headers=world.coordinator.bearer, timeout=30)
    listed = reader.get("/api/v1/forms/field_visit/submissions").json()["items"]
    assert [i["instance_id"] for i in listed] == [i["instance_id"] for i in items]
    assert all(i["complete"] and i["device"] == "json-tablet" for i in listed)
    url = listed[1]["attachments"][0]["url"]
    assert reader.get(url).content == photos["p2.jpg"]
    device.close()
    reader.close()


def test_two_devices_racing_with_overlapping_batches_store_each_submission_once(live_server, world, settings,
                                                                                   engine):
    from concurrent.futures import ThreadPoolExecutor

    from sqlmodel import func, select

    from sync.models import Submission

    with session_scope(engine) as s:
        add_form(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings)
    items = [batch_item(new_instance_id(), data=visit_data(workers=i)) for i in range(60)]
    orders = [items, list(reversed(items))]

    def send(order: list[dict]) -> list[dict]:
        with httpx.Client(base_url=live_server.url, headers=world.monitor.bearer, timeout=120) as client:
            response = client.post("/api/v1/sync/batches", json={"items": order})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(send, orders))
    for results in outcomes:
        assert {r["status"] for r in results} <= {"created", "duplicate", "conflict"}
        assert all(r["code"] == "batch.retry" for r in results if r["status"] == "conflict")
    created = [r["instance_id"] for results in outcomes for r in results if r["status"] == "created"]
    assert len(created) == len(set(created))
    final = send(items)
    assert {r["status"] for r in final} == {"duplicate"}
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Submission)).one() == 60
