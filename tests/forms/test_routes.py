"""The JSON API of forms through the real app: upload, versions, media, settings, access per role."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from tests.forms.factories import simple_form, upload

MEDIA_FORM = b"""
| survey |
| | type | name | label |
| | select_one_from_file villages.csv | village | Village |
| | geopoint | gps | GPS |
| settings |
| | form_id | version |
| | villages | 1 |
"""


def test_coordinator_uploads_a_form_and_reuploads_it_idempotently(client, world):
    first = upload(client, world.coordinator, simple_form(version="1"), kind="site_visit")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["xml_form_id"], body["version"], body["kind"], body["created"]) == ("simple", "1", "site_visit", True)
    again = upload(client, world.coordinator, simple_form(version="1"))
    assert again.status_code == 200 and again.json()["created"] is False


def test_conflicting_version_is_409(client, world):
    upload(client, world.admin, simple_form(version="1"))
    r = upload(client, world.admin, simple_form(version="1", extra="| | integer | n | N |"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "form.version_conflict"


def test_xlsx_workbook_upload_and_pyxform_warnings(client, world):
    from openpyxl import Workbook

    book = Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["image", "photo", "Photo"])
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version"])
    settings.append(["from_xlsx", "5"])
    buf = io.BytesIO()
    book.save(buf)
    r = upload(client, world.admin, buf.getvalue(), filename="from_xlsx.xlsx")
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "5"
    assert any("max-pixels" in w for w in r.json()["warnings"])


@pytest.mark.parametrize(("content", "filename", "status", "code"), [
    (b"just some text", "form.txt", 415, "form.unsupported_file"),
    (b"PK\x03\x04" + b"\x00" * 50, "form.xlsx", 422, "form.xlsform_invalid"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "form.xml", 422, "form.xform_invalid"),
    (b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><unclosed>", "form.xml", 422, "form.xform_invalid"),
    (b"| survey |\n| | type | name | label |\n| | text | a | A |\n| | begin group | g | G |\n", "f.md", 422,
     "form.xlsform_invalid"),
])
def test_bad_uploads_get_a_clear_4xx(client, world, content, filename, status, code):
    r = upload(client, world.admin, content, filename=filename)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_xlsform_error_names_the_row(client, world):
    r = upload(client, world.admin, b"| survey |\n| | type | name | label |\n| | text | a | A |\n| | text | a | B |\n")
    assert r.status_code == 422
    assert r.json()["error"]["details"]["row"] == 3
    assert "row" in r.json()["error"]["message"]


def test_a_zip_that_is_not_a_workbook_is_refused(client, world):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    r = upload(client, world.admin, buf.getvalue(), filename="form.xlsx")
    assert r.status_code == 422 and "xlsx" in r.json()["error"]["message"]


def test_oversized_form_is_413(client, world, app):
    app.state.settings.max_form_bytes = 1000
    r = upload(client, world.admin, simple_form() + b" " * 2000)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "form.too_large"


def test_missing_file_part_is_422(client, world):
    r = client.post("/api/v1/forms", files=[("other", ("x.md", b"x", "text/plain"))], headers=world.admin.basic)
    assert r.status_code == 422 and r.json()["error"]["code"] == "form.file_missing"


@pytest.mark.parametrize("role", ["monitor", "caseworker"])
def test_only_staff_upload_close_open_patch_and_attach_media(client, world, role):
    upload(client, world.admin, MEDIA_FORM, kind="general")
    person = world.person(role)
    assert upload(client, person, simple_form()).status_code == 403
    assert client.post("/api/v1/forms/villages/close", headers=person.basic).status_code == 403
    assert client.post("/api/v1/forms/villages/open", headers=person.basic).status_code == 403
    assert client.patch("/api/v1/forms/villages", json={"site_mapping": False}, headers=person.basic).status_code == 403
    r = client.post("/api/v1/forms/villages/media", files=[("file", ("villages.csv", b"name,label\n", "text/csv"))],
                    headers=person.basic)
    assert r.status_code == 403


def test_anonymous_callers_are_401(client, world):
    assert client.get("/api/v1/forms").status_code == 401
    assert client.post("/api/v1/forms", files=[("file", ("f.md", simple_form(), "text/plain"))]).status_code == 401


def test_list_and_detail_follow_the_role(client, world):
    upload(client, world.admin, simple_form(form_id="visit"), kind="site_visit")
    upload(client, world.admin, simple_form(form_id="intake"), kind="case_intake")
    ids = lambda person: [f["xml_form_id"] for f in client.get("/api/v1/forms", headers=person.basic).json()["forms"]]  # noqa: E731
    assert ids(world.coordinator) == ["intake", "visit"]
    assert ids(world.monitor) == ["visit"]
    assert ids(world.caseworker_a) == ["intake"]
    assert client.get("/api/v1/forms/intake", headers=world.monitor.basic).status_code == 403
    assert client.get("/api/v1/forms/visit", headers=world.caseworker_a.basic).status_code == 403
    assert client.get("/api/v1/forms/intake/versions/1.xml", headers=world.monitor.basic).status_code == 403
    detail = client.get("/api/v1/forms/visit", headers=world.monitor.basic).json()
    assert detail["settings"] == {"location_field": "/visit/gps", "site_mapping": True}
    assert [f["name"] for f in detail["fields"]] == ["gps", "remark"]
    assert detail["versions"][0]["version"] == "1" and detail["versions"][0]["published"] is True
    xml = client.get("/api/v1/forms/visit/versions/1.xml", headers=world.monitor.basic)
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml")
    assert hashlib.md5(xml.content).hexdigest() == detail["md5"]  # noqa: S324
    assert client.get("/api/v1/forms/visit/versions/9.xml", headers=world.monitor.basic).status_code == 404
    assert client.get("/api/v1/forms/nope", headers=world.monitor.basic).status_code == 404


def test_device_tokens_cannot_use_the_forms_api(client, world, session):
    from app import accounts

    _, token = accounts.create_device(session, name="tab-1", user="monitor")
    session.commit()
    assert client.get("/api/v1/forms", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_close_and_reopen(client, world):
    upload(client, world.admin, simple_form())
    r = client.post("/api/v1/forms/simple/close", headers=world.coordinator.basic)
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert client.get("/api/v1/forms/simple", headers=world.admin.basic).json()["state"] == "closed"
    r = client.post("/api/v1/forms/simple/open", headers=world.coordinator.basic)
    assert r.json()["state"] == "open"


def test_patch_settings_validates_paths(client, world):
    upload(client, world.admin, simple_form(), kind="site_visit")
    ok = client.patch("/api/v1/forms/simple", json={"site_field": "/simple/remark"}, headers=world.admin.basic)
    assert ok.status_code == 200 and ok.json()["settings"]["site_field"] == "/simple/remark"
    bad = client.patch("/api/v1/forms/simple", json={"location_field": "/simple/missing"}, headers=world.admin.basic)
    assert bad.status_code == 422 and "/simple/missing" in bad.json()["error"]["message"]
    assert client.patch("/api/v1/forms/simple", json={"colour": "red"}, headers=world.admin.basic).status_code == 422
    assert client.patch("/api/v1/forms/simple", content=b"not json",
                        headers=world.admin.basic | {"Content-Type": "application/json"}).status_code == 400


def test_media_upload_with_md5_and_refusals(client, world):
    body = b"name,label\nv1,Village 1\n"
    r = upload(client, world.admin, MEDIA_FORM, media=[("villages.csv", body)])
    assert r.status_code == 201, r.text
    assert r.json()["media"][0]["md5"] == hashlib.md5(body).hexdigest()  # noqa: S324
    newer = b"name,label\nv2,Village 2\n"
    r = client.post("/api/v1/forms/villages/media", files=[("file", ("villages.csv", newer, "text/csv"))],
                    headers=world.coordinator.basic)
    assert r.status_code == 201
    detail = client.get("/api/v1/forms/villages", headers=world.admin.basic).json()
    assert [(m["filename"], m["md5"]) for m in detail["media"]] == [("villages.csv", hashlib.md5(newer).hexdigest())]  # noqa: S324
    for name in ("../villages.csv", "/etc/villages.csv", "sub/villages.csv", "other.csv"):
        r = client.post("/api/v1/forms/villages/media", files=[("file", (name, b"x", "text/csv"))],
                        headers=world.admin.basic)
        assert r.status_code == 422, name
    r = upload(client, world.admin, MEDIA_FORM.replace(b"| villages | 1 |", b"| villages | 2 |"),
               media=[("unreferenced.csv", b"x")])
    assert r.status_code == 422
    assert client.get("/api/v1/forms/villages", headers=world.admin.basic).json()["version"] == "1"


def test_a_request_far_beyond_the_limit_is_refused_before_parsing(client, world, app):
    app.state.settings.max_form_bytes = 1000
    r = upload(client, world.admin, simple_form(), media=[(f"m{i}.csv", b"x" * 900) for i in range(12)])
    assert r.status_code == 413
    assert "separately" in r.json()["error"]["message"]


def test_a_media_name_with_a_folder_is_accepted_only_when_referenced_exactly(client, world):
    form = b"""
| survey |
| | type | name | label | media::image |
| | note | n | Look | icons/logo.png |
| settings |
| | form_id | version |
| | icons | 1 |
"""
    assert upload(client, world.admin, form).status_code == 201
    ok = client.post("/api/v1/forms/icons/media", files=[("file", ("icons/logo.png", b"png", "image/png"))],
                     headers=world.admin.basic)
    assert ok.status_code == 201, ok.text
    assert ok.json()["media"][0]["filename"] == "icons/logo.png"
    for name in ("logo.png", "icons/../icons/logo.png", "icons//logo.png"):
        r = client.post("/api/v1/forms/icons/media", files=[("file", (name, b"png", "image/png"))],
                        headers=world.admin.basic)
        assert r.status_code == 422, name


def submit(client, person, version, remark: str):  # noqa: ANN001, ANN201
    import uuid

    from sync.submission_xml import build_instance_xml

    xml = build_instance_xml(version, {"/simple/remark": remark}, f"uuid:{uuid.uuid4()}")
    return client.post("/submission", files=[("xml_submission_file", ("submission.xml", xml, "text/xml"))],
                       headers={**person.basic, "X-OpenRosa-Version": "1.0"})


def test_older_versions_keep_accepting_submissions_and_closed_forms_refuse_them(client, world, session):
    from forms import queries

    upload(client, world.admin, simple_form(version="1"), kind="site_visit")
    upload(client, world.admin, simple_form(version="2", extra="| | integer | n | N |"))
    form = queries.get_form(session, "simple")
    v1, v2 = queries.versions_of(session, form)
    assert queries.published_version(session, form).version == "2"
    assert submit(client, world.monitor, v1, "made on v1").status_code == 201
    assert submit(client, world.monitor, v2, "made on v2").status_code == 201
    form_list = lambda: client.get("/formList", headers={**world.monitor.basic, "X-OpenRosa-Version": "1.0"}).text  # noqa: E731
    assert "<formID>simple</formID>" in form_list()
    client.post("/api/v1/forms/simple/close", headers=world.admin.basic)
    assert submit(client, world.monitor, v2, "too late").status_code == 403
    assert "<formID>simple</formID>" not in form_list()
    client.post("/api/v1/forms/simple/open", headers=world.admin.basic)
    assert submit(client, world.monitor, v1, "reopened").status_code == 201
