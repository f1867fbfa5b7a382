"""HEAD/PUT /api/v1/blobs/{sha256}: verified by hash, idempotent, only for callers expecting the file."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from app.db import session_scope
from app.main import create_app
from sync.models import Blob, Submission, SubmissionAttachment
from tests.factories import (
    CASE_MD,
    add_form,
    batch_item,
    case_data,
    new_instance_id,
    photo,
    sha256,
    visit_data,
)

BATCH = "/api/v1/sync/batches"


def announce(client, person, files: dict[str, bytes], *, form_id: str = "field_visit", data=None) -> str:
    """Sync one submission that references ``files`` without sending them; returns its instance id."""
    iid = new_instance_id()
    names = list(files)
    data = data if data is not None else visit_data(photo_name=names[0], pit_photos=names[1:])
    item = batch_item(iid, form_id=form_id, data=data, files=files)
    result = client.post(BATCH, json={"items": [item]}, headers=person.bearer).json()["results"][0]
    assert result["status"] == "created", result
    return iid


def attachment_rows(engine) -> list[SubmissionAttachment]:
    with session_scope(engine) as s:
        return list(s.exec(select(SubmissionAttachment).order_by(SubmissionAttachment.id)))


def test_head_says_whether_an_upload_is_needed(client, world, visit_form):
    body = photo(1)
    announce(client, world.monitor, {"a.jpg": body})
    url = f"/api/v1/blobs/{sha256(body)}"
    assert client.head(url, headers=world.monitor.bearer).status_code == 404
    assert client.put(url, content=body, headers=world.monitor.bearer).status_code == 201
    assert client.head(url, headers=world.monitor.bearer).status_code == 200


def test_put_is_idempotent(client, world, visit_form, engine):
    body = photo(2)
    iid = announce(client, world.monitor, {"a.jpg": body})
    url = f"/api/v1/blobs/{sha256(body)}"
    first = client.put(url, content=body, headers=world.monitor.bearer)
    second = client.put(url, content=body, headers=world.monitor.bearer)
    assert (first.status_code, first.json()["attached"]) == (201, [iid])
    assert (second.status_code, second.json()) == (200, {"sha256": sha256(body), "created": False, "attached": []})
    with session_scope(engine) as s:
        submission = s.exec(select(Submission)).one()
        assert (submission.attachments_present, submission.complete) == (1, True)
        assert s.get(Blob, sha256(body)).media_type == "image/jpeg"


def test_one_upload_fills_every_attachment_of_the_uploader_waiting_for_it(client, world, visit_form, engine):
    """Issue 9, finding 5: another user's upload never fills your announcement; you send the bytes."""
    body = photo(3)
    first = announce(client, world.monitor, {"a.jpg": body})
    second = announce(client, world.monitor, {"b.jpg": body})
    theirs = announce(client, world.monitor2, {"c.jpg": body})
    put = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor.bearer)
    assert sorted(put.json()["attached"]) == sorted([first, second])
    assert [r.received for r in attachment_rows(engine)] == [True, True, False]
    own = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor2.bearer)
    assert (own.status_code, own.json()["attached"]) == (200, [theirs])
    assert all(r.received and r.sha256 == sha256(body) for r in attachment_rows(engine))


def test_body_that_does_not_match_the_hash_is_refused_and_nothing_stored(client, world, visit_form, engine, app):
    body = photo(4)
    announce(client, world.monitor, {"a.jpg": body})
    response = client.put(f"/api/v1/blobs/{sha256(body)}", content=photo(5), headers=world.monitor.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "blob.hash_mismatch"
    assert not app.state.blobs.exists(sha256(body)) and not app.state.blobs.exists(sha256(photo(5)))
    assert [r.received for r in attachment_rows(engine)] == [False]
    assert list(app.state.blobs.tmp.iterdir()) == []


@pytest.mark.parametrize("bad", ["abc", "../../etc/passwd", "G" * 64, "A" * 64])
def test_a_path_that_is_not_a_sha256_is_422(client, world, bad):
    for method in ("PUT", "HEAD"):
        response = client.request(method, f"/api/v1/blobs/{bad}", content=b"x", headers=world.admin.bearer)
        assert response.status_code in (404, 422) if "/" in bad else response.status_code == 422


def test_only_a_caller_expecting_the_file_or_an_admin_may_put(client, world, visit_form, app):
    body = photo(6)
    url = f"/api/v1/blobs/{sha256(body)}"
    for person in (world.monitor, world.coordinator, world.caseworker_a):
        assert client.head(url, headers=person.bearer).status_code == 404
        refused = client.put(url, content=body, headers=person.bearer)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "blob.not_expected"
    assert not app.state.blobs.exists(sha256(body))
    assert client.put(url, content=body).status_code == 401
    admin = client.put(url, content=body, headers=world.admin.bearer)
    assert admin.status_code == 201 and admin.json()["attached"] == []
    assert client.head(url, headers=world.admin.bearer).status_code == 200
    # Someone else's file does not let you probe: the admin's upload is not monitor2's.
    announce(client, world.monitor2, {"a.jpg": body})
    assert client.head(url, headers=world.monitor2.bearer).status_code == 404


def test_a_file_that_claims_to_be_a_jpeg_and_is_not_is_refused(client, world, visit_form, engine, app):
    fake = b"MZ\x90\x00 definitely not a jpeg" * 50
    announce(client, world.monitor, {"a.jpg": fake})
    response = client.put(f"/api/v1/blobs/{sha256(fake)}", content=fake, headers=world.monitor.bearer)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "media.not_an_image"
    assert not app.state.blobs.exists(sha256(fake))
    assert [r.received for r in attachment_rows(engine)] == [False]


def test_too_large_is_413(settings, world, engine):
    settings.max_attachment_bytes = 1_000
    app = create_app(settings)
    body = photo(7, size=(400, 300), noise=True)
    with TestClient(app) as client:
        with session_scope(engine) as s:
            add_form(s, blobs=app.state.blobs, settings=settings)
        announce(client, world.monitor, {"a.jpg": body})
        response = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor.bearer)
        streamed = client.put(f"/api/v1/blobs/{sha256(body)}", content=iter([body[:600], body[600:]]),
                              headers=world.monitor.bearer)
    app.state.engine.dispose()
    assert response.status_code == 413 and response.json()["error"]["code"] == "blob.too_large"
    assert streamed.status_code == 413
    assert not app.state.blobs.exists(sha256(body))


def test_case_form_photos_are_stored_without_metadata(client, world, app, engine, settings):
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
    image = Image.new("RGB", (64, 48), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010F] = "TabletMaker"  # Make
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    body = out.getvalue()
    announce(client, world.caseworker_a, {"p.jpg": body}, form_id="case_check",
             data=case_data(child_photo="p.jpg"))
    put = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.caseworker_a.bearer)
    assert put.status_code in (200, 201), put.text
    row = attachment_rows(engine)[0]
    assert row.received and row.sha256 != sha256(body) and row.expected_sha256 == sha256(body)
    assert not app.state.blobs.exists(sha256(body))
    with Image.open(app.state.blobs.path(row.sha256)) as stored:
        assert not stored.getexif()
    # Nothing more to upload for this hash, even though the original is (deliberately) not stored.
    assert client.head(f"/api/v1/blobs/{sha256(body)}", headers=world.caseworker_a.bearer).status_code == 200
