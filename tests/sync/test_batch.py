"""POST /api/v1/sync/batches: one result per item, every item idempotent, bad items alone refused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from app import accounts
from app.db import session_scope
from app.main import create_app
from sync.models import Submission, SubmissionAttachment
from tests.factories import (
    CASE_MD,
    VISIT_V2_MD,
    add_form,
    batch_item,
    case_data,
    new_instance_id,
    photo,
    sha256,
    visit_data,
)

URL = "/api/v1/sync/batches"


def stored(engine) -> list[Submission]:
    with session_scope(engine) as s:
        return list(s.exec(select(Submission).order_by(Submission.id)))


def results(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_json_data_items_are_created_then_acknowledged_as_duplicates(client, world, visit_form, engine):
    items = [batch_item(new_instance_id(), data=visit_data(workers=n)) for n in (3, 4)]
    first = results(client.post(URL, json={"device": "tablet-7", "items": items}, headers=world.monitor.bearer))
    assert [r["status"] for r in first] == ["created", "created"], first
    assert all(r["missing"] == [] and r["complete"] for r in first)
    again = results(client.post(URL, json={"device": "tablet-7", "items": items}, headers=world.monitor.bearer))
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    rows = stored(engine)
    assert len(rows) == 2
    assert rows[0].data["/field_visit/workers"] == 3
    assert rows[0].client_device_id == "tablet-7"
    assert (rows[0].lat, rows[0].lon) == (-2.5, 28.8)


def test_xml_items_share_the_openrosa_rules(client, world, visit_form, engine):
    from sync.submission_xml import build_instance_xml

    with session_scope(engine) as s:
        from forms.queries import get_form, published_version

        version = published_version(s, get_form(s, "field_visit"))
        iid = new_instance_id()
        xml = build_instance_xml(version, visit_data(), iid)
        other = build_instance_xml(version, visit_data(workers=99), iid)
    assert results(client.post(URL, json={"items": [batch_item(iid, xml=xml)]},
                               headers=world.monitor.basic))[0]["status"] == "created"
    conflict = results(client.post(URL, json={"items": [batch_item(iid, xml=other)]}, headers=world.monitor.basic))[0]
    assert conflict["status"] == "conflict"
    assert conflict["code"] == "submission.xml_conflict"
    assert stored(engine)[0].data["/field_visit/workers"] == 12


def test_one_bad_item_never_fails_the_others(client, world, visit_form, engine):
    good = batch_item(new_instance_id())
    items = [
        batch_item(new_instance_id(), form_id="no_such_form"),
        good,
        batch_item(new_instance_id(), data=visit_data() | {"/field_visit/workers": "many"}),
        batch_item(new_instance_id(), data=visit_data() | {"/field_visit/not_a_field": "x"}),
        {"form_id": "field_visit", "data": visit_data()},
        {"instance_id": "uuid:both", "form_id": "field_visit", "data": visit_data(), "xml": "<x/>"},
        "not an object",
        batch_item(new_instance_id(), version="42"),
        batch_item(new_instance_id(), xml=b"<field_visit id='field_visit'><unclosed></field_visit>"),
    ]
    out = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert [r["status"] for r in out] == ["invalid", "created", "invalid", "invalid", "invalid", "invalid",
                                          "invalid", "invalid", "invalid"]
    assert out[0]["code"] == "form.not_found"
    assert "workers" in out[2]["reason"]
    assert "not_a_field" in out[3]["reason"]
    assert out[4]["instance_id"] is None and "instance_id" in out[4]["reason"]
    assert "exactly one" in out[5]["reason"]
    assert out[7]["code"] == "form.version_not_found"
    assert [s.instance_id for s in stored(engine)] == [good["instance_id"]]


def test_an_edit_keeps_the_root_and_the_history(client, world, visit_form, engine):
    first = new_instance_id()
    edit = new_instance_id()
    client.post(URL, json={"items": [batch_item(first)]}, headers=world.monitor.bearer)
    out = results(client.post(URL, json={"items": [batch_item(edit, data=visit_data(workers=20), deprecated_id=first)]},
                              headers=world.monitor.bearer))
    assert out[0]["status"] == "edit"
    again = results(client.post(URL, json={"items": [batch_item(new_instance_id(), deprecated_id=first)]},
                                headers=world.monitor.bearer))
    assert again[0]["status"] == "conflict"
    rows = stored(engine)
    assert [(r.instance_id, r.current, r.root_instance_id) for r in rows] == [(first, False, first), (edit, True, first)]


def test_photos_are_announced_by_hash_uploaded_once_and_complete_the_submission(client, world, visit_form, engine,
                                                                                 app):
    main, pit = photo(1), photo(2)
    iid = new_instance_id()
    item = batch_item(iid, data=visit_data(photo_name="site.jpg", pit_photos=["pit1.jpg"]),
                      files={"site.jpg": main, "pit1.jpg": pit})
    out = results(client.post(URL, json={"items": [item]}, headers=world.monitor.bearer))[0]
    assert out["status"] == "created"
    assert sorted(out["missing"]) == sorted([sha256(main), sha256(pit)])
    assert out["complete"] is False
    for body in (main, pit):
        put = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor.bearer)
        assert put.status_code == 201, put.text
        assert put.json()["attached"] == [iid]
    resend = results(client.post(URL, json={"items": [item]}, headers=world.monitor.bearer))[0]
    assert resend == {"instance_id": iid, "status": "duplicate", "missing": [], "complete": True}
    row = stored(engine)[0]
    assert (row.attachments_expected, row.attachments_present, row.complete) == (2, 2, True)
    assert app.state.blobs.exists(sha256(main))


def test_a_stored_file_is_attached_at_once_only_for_a_caller_who_has_shown_they_hold_it(client, world, visit_form):
    body = photo(3)
    first = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"), files={"a.jpg": body})
    assert results(client.post(URL, json={"items": [first]}, headers=world.monitor.bearer))[0]["missing"] == [sha256(body)]
    assert client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor.bearer).status_code == 201
    # The same photo in a second submission of the same monitor: no upload needed.
    mine = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"), files={"a.jpg": body})
    assert results(client.post(URL, json={"items": [mine]}, headers=world.monitor.bearer))[0]["complete"] is True
    # Another monitor who only knows the hash must prove they have the file by uploading it.
    guess = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"), files={"a.jpg": body})
    theirs = results(client.post(URL, json={"items": [guess]}, headers=world.monitor2.bearer))[0]
    assert theirs["missing"] == [sha256(body)] and theirs["complete"] is False
    put = client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.monitor2.bearer)
    assert put.status_code == 200 and put.json()["attached"] == [guess["instance_id"]]


def test_unannounced_attachments_are_named(client, world, visit_form):
    item = batch_item(new_instance_id(), data=visit_data(photo_name="site.jpg"))
    out = results(client.post(URL, json={"items": [item]}, headers=world.monitor.bearer))[0]
    assert out["missing"] == [] and out["missing_names"] == ["site.jpg"] and out["complete"] is False


def test_a_device_token_may_sync_and_is_recorded(client, world, visit_form, engine):
    with session_scope(engine) as s:
        device, token = accounts.create_device(s, name="tab-12", user=world.monitor.user.id)
    out = results(client.post(URL, json={"items": [batch_item(new_instance_id())]},
                              headers={"Authorization": f"Bearer {token}"}))
    assert out[0]["status"] == "created"
    row = stored(engine)[0]
    assert row.device_id == device.id and row.submitted_by_user_id == world.monitor.user.id
    assert row.client_device_id == "tab-12"


def test_roles_per_form_kind(client, world, visit_form, engine, app, settings):
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
    case_item = batch_item(new_instance_id(), form_id="case_check", data=case_data())
    visit_item = batch_item(new_instance_id())
    cw = results(client.post(URL, json={"items": [visit_item, case_item]}, headers=world.caseworker_a.bearer))
    assert [r["status"] for r in cw] == ["invalid", "created"]
    assert cw[0]["code"] == "submission.forbidden"
    monitor = results(client.post(URL, json={"items": [batch_item(new_instance_id(), form_id="case_check",
                                                                  data=case_data())]},
                                  headers=world.monitor.bearer))
    assert monitor[0]["code"] == "submission.forbidden"
    assert client.post(URL, json={"items": []}).status_code == 401


def test_new_versions_and_old_versions_both_accept(client, world, visit_form, engine, app, settings):
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=VISIT_V2_MD)
    old = batch_item(new_instance_id(), version="1")
    new = batch_item(new_instance_id(), version="2", data=visit_data() | {"/field_visit/remarks": "ok"})
    assert [r["status"] for r in results(client.post(URL, json={"items": [old, new]},
                                                     headers=world.monitor.bearer))] == ["created", "created"]


def test_bad_bodies_are_clear_4xx(client, world, visit_form):
    not_json = client.post(URL, content=b"{nope", headers=world.monitor.bearer | {"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "batch.not_json"
    no_list = client.post(URL, json={"items": "x"}, headers=world.monitor.bearer)
    assert no_list.status_code == 422 and "items" in no_list.json()["error"]["message"]
    bad_hash = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"))
    bad_hash["attachments"] = [{"name": "a.jpg", "sha256": "../../etc/passwd", "size": 1}]
    out = results(client.post(URL, json={"items": [bad_hash]}, headers=world.monitor.bearer))
    assert out[0]["status"] == "invalid" and "sha256" in out[0]["reason"]


def test_too_many_items_is_413_and_nothing_is_stored(settings, world, engine):
    settings.max_batch_items = 2
    app = create_app(settings)
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings)
    with TestClient(app) as client:
        response = client.post(URL, json={"items": [batch_item(new_instance_id()) for _ in range(3)]},
                               headers=world.monitor.bearer)
    app.state.engine.dispose()
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch.too_many_items"
    assert stored(engine) == []


def test_body_larger_than_the_limit_is_413(settings, world, engine):
    settings.max_submission_bytes = 2_000
    app = create_app(settings)
    with TestClient(app) as client:
        response = client.post(URL, json={"items": [{"pad": "x" * 3_000}]}, headers=world.monitor.bearer)
    app.state.engine.dispose()
    assert response.status_code == 413 and response.json()["error"]["code"] == "batch.too_large"


def test_attachment_rows_remember_the_announced_hash(client, world, visit_form, engine):
    body = photo(9)
    iid = new_instance_id()
    client.post(URL, json={"items": [batch_item(iid, data=visit_data(photo_name="s.jpg"), files={"s.jpg": body})]},
                headers=world.monitor.bearer)
    with session_scope(engine) as s:
        row = s.exec(select(SubmissionAttachment)).one()
        assert (row.name, row.expected_sha256, row.received) == ("s.jpg", sha256(body), False)


def test_xml_that_contradicts_its_item_is_invalid_and_rolled_back(client, world, visit_form, engine):
    from forms.queries import get_form, published_version
    from sync.models import SubmissionGeopoint
    from sync.submission_xml import build_instance_xml

    with session_scope(engine) as s:
        version = published_version(s, get_form(s, "field_visit"))
        xml = build_instance_xml(version, visit_data(), "uuid:inside-the-xml")
    out = results(client.post(URL, json={"items": [batch_item("uuid:said-by-the-item", xml=xml)]},
                              headers=world.monitor.bearer))
    assert out[0]["status"] == "invalid" and out[0]["code"] == "batch.item_mismatch"
    assert stored(engine) == []
    with session_scope(engine) as s:
        assert s.exec(select(SubmissionGeopoint)).all() == []


def test_a_resend_is_acknowledged_only_to_callers_who_may_submit(client, world, visit_form):
    item = batch_item(new_instance_id())
    assert results(client.post(URL, json={"items": [item]}, headers=world.monitor.bearer))[0]["status"] == "created"
    assert results(client.post(URL, json={"items": [item]}, headers=world.monitor2.bearer))[0]["status"] == "duplicate"
    refused = results(client.post(URL, json={"items": [item]}, headers=world.caseworker_a.bearer))[0]
    assert refused["status"] == "invalid" and refused["code"] == "submission.forbidden"


def test_xml_on_another_version_than_the_item_says_is_invalid(client, world, visit_form, engine):
    from forms.queries import get_form, published_version
    from sync.submission_xml import build_instance_xml

    with session_scope(engine) as s:
        version = published_version(s, get_form(s, "field_visit"))
        iid = new_instance_id()
        xml = build_instance_xml(version, visit_data(), iid)
    out = results(client.post(URL, json={"items": [batch_item(iid, xml=xml, version="7")]},
                              headers=world.monitor.bearer))
    assert out[0]["status"] == "invalid" and out[0]["code"] == "batch.item_mismatch" and "'7'" in out[0]["reason"]
    assert stored(engine) == []


def test_a_body_that_is_not_an_object_is_422(client, world):
    response = client.post(URL, json=[batch_item(new_instance_id())], headers=world.monitor.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("the body must be an object")


def test_absurdly_nested_json_is_400_not_500(client, world):
    body = b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(URL, content=body, headers=world.monitor.bearer | {"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "batch.not_json"


def test_values_that_cannot_be_xml_are_invalid_items(client, world, visit_form, engine):
    items = [batch_item("uuid:\x01bad"), batch_item(new_instance_id(), data=visit_data(site_code="a\x00b")),
             batch_item(new_instance_id(), data=visit_data() | {"/field_visit/site_code": {"nested": 1}}),
             batch_item(new_instance_id(), data=visit_data() | {"/field_visit/pits": "not a list"})]
    out = results(client.post(URL, json={"items": items}, headers=world.monitor.bearer))
    assert [(r["status"], r["code"]) for r in out] == [
        ("invalid", "batch.bad_data"), ("invalid", "batch.bad_text"),
        ("invalid", "submission.invalid_value"), ("invalid", "submission.invalid_value")]
    assert "/field_visit/site_code" in out[2]["reason"] and "/field_visit/pits" in out[3]["reason"]
    assert stored(engine) == []
