"""Issue 9, finding 1: an edit (``meta/deprecatedID``) replaces a record only when it comes from the
record's original submitter or from someone allowed to change that record (site visits: admins and
coordinators); otherwise 403 ``submission.edit_forbidden`` with nothing stored, over OpenRosa and
in JSON batches. A device acts as its user; a resend of an accepted edit stays idempotent."""

from __future__ import annotations

import pytest
from lxml import etree
from sqlmodel import func, select

from app import accounts
from app.db import session_scope
from app.models import AuditLog
from sync import openrosa
from sync.models import Blob, Submission
from tests.factories import jpeg, multipart, new_instance_id
from tests.sync.factories import make_form, typed_visit_data, xml_for

RESPONSE = {"r": openrosa.RESPONSE_NS}


@pytest.fixture
def visit(engine, settings, world):
    with session_scope(engine) as s:
        _, version = make_form(s, settings)
    return version


def post(client, person, xml: bytes, files: dict[str, bytes] | None = None, *, url: str = "/submission"):
    body, headers = multipart(xml, files)
    if person is not None:
        headers.update(person.basic)
    return client.post(url, content=body, headers=headers)


def stored(engine) -> dict[str, int]:
    """What a refused edit must not have added: rows, files, audit entries of a stored edit."""
    with session_scope(engine) as s:
        return {"submissions": s.exec(select(func.count()).select_from(Submission)).one(),
                "blobs": s.exec(select(func.count()).select_from(Blob)).one(),
                "edits_audited": s.exec(select(func.count()).select_from(AuditLog)
                                        .where(AuditLog.action == "submission.edit")).one()}


def current(engine, root: str) -> str:
    with session_scope(engine) as s:
        return s.exec(select(Submission.instance_id).where(Submission.root_instance_id == root,
                                                           Submission.current == True)).one()  # noqa: E712


def test_another_monitor_cannot_edit_a_visit_over_openrosa(client, engine, world, visit):
    assert post(client, world.monitor, xml_for(visit, typed_visit_data(), "uuid:visit-1")).status_code == 201
    before = stored(engine)
    edit = xml_for(visit, typed_visit_data(**{"/data/workers": 0}), "uuid:visit-1-forged", "uuid:visit-1")
    response = post(client, world.monitor2, edit, {"p.jpg": jpeg()})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/xml")  # ODK Collect shows the message
    assert "may not edit" in etree.fromstring(response.content).findtext("r:message", namespaces=RESPONSE)
    assert stored(engine) == before
    assert current(engine, "uuid:visit-1") == "uuid:visit-1"


def test_another_monitor_cannot_edit_a_visit_in_a_batch_and_the_other_items_are_stored(client, engine, world, visit):
    assert post(client, world.monitor, xml_for(visit, typed_visit_data(), "uuid:visit-2")).status_code == 201
    before = stored(engine)
    forged = {"instance_id": "uuid:visit-2-forged", "form_id": "visit",
              "xml": xml_for(visit, typed_visit_data(), "uuid:visit-2-forged", "uuid:visit-2").decode()}
    own = {"instance_id": "uuid:visit-own", "form_id": "visit",
           "xml": xml_for(visit, typed_visit_data(), "uuid:visit-own").decode()}
    response = client.post("/api/v1/sync/batches", json={"items": [forged, own]}, headers=world.monitor2.bearer)
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert (first["status"], first["code"]) == ("invalid", "submission.edit_forbidden")
    assert second["status"] == "created"
    assert stored(engine)["submissions"] == before["submissions"] + 1
    assert stored(engine)["edits_audited"] == before["edits_audited"]
    assert current(engine, "uuid:visit-2") == "uuid:visit-2"


def test_a_coordinator_may_edit_a_visit_and_its_submitter_may_edit_again(client, engine, world, visit):
    assert post(client, world.monitor, xml_for(visit, typed_visit_data(), "uuid:visit-3")).status_code == 201
    corrected = xml_for(visit, typed_visit_data(**{"/data/workers": 30}), "uuid:visit-3b", "uuid:visit-3")
    assert post(client, world.coordinator, corrected).status_code == 201
    # The original submitter still owns the record, even though the coordinator made the last version.
    again = xml_for(visit, typed_visit_data(**{"/data/workers": 31}), "uuid:visit-3c", "uuid:visit-3b")
    assert post(client, world.monitor, again).status_code == 201
    assert post(client, world.admin, xml_for(visit, typed_visit_data(), "uuid:visit-3d", "uuid:visit-3c")).status_code == 201
    assert current(engine, "uuid:visit-3") == "uuid:visit-3d"


def test_a_device_edits_as_its_user_and_a_resend_of_the_edit_is_still_a_duplicate(client, engine, world, visit):
    with session_scope(engine) as s:
        _, mine = accounts.create_device(s, name="tablet-m1", user=world.monitor.user.id)
        _, theirs = accounts.create_device(s, name="tablet-m2", user=world.monitor2.user.id)
    assert post(client, world.monitor, xml_for(visit, typed_visit_data(), "uuid:visit-4")).status_code == 201
    edit = xml_for(visit, typed_visit_data(**{"/data/workers": 5}), "uuid:visit-4b", "uuid:visit-4")
    assert post(client, None, edit, url=f"/key/{theirs}/submission").status_code == 403
    assert post(client, None, edit, url=f"/key/{mine}/submission").status_code == 201
    before = stored(engine)
    assert post(client, None, edit, url=f"/key/{mine}/submission").status_code == 201  # resend: duplicate
    assert post(client, world.monitor, edit).status_code == 201
    assert stored(engine) == before
    assert current(engine, "uuid:visit-4") == "uuid:visit-4b"


def test_a_monitor_may_not_edit_a_record_first_sent_by_the_coordinator(client, engine, world, visit):
    root = new_instance_id()
    assert post(client, world.coordinator, xml_for(visit, typed_visit_data(), root)).status_code == 201
    response = post(client, world.monitor, xml_for(visit, typed_visit_data(), new_instance_id(), root))
    assert response.status_code == 403
    assert current(engine, root) == root
