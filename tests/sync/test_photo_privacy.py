"""Issue 9, finding 2: photos of children lose every metadata byte, whatever their name or declared
type, over OpenRosa and over the JSON sync (batch + PUT /api/v1/blobs); images that cannot be
cleaned are refused with nothing stored. Site-visit forms opt in with ``sensitive_media``."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db import session_scope
from sync import media
from sync.models import Blob, BlobHolder, Submission, SubmissionAttachment
from sync.submission_xml import build_instance_xml
from tests.factories import batch_item, case_data, new_instance_id, sha256, visit_data
from tests.sync.factories import (
    HEIC,
    assert_no_metadata,
    jpeg_with_metadata,
    multipart_typed,
    png_with_metadata,
)

BATCH = "/api/v1/sync/batches"


def post(client, person, xml: bytes, files: list[tuple[str, bytes, str | None]]):
    body, headers = multipart_typed(xml, files)
    return client.post("/submission", content=body, headers=headers | person.basic)


def stored_files(app) -> set[str]:
    """Every file of the blob store (originals, not temp files or derived sizes)."""
    root = app.state.blobs.root
    return {p.name for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts and "derived" not in p.parts}


def attachments(engine) -> list[SubmissionAttachment]:
    with session_scope(engine) as s:
        rows = list(s.exec(select(SubmissionAttachment).order_by(SubmissionAttachment.id)))
        for r in rows:
            s.expunge(r)
        return rows


CASE_NAMES = [("child.heic", "image/heic"), ("photo.dat", "application/octet-stream"), ("child", None),
              ("upload.bin", "application/octet-stream")]


@pytest.mark.parametrize(("name", "declared"), CASE_NAMES)
def test_a_jpeg_posted_over_openrosa_under_any_name_is_stored_without_metadata(client, world, app, engine,
                                                                              case_version, name, declared):
    original = jpeg_with_metadata()
    xml = build_instance_xml(case_version, case_data(child_photo=name), new_instance_id())
    response = post(client, world.caseworker_a, xml, [(name, original, declared)])
    assert response.status_code == 201, response.text
    [row] = attachments(engine)
    assert row.received and row.media_type == "image/jpeg" and row.sha256 != sha256(original)
    assert_no_metadata(app.state.blobs.path(row.sha256).read_bytes())
    assert not app.state.blobs.exists(sha256(original))
    for variant in ("thumb", "web"):  # made on first read, from the stripped file
        assert media.derived(app.state.blobs, row.sha256, variant)
        assert_no_metadata(app.state.blobs.derived_path(row.sha256, variant).read_bytes())


def test_a_png_with_text_chunks_and_icc_is_stored_without_them(client, world, app, engine, case_version):
    xml = build_instance_xml(case_version, case_data(child_photo="scan.dat"), new_instance_id())
    assert post(client, world.caseworker_a, xml, [("scan.dat", png_with_metadata(), None)]).status_code == 201
    [row] = attachments(engine)
    assert row.media_type == "image/png"
    assert_no_metadata(app.state.blobs.path(row.sha256).read_bytes())


@pytest.mark.parametrize(("name", "declared"), [*CASE_NAMES, ("scan.png", "image/png")])
def test_a_photo_sent_by_batch_and_put_is_stored_without_metadata(client, world, app, engine, case_version,
                                                                 name, declared):
    body = png_with_metadata() if name.endswith(".png") else jpeg_with_metadata()
    item = batch_item(new_instance_id(), form_id="case_check", data=case_data(child_photo=name),
                      files={name: body})
    item["attachments"][0]["media_type"] = declared
    out = client.post(BATCH, json={"items": [item]}, headers=world.caseworker_a.bearer).json()["results"][0]
    assert out["missing"] == [sha256(body)]
    put_headers = world.caseworker_a.bearer | ({"Content-Type": declared} if declared else {})
    put = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=put_headers)
    assert put.status_code in (200, 201), put.text  # 200: the original itself is (deliberately) not stored
    [row] = attachments(engine)
    assert row.received and row.expected_sha256 == sha256(body) and row.sha256 != sha256(body)
    assert_no_metadata(app.state.blobs.path(row.sha256).read_bytes())
    assert not app.state.blobs.exists(sha256(body))
    # The announced (original) hash still makes resends idempotent.
    again = client.post(BATCH, json={"items": [item]}, headers=world.caseworker_a.bearer).json()["results"][0]
    assert (again["status"], again["missing"], again["complete"]) == ("duplicate", [], True)
    assert client.head(f"/api/v1/blobs/{sha256(body)}", headers=world.caseworker_a.bearer).status_code == 200
    assert len(attachments(engine)) == 1


def test_an_openrosa_resend_split_over_two_posts_stays_one_stripped_photo(client, world, app, engine, case_version):
    original = jpeg_with_metadata()
    xml = build_instance_xml(case_version, case_data(child_photo="c.dat"), new_instance_id())
    assert post(client, world.caseworker_a, xml, []).status_code == 201
    assert post(client, world.caseworker_a, xml, [("c.dat", original, None)]).status_code == 201
    assert post(client, world.caseworker_a, xml, [("c.dat", original, None)]).status_code == 201
    [row] = attachments(engine)
    assert row.received
    assert_no_metadata(app.state.blobs.path(row.sha256).read_bytes())
    with session_scope(engine) as s:
        assert s.exec(select(Submission)).one().complete


@pytest.mark.parametrize("name", ["child.jpg", "child.heic", "child"])
def test_a_heic_photo_is_refused_over_openrosa_and_nothing_is_stored(client, world, app, engine, case_version, name):
    before = stored_files(app)
    xml = build_instance_xml(case_version, case_data(child_photo=name), new_instance_id())
    response = post(client, world.caseworker_a, xml, [(name, HEIC, "image/jpeg")])
    assert response.status_code == 415
    assert "cannot clean" in response.text
    with session_scope(engine) as s:
        assert s.exec(select(Submission)).all() == [] and s.exec(select(Blob)).all() == []
    assert stored_files(app) == before


def test_a_heic_photo_is_refused_over_put_and_nothing_is_stored(client, world, app, engine, case_version):
    item = batch_item(new_instance_id(), form_id="case_check", data=case_data(child_photo="c.jpg"),
                      files={"c.jpg": HEIC})
    client.post(BATCH, json={"items": [item]}, headers=world.caseworker_a.bearer)
    before = stored_files(app)
    put = client.put(f"/api/v1/blobs/{sha256(HEIC)}", content=HEIC, headers=world.caseworker_a.bearer)
    assert put.status_code == 415 and put.json()["error"]["code"] == "media.unsupported_image"
    assert [r.received for r in attachments(engine)] == [False]
    assert stored_files(app) == before
    with session_scope(engine) as s:
        assert s.exec(select(Blob)).all() == [] and s.exec(select(BlobHolder)).all() == []


def test_a_file_that_is_not_an_image_is_refused_for_a_case_photo_question(client, world, engine, case_version):
    xml = build_instance_xml(case_version, case_data(child_photo="notes.txt"), new_instance_id())
    response = post(client, world.caseworker_a, xml, [("notes.txt", b"<html>not a photo</html>", "text/plain")])
    assert response.status_code == 415 and "photo question" in response.text
    with session_scope(engine) as s:
        assert s.exec(select(Submission)).all() == []


def test_site_visit_photos_are_stripped_once_staff_mark_the_form_sensitive(client, world, app, engine, visit_version):
    original = jpeg_with_metadata()

    def send(name: str, content: bytes):
        xml = build_instance_xml(visit_version, visit_data(photo_name=name), new_instance_id())
        return post(client, world.monitor, xml, [(name, content, "application/octet-stream")])

    assert send("site.dat", original).status_code == 201
    assert app.state.blobs.exists(sha256(original))  # not sensitive: kept as sent
    assert send("site.heic", HEIC).status_code == 201
    assert client.patch("/api/v1/forms/field_visit", json={"sensitive_media": "yes"},
                        headers=world.coordinator.bearer).status_code == 422
    patched = client.patch("/api/v1/forms/field_visit", json={"sensitive_media": True}, headers=world.coordinator.bearer)
    assert patched.status_code == 200 and patched.json()["settings"]["sensitive_media"] is True
    assert send("people.dat", jpeg_with_metadata(color="navy")).status_code == 201
    newest = attachments(engine)[-1]
    assert newest.name == "people.dat" and newest.media_type == "image/jpeg"
    assert_no_metadata(app.state.blobs.path(newest.sha256).read_bytes())
    refused = send("people.heic", HEIC)
    assert refused.status_code == 415 and "cannot clean" in refused.text
