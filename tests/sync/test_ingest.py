"""``receive_submission``: the OpenRosa decision table row by row, split uploads, edits, races."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session, func, select

from app.composition import build_hooks
from app.db import session_scope
from app.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, UnsupportedMedia
from app.models import AuditLog
from forms import service as forms_service
from sync import ingest
from sync.media import IncomingFile
from sync.models import Blob, Submission, SubmissionAttachment, SubmissionGeopoint
from tests.factories import jpeg, new_instance_id
from tests.sync.factories import (
    PHOTO_CASE_MD,
    actor,
    blobs_for,
    make_form,
    photo_case_data,
    png_header_only,
    typed_visit_data,
    xml_for,
)


@pytest.fixture
def visit(session, settings):
    form, version = make_form(session, settings)
    session.commit()
    return form, version


class Uploads:
    """Files as the route would hand them over: already on disk."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "parts"
        self.dir.mkdir()

    def __call__(self, **files: bytes) -> list[IncomingFile]:
        out = []
        for name, content in files.items():
            name = name.replace("__", ".")
            path = self.dir / f"{len(list(self.dir.iterdir()))}.part"
            path.write_bytes(content)
            out.append(IncomingFile(name=name, path=path, size=len(content), media_type="image/jpeg"))
        return out


@pytest.fixture
def uploads(tmp_path):
    return Uploads(tmp_path)


def receive(session, settings, who, xml, files=(), **kwargs):
    return ingest.receive_submission(session, blobs=blobs_for(settings), settings=settings, hooks=build_hooks(), actor=actor(who),
                                      xml=xml, files=list(files), **kwargs)


def count(session: Session, model) -> int:  # noqa: ANN001
    return session.exec(select(func.count()).select_from(model)).one()


# -- new, duplicate, split -------------------------------------------------------------------


def test_new_submission_is_created_with_location_geopoints_and_attachments(session, settings, world, visit, uploads):
    _, version = visit
    xml = xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg"}), "uuid:one")
    result = receive(session, settings, world.monitor, xml, uploads(a__jpg=jpeg()), client_device_id="collect:abc",
                     user_agent="Collect/2025.2")
    sub = result.submission
    assert (result.status, result.missing) == ("created", [])
    assert (sub.instance_id, sub.root_instance_id, sub.current, sub.complete) == ("uuid:one", "uuid:one", True, True)
    assert (sub.lon, sub.lat, sub.altitude, sub.accuracy) == (25.5, -10.7, 1200.0, 5.0)
    assert (sub.client_device_id, sub.user_agent, sub.submitted_by_user_id) == ("collect:abc", "Collect/2025.2",
                                                                                  world.monitor.user.id)
    assert sub.data["/data/workers"] == 12 and len(sub.data["/data/pits"]) == 2
    points = session.exec(select(SubmissionGeopoint).order_by(SubmissionGeopoint.id)).all()
    assert [(p.field_path, p.repeat_index, p.lat) for p in points] == [
        ("/data/location", 0, -10.7), ("/data/pits/pit_gps", 0, -10.71), ("/data/pits/pit_gps", 1, -10.72)]
    (att,) = ingest.attachments_of(session, sub)
    assert (att.name, att.field_path, att.received, att.media_type) == ("a.jpg", "/data/photo", True, "image/jpeg")
    assert blobs_for(settings).exists(att.sha256)
    assert session.exec(select(AuditLog).where(AuditLog.action == "submission.create")).one().object_id == "uuid:one"


def test_identical_resend_is_a_duplicate_without_a_second_row(session, settings, world, visit):
    _, version = visit
    xml = xml_for(version, typed_visit_data())
    assert receive(session, settings, world.monitor, xml).status == "created"
    again = receive(session, settings, world.monitor, xml)
    assert (again.status, again.missing) == ("duplicate", [])
    assert count(session, Submission) == 1


def test_split_upload_completes_the_submission(session, settings, world, visit, uploads):
    _, version = visit
    xml = xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg", "/data/photo2": "b.jpg"}))
    first = receive(session, settings, world.monitor, xml, uploads(a__jpg=jpeg(color="red")))
    assert (first.status, first.missing, first.submission.complete) == ("created", ["b.jpg"], False)
    assert (first.submission.attachments_expected, first.submission.attachments_present) == (2, 1)
    second = receive(session, settings, world.monitor, xml, uploads(b__jpg=jpeg(color="blue"), extra__jpg=jpeg()))
    assert (second.status, second.missing, second.submission.complete) == ("attachments_added", [], True)
    assert second.submission.attachments_present == 2
    names = {a.name for a in ingest.attachments_of(session, second.submission)}
    assert names == {"a.jpg", "b.jpg"}  # the unreferenced extra.jpg is ignored
    assert receive(session, settings, world.monitor, xml, uploads(b__jpg=jpeg(color="green"))).status == "duplicate"
    assert count(session, Submission) == 1


def test_same_instance_id_with_different_xml_is_a_conflict(session, settings, world, visit):
    _, version = visit
    receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:same"))
    with pytest.raises(Conflict) as info:
        receive(session, settings, world.monitor, xml_for(version, typed_visit_data(**{"/data/workers": 13}), "uuid:same"))
    assert info.value.code == "submission.xml_conflict"


def test_missing_instance_id_dedups_on_the_xml_bytes(session, settings, world, visit):
    _, version = visit
    xml = xml_for(version, typed_visit_data(), "uuid:placeholder").replace(
        b"<meta><instanceID>uuid:placeholder</instanceID></meta>", b"")
    first = receive(session, settings, world.monitor, xml)
    assert first.submission.instance_id.startswith("uuid:")
    assert receive(session, settings, world.monitor, xml).status == "duplicate"


# -- edits ---------------------------------------------------------------------------------


def test_edit_creates_a_new_current_version_keeping_root_and_attachments(session, settings, world, visit, uploads):
    _, version = visit
    original = receive(session, settings, world.monitor,
                       xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg"}), "uuid:v1"), uploads(a__jpg=jpeg()))
    edited_xml = xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg", "/data/workers": 20}), "uuid:v2", "uuid:v1")
    edit = receive(session, settings, world.monitor, edited_xml)
    old = original.submission
    session.refresh(old)
    assert (edit.status, edit.missing) == ("edit", [])
    assert (edit.submission.root_instance_id, edit.submission.deprecated_id, edit.submission.current) == \
        ("uuid:v1", "uuid:v1", True)
    assert (old.current, old.superseded_by) == (False, "uuid:v2")
    (carried,) = ingest.attachments_of(session, edit.submission)
    (first,) = ingest.attachments_of(session, old)
    assert carried.received and carried.sha256 == first.sha256
    assert edit.submission.data["/data/workers"] == 20
    third = receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:v3", "uuid:v2"))
    assert third.submission.root_instance_id == "uuid:v1"
    assert session.exec(select(AuditLog).where(AuditLog.action == "submission.edit")).all()


def test_edit_of_an_unknown_submission_is_not_found(session, settings, world, visit):
    _, version = visit
    with pytest.raises(NotFound) as info:
        receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), new_instance_id(), "uuid:nowhere"))
    assert info.value.code == "submission.deprecated_not_found"


def test_edit_of_a_superseded_version_is_a_conflict(session, settings, world, visit):
    _, version = visit
    receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:a1"))
    receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:a2", "uuid:a1"))
    with pytest.raises(Conflict) as info:
        receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:a3", "uuid:a1"))
    assert info.value.code == "submission.already_superseded"


def test_identical_resend_of_an_edit_is_a_duplicate(session, settings, world, visit):
    _, version = visit
    receive(session, settings, world.monitor, xml_for(version, typed_visit_data(), "uuid:b1"))
    edit_xml = xml_for(version, typed_visit_data(), "uuid:b2", "uuid:b1")
    assert receive(session, settings, world.monitor, edit_xml).status == "edit"
    assert receive(session, settings, world.monitor, edit_xml).status == "duplicate"


# -- forms, versions, access ---------------------------------------------------------------


def test_unknown_form_and_unknown_version_are_not_found(session, settings, world, visit):
    _, version = visit
    xml = xml_for(version, typed_visit_data())
    with pytest.raises(NotFound) as info:
        receive(session, settings, world.monitor, xml.replace(b'id="visit"', b'id="nosuchform"'))
    assert info.value.code == "form.not_found"
    with pytest.raises(NotFound) as info:
        receive(session, settings, world.monitor, xml.replace(b'version="1"', b'version="99"'))
    assert info.value.code == "form.version_not_found"


def test_older_versions_keep_accepting_submissions(session, settings, world, visit):
    _, v1 = visit
    make_form(session, settings, version="2")
    assert receive(session, settings, world.monitor, xml_for(v1, typed_visit_data())).submission.form_version_id == v1.id


def test_closed_form_refuses_new_submissions_but_acknowledges_resends(session, settings, world, visit):
    form, version = visit
    xml = xml_for(version, typed_visit_data())
    receive(session, settings, world.monitor, xml)
    forms_service.set_state(session, form=form, state="closed", actor=None)
    with pytest.raises(Forbidden) as info:
        receive(session, settings, world.monitor, xml_for(version, typed_visit_data()))
    assert info.value.code == "form.closed" and "closed" in info.value.message
    assert receive(session, settings, world.monitor, xml).status == "duplicate"


def test_roles_limit_which_forms_may_be_submitted(session, settings, world, visit):
    _, visit_version = visit
    _, case_version = make_form(session, settings, md=PHOTO_CASE_MD, form_id="case_intake", kind="case_intake")
    with pytest.raises(Forbidden) as info:
        receive(session, settings, world.caseworker_a, xml_for(visit_version, typed_visit_data()))
    assert info.value.code == "submission.forbidden"
    with pytest.raises(Forbidden):
        receive(session, settings, world.monitor, xml_for(case_version, photo_case_data()))
    assert receive(session, settings, world.caseworker_a, xml_for(case_version, photo_case_data())).status \
        == "created"
    assert receive(session, settings, world.coordinator, xml_for(visit_version, typed_visit_data())).status == "created"


def test_location_field_setting_picks_the_location(session, settings, world, visit):
    form, version = visit
    form.settings = {**form.settings, "location_field": "/data/pits/pit_gps"}
    session.add(form)
    sub = receive(session, settings, world.monitor, xml_for(version, typed_visit_data())).submission
    assert (sub.lat, sub.lon) == (-10.71, 25.51)


# -- nothing half-stored ---------------------------------------------------------------------


@pytest.mark.parametrize(("content", "error", "code"), [
    (b"<html>not a photo</html>", UnsupportedMedia, "media.not_an_image"),
    (png_header_only(50_000, 50_000), PayloadTooLarge, "media.image_too_large"),
])
def test_a_bad_attachment_refuses_the_whole_submission(engine, settings, world, visit, uploads, content, error, code):
    _, version = visit
    xml = xml_for(version, typed_visit_data(**{"/data/photo": "good.jpg", "/data/photo2": "bad.jpg"}))
    with pytest.raises(error) as info, session_scope(engine) as s:
        receive(s, settings, world.monitor, xml, uploads(good__jpg=jpeg(), bad__jpg=content))
    assert info.value.code == code
    with session_scope(engine) as s:
        assert (count(s, Submission), count(s, SubmissionAttachment), count(s, Blob)) == (0, 0, 0)


@pytest.mark.parametrize(("override", "error"), [
    ({"/data/location": "95 25"}, Invalid),
    ({"/data/workers": "many"}, Invalid),
    ({"/data/photo": "../../../etc/passwd"}, Invalid),
])
def test_invalid_data_stores_nothing(engine, settings, world, visit, override, error):
    _, version = visit
    xml = xml_for(version, typed_visit_data(**override))
    with pytest.raises(error), session_scope(engine) as s:
        receive(s, settings, world.monitor, xml)
    with session_scope(engine) as s:
        assert count(s, Submission) == 0


def test_hostile_xml_is_refused(session, settings, world, visit):
    xxe = (b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<data id="visit" version="1"><g><note>&x;</note></g></data>')
    with pytest.raises(BadRequest, match="DTD"):
        receive(session, settings, world.monitor, xxe)


# -- case forms ----------------------------------------------------------------------------


def test_case_form_photos_are_stored_without_metadata(session, settings, world, uploads):
    _, version = make_form(session, settings, md=PHOTO_CASE_MD, form_id="case_intake", kind="case_intake")
    original = jpeg((200, 100), gps=True)
    result = receive(session, settings, world.caseworker_a,
                     xml_for(version, photo_case_data(**{"/data/photo": "child.jpg"})),
                     uploads(child__jpg=original))
    (att,) = ingest.attachments_of(session, result.submission)
    stored = blobs_for(settings).path(att.sha256).read_bytes()
    assert stored != original and b"Exif" not in stored
    assert dict(Image.open(io.BytesIO(stored)).getexif()) == {}
    import hashlib

    assert not blobs_for(settings).exists(hashlib.sha256(original).hexdigest())


# -- races ---------------------------------------------------------------------------------


def test_two_identical_posts_racing_end_as_one_row(engine, settings, world, visit, uploads):
    _, version = visit
    xml = xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg"}))
    photo = jpeg()
    barrier = threading.Barrier(4)
    statuses: list[str] = []
    errors: list[BaseException] = []

    parts = [uploads(a__jpg=photo) for _ in range(4)]

    def post(files: list[IncomingFile]) -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                statuses.append(receive(s, settings, world.monitor, xml, files).status)
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(files,)) for files in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(statuses) == ["created", "duplicate", "duplicate", "duplicate"]
    with session_scope(engine) as s:
        assert (count(s, Submission), count(s, SubmissionAttachment)) == (1, 1)
