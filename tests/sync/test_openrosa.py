"""OpenRosa over HTTP through the real app: headers, formList, form/manifest/media download,
HEAD/POST /submission, auth variants, and hostile inputs (each a clear 4xx, nothing stored)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from lxml import etree
from sqlalchemy import event
from sqlmodel import func, select

from app import accounts
from app.db import session_scope
from forms import service as forms_service
from forms.service import IncomingMedia
from sync import openrosa
from sync.models import Submission, SubmissionAttachment
from tests.factories import jpeg, multipart
from tests.sync.factories import (
    PHOTO_CASE_MD,
    blobs_for,
    make_form,
    photo_case_data,
    png_header_only,
    typed_visit_data,
    xml_for,
)

LIST = {"x": openrosa.XFORMS_LIST_NS}
MANIFEST = {"m": openrosa.MANIFEST_NS}
RESPONSE = {"r": openrosa.RESPONSE_NS}
OR = {"X-OpenRosa-Version": "1.0"}

#: A form whose choices come from a CSV form attachment, so it has a manifest.
MEDIA_MD = """
| survey   |                                 |         |         |
|          | type                            | name    | label   |
|          | select_one_from_file sites.csv  | site    | Site    |
| settings |                                 |         |         |
|          | form_id                         | version |         |
|          | with_media                      | 1       |         |
"""
SITES_CSV = b"name,label\nKOL-001,Kolwezi pit 1\nKOL-002,Kolwezi pit 2\n"


@pytest.fixture
def forms(engine, settings, world):
    """A site-visit form, a case form and a form with a CSV attachment, committed."""
    with session_scope(engine) as s:
        visit_form, visit = make_form(s, settings)
        _, case = make_form(s, settings, md=PHOTO_CASE_MD, form_id="case_intake", kind="case_intake")
        media_form, media_version = make_form(s, settings, md=MEDIA_MD, form_id="with_media", kind="general")
        forms_service.add_media(s, blobs=blobs_for(settings), settings=settings, actor=None, form=media_form,
                                upload=IncomingMedia(filename="sites.csv", content=SITES_CSV))
    return {"visit": visit, "case": case, "media": media_version}


def device_token(engine, person, name: str = "tablet-1") -> str:
    with session_scope(engine) as s:
        _, token = accounts.create_device(s, name=name, user=person.user.id)
    return token


def submissions(engine) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Submission)).one()


def message(response: httpx.Response) -> str:
    return etree.fromstring(response.content).findtext("r:message", namespaces=RESPONSE)


def post(client, person, xml: bytes | None, files: dict[str, bytes] | None = None, *, url: str = "/submission",
         **kwargs):
    body, headers = multipart(xml, files, **kwargs)
    if person is not None:
        headers.update(person.basic)
    return client.post(url, content=body, headers=headers)


def assert_openrosa_headers(response: httpx.Response, limit: int = 100_000_000) -> None:
    assert response.headers["x-openrosa-version"] == "1.0"
    assert response.headers["x-openrosa-accept-content-length"] == str(limit)
    assert response.headers["date"].endswith("GMT")


# -- preflight and headers -----------------------------------------------------------------


def test_head_submission_is_204_with_the_openrosa_headers(client, world):
    for method in ("HEAD", "GET"):
        response = client.request(method, "/submission", headers={**OR, **world.monitor.basic})
        assert response.status_code == 204 and response.content == b""
        assert_openrosa_headers(response)


def test_without_credentials_the_answer_is_a_401_challenge_in_openrosa_xml(client):
    response = client.head("/submission", headers=OR)
    assert response.status_code == 401
    challenges = response.headers.get_list("www-authenticate")
    assert any(c.startswith("Digest ") for c in challenges) and any(c.startswith("Basic ") for c in challenges)
    response = client.get("/formList", headers=OR)
    assert response.status_code == 401 and message(response) == "authentication required"
    assert_openrosa_headers(response)


def test_a_wrong_openrosa_version_is_a_400(client, world):
    response = client.get("/formList", headers={"X-OpenRosa-Version": "2.0", **world.monitor.basic})
    assert response.status_code == 400 and "X-OpenRosa-Version must be 1.0" in message(response)


def test_the_advertised_limit_follows_settings(app, client, world):
    app.state.settings.max_submission_bytes = 5_000_000
    response = client.head("/submission", headers={**OR, **world.monitor.basic})
    assert response.headers["x-openrosa-accept-content-length"] == "5000000"


# -- form discovery ------------------------------------------------------------------------


def form_list(client, headers: dict[str, str], url: str = "/formList") -> dict[str, dict[str, str]]:
    response = client.get(url, headers={**OR, **headers}, params={"deviceID": "collect:x"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert_openrosa_headers(response)
    root = etree.fromstring(response.content)
    return {x.findtext("x:formID", namespaces=LIST): {child.tag.split("}")[1]: child.text for child in x}
            for x in root.findall("x:xform", namespaces=LIST)}


def test_form_list_shows_what_each_role_may_use_with_md5_hashes(client, world, forms):
    coordinator = form_list(client, world.coordinator.basic)
    assert set(coordinator) == {"visit", "case_intake", "with_media"}
    assert set(form_list(client, world.monitor.basic)) == {"visit", "with_media"}
    assert set(form_list(client, world.caseworker_a.basic)) == {"case_intake"}
    entry = coordinator["visit"]
    assert entry["hash"] == f"md5:{forms['visit'].md5}" and entry["version"] == "1" and entry["name"] == "Visit"
    assert entry["downloadUrl"] == "http://testserver/forms/visit.xml"
    assert "manifestUrl" not in entry
    assert coordinator["with_media"]["manifestUrl"] == "http://testserver/forms/with_media/manifest"


def test_downloaded_form_matches_its_advertised_hash(client, world, forms):
    entry = form_list(client, world.monitor.basic)["visit"]
    response = client.get(entry["downloadUrl"], headers={**OR, **world.monitor.basic})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert_openrosa_headers(response)
    assert f"md5:{hashlib.md5(response.content).hexdigest()}" == entry["hash"]


def test_other_versions_are_downloadable_by_query(engine, client, settings, world, forms):
    with session_scope(engine) as s:
        make_form(s, settings, version="2")
    assert form_list(client, world.monitor.basic)["visit"]["version"] == "2"
    old = client.get("/forms/visit.xml", params={"version": "1"}, headers={**OR, **world.monitor.basic})
    assert hashlib.md5(old.content).hexdigest() == forms["visit"].md5
    missing = client.get("/forms/visit.xml", params={"version": "9"}, headers={**OR, **world.monitor.basic})
    assert missing.status_code == 404 and "no version '9'" in message(missing)


def test_forms_outside_the_role_cannot_be_downloaded(client, world, forms):
    response = client.get("/forms/case_intake.xml", headers={**OR, **world.monitor.basic})
    assert response.status_code == 403
    assert client.get("/forms/nosuch.xml", headers={**OR, **world.monitor.basic}).status_code == 404


def test_closed_forms_leave_the_form_list(engine, client, world, forms):
    with session_scope(engine) as s:
        forms_service.set_state(s, form=forms_service.require_form(s, "visit"), state="closed", actor=None)
    assert "visit" not in form_list(client, world.monitor.basic)


def test_manifest_and_media_md5_agree_with_the_files_served(client, world, forms):
    entry = form_list(client, world.monitor.basic)["with_media"]
    response = client.get(entry["manifestUrl"], headers={**OR, **world.monitor.basic})
    assert response.status_code == 200
    assert_openrosa_headers(response)
    files = etree.fromstring(response.content).findall("m:mediaFile", namespaces=MANIFEST)
    assert [f.findtext("m:filename", namespaces=MANIFEST) for f in files] == ["sites.csv"]
    assert files[0].findtext("m:hash", namespaces=MANIFEST) == f"md5:{hashlib.md5(SITES_CSV).hexdigest()}"
    url = files[0].findtext("m:downloadUrl", namespaces=MANIFEST)
    assert url == "http://testserver/forms/with_media/attachments/sites.csv"
    media = client.get(url, headers={**OR, **world.monitor.basic})
    assert media.status_code == 200 and media.content == SITES_CSV
    assert_openrosa_headers(media)
    missing = client.get("/forms/with_media/attachments/other.csv", headers={**OR, **world.monitor.basic})
    assert missing.status_code == 404


# -- device tokens, Basic, Digest ----------------------------------------------------------


def test_device_token_urls_carry_the_token_and_act_as_the_user(engine, client, world, forms):
    token = device_token(engine, world.monitor)
    listed = form_list(client, {}, url=f"/key/{token}/formList")
    assert set(listed) == {"visit", "with_media"}
    assert listed["visit"]["downloadUrl"] == f"http://testserver/key/{token}/forms/visit.xml"
    assert listed["with_media"]["manifestUrl"] == f"http://testserver/key/{token}/forms/with_media/manifest"
    assert client.get(listed["visit"]["downloadUrl"], headers=OR).status_code == 200
    response = post(client, None, xml_for(forms["visit"], typed_visit_data()), url=f"/key/{token}/submission?deviceID=collect:t1")
    assert response.status_code == 201
    with session_scope(engine) as s:
        sub = s.exec(select(Submission)).one()
        assert (sub.submitted_by_user_id, sub.client_device_id) == (world.monitor.user.id, "collect:t1")
        assert sub.device_id is not None


def test_revoked_or_unknown_device_tokens_get_403_not_a_challenge(engine, client, world, forms):
    token = device_token(engine, world.monitor)
    with session_scope(engine) as s:
        accounts.revoke_device(s, accounts.get_device(s, "tablet-1"))
    for url in (f"/key/{token}/formList", "/key/not-a-token/formList"):
        response = client.get(url, headers=OR)
        assert response.status_code == 403 and "www-authenticate" not in response.headers
        assert "revoked" in message(response)
    assert post(client, None, xml_for(forms["visit"], typed_visit_data()), url=f"/key/{token}/submission").status_code == 403
    assert submissions(engine) == 0


def test_digest_authentication_works_for_listing_and_submitting(client, world, forms):
    auth = httpx.DigestAuth(world.monitor.username, world.monitor.password)
    response = client.get("/formList", headers=OR, auth=auth)
    assert response.status_code == 200 and b"visit" in response.content
    body, headers = multipart(xml_for(forms["visit"], typed_visit_data()))
    assert client.post("/submission", content=body, headers=headers, auth=auth).status_code == 201


def test_wrong_password_is_401(client, world, forms):
    response = client.get("/formList", headers=OR, auth=(world.monitor.username, "wrong-password-x"))
    assert response.status_code == 401


# -- submissions ---------------------------------------------------------------------------


def test_post_creates_then_acknowledges_a_resend_and_refuses_different_xml(engine, client, world, forms):
    xml = xml_for(forms["visit"], typed_visit_data(), "uuid:http-1")
    created = post(client, world.monitor, xml, url="/submission?deviceID=collect:abc")
    assert created.status_code == 201, created.text
    assert_openrosa_headers(created)
    assert message(created) == "full submission upload was successful!"
    resent = post(client, world.monitor, xml)
    assert resent.status_code == 201 and "already received" in message(resent)
    conflict = post(client, world.monitor, xml_for(forms["visit"], typed_visit_data(**{"/data/workers": 1}), "uuid:http-1"))
    assert conflict.status_code == 409 and "different XML" in message(conflict)
    assert etree.fromstring(conflict.content).find("r:message", namespaces=RESPONSE).get("nature") == "error"
    with session_scope(engine) as s:
        sub = s.exec(select(Submission)).one()
        assert sub.client_device_id == "collect:abc" and sub.user_agent


def test_split_posts_with_is_incomplete_complete_the_submission(engine, client, world, forms):
    xml = xml_for(forms["visit"], typed_visit_data(**{"/data/photo": "a.jpg", "/data/photo2": "b.jpg"}))
    first = post(client, world.monitor, xml, {"a.jpg": jpeg()}, extra_fields={"*isIncomplete*": "yes"})
    assert first.status_code == 201 and "b.jpg" in message(first)
    last = post(client, world.monitor, xml, {"b.jpg": jpeg(color="blue")})
    assert last.status_code == 201 and message(last) == "full submission upload was successful!"
    with session_scope(engine) as s:
        sub = s.exec(select(Submission)).one()
        assert (sub.complete, sub.attachments_present, sub.attachments_expected) == (True, 2, 2)


def test_edit_through_openrosa(engine, client, world, forms):
    assert post(client, world.monitor, xml_for(forms["visit"], typed_visit_data(), "uuid:e1")).status_code == 201
    assert post(client, world.monitor, xml_for(forms["visit"], typed_visit_data(), "uuid:e2", "uuid:e1")).status_code == 201
    unknown = post(client, world.monitor, xml_for(forms["visit"], typed_visit_data(), "uuid:e3", "uuid:zzz"))
    assert unknown.status_code == 404
    with session_scope(engine) as s:
        rows = {r.instance_id: r for r in s.exec(select(Submission))}
        assert (rows["uuid:e1"].current, rows["uuid:e2"].current, rows["uuid:e2"].root_instance_id) == \
            (False, True, "uuid:e1")


def test_closed_form_is_403_with_a_message(engine, client, world, forms):
    with session_scope(engine) as s:
        forms_service.set_state(s, form=forms_service.require_form(s, "visit"), state="closed", actor=None)
    response = post(client, world.monitor, xml_for(forms["visit"], typed_visit_data()))
    assert response.status_code == 403 and "closed" in message(response)


def test_monitor_may_not_submit_case_forms(engine, client, world, forms):
    response = post(client, world.monitor, xml_for(forms["case"], photo_case_data()))
    assert response.status_code == 403
    assert post(client, world.caseworker_a, xml_for(forms["case"], photo_case_data())).status_code == 201


def test_case_photo_posted_with_gps_exif_is_stored_stripped(engine, client, settings, world, forms):
    original = jpeg((100, 80), gps=True)
    xml = xml_for(forms["case"], photo_case_data(**{"/data/photo": "child.jpg"}))
    assert post(client, world.caseworker_a, xml, {"child.jpg": original}).status_code == 201
    with session_scope(engine) as s:
        att = s.exec(select(SubmissionAttachment)).one()
    stored = blobs_for(settings).path(att.sha256).read_bytes()
    assert b"Exif" not in stored and b"FieldCam" not in stored and att.received


# -- hostile inputs: a clear 4xx, nothing stored -------------------------------------------

XXE = (b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<data id="visit" version="1"><g><note>&x;</note></g><meta><instanceID>uuid:x</instanceID></meta></data>')
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
          b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
          b'<data id="visit" version="1"><g><note>&d;</note></g></data>')


@pytest.mark.parametrize(("case", "status", "words"), [
    ("malformed", 400, "not well-formed"),
    ("xxe", 400, "DTD"),
    ("billion_laughs", 400, "DTD"),
    ("wrong_root_id", 404, "form 'elsewhere' not found"),
    ("wrong_root_element", 422, "root element"),
    ("unknown_version", 404, "no version '42'"),
    ("invalid_geopoint", 422, "/data/location"),
    ("bad_select", 422, "/data/activity"),
    ("path_traversal_in_xml", 422, "/data/photo"),
    ("fake_jpeg", 415, "a.jpg"),
    ("bomb_image", 413, "pixels"),
    ("missing_xml_part", 400, "xml_submission_file"),
    ("truncated_multipart", 400, "truncated"),
    ("garbage_body", 400, "multipart"),
    ("not_multipart", 415, "multipart/form-data"),
])
def test_hostile_submissions_get_a_clear_4xx_and_store_nothing(engine, client, world, forms, case, status, words):
    version = forms["visit"]
    good = xml_for(version, typed_visit_data(**{"/data/photo": "a.jpg"}))
    if case == "not_multipart":
        response = client.post("/submission", content=good, headers={**OR, **world.monitor.basic,
                                                                      "Content-Type": "text/xml"})
    else:
        xml, files, kwargs = good, {"a.jpg": jpeg()}, {}
        if case == "malformed":
            xml = good[:-20]
        elif case == "xxe":
            xml = XXE
        elif case == "billion_laughs":
            xml = LAUGHS
        elif case == "wrong_root_id":
            xml = good.replace(b'id="visit"', b'id="elsewhere"')
        elif case == "wrong_root_element":
            xml = good.replace(b"<data ", b"<other ").replace(b"</data>", b"</other>")
        elif case == "unknown_version":
            xml = good.replace(b'version="1"', b'version="42"')
        elif case == "invalid_geopoint":
            xml = xml_for(version, typed_visit_data(**{"/data/location": "-100 25.5 0 0"}))
        elif case == "bad_select":
            xml = xml_for(version, typed_visit_data(**{"/data/activity": "<script>"}))
        elif case == "path_traversal_in_xml":
            xml = good.replace(b">a.jpg<", b">../../etc/passwd<")
            files = {"../../etc/passwd": jpeg()}
        elif case == "fake_jpeg":
            files = {"a.jpg": b"GIF89a? no: just text pretending to be a photo"}
        elif case == "bomb_image":
            files = {"a.jpg": png_header_only(40_000, 40_000)}
        elif case == "missing_xml_part":
            xml = None
        elif case == "truncated_multipart":
            kwargs = {"close": False}
        body, headers = multipart(xml, files, **kwargs)
        if case == "truncated_multipart":
            body = body[: len(body) - 200]
        elif case == "garbage_body":
            body = b"--asmfieldBoundary123\r\n\x00\x01 no headers, no blank line" + b"\xff" * 100
        response = client.post("/submission", content=body, headers={**headers, **world.monitor.basic})
    assert response.status_code == status, response.text
    assert words in message(response)
    assert_openrosa_headers(response)
    assert submissions(engine) == 0


def test_path_traversal_part_names_are_ignored(engine, client, settings, world, forms):
    xml = xml_for(forms["visit"], typed_visit_data(**{"/data/photo": "a.jpg"}))
    response = post(client, world.monitor, xml, {"../a.jpg": jpeg(), "/etc/passwd": b"root:x:0:0"})
    assert response.status_code == 201 and "a.jpg" in message(response)
    with session_scope(engine) as s:
        (att,) = s.exec(select(SubmissionAttachment)).all()
        assert (att.name, att.received) == ("a.jpg", False)


def test_content_length_above_the_limit_is_413_before_reading(app, engine, client, world, forms):
    app.state.settings.max_submission_bytes = 2_000
    xml = xml_for(forms["visit"], typed_visit_data(**{"/data/photo": "a.jpg"}))
    response = post(client, world.monitor, xml, {"a.jpg": jpeg((400, 400), color="teal") + b"\x00" * 3000})
    assert response.status_code == 413 and "at most 2000" in message(response)
    assert_openrosa_headers(response, limit=2_000)
    assert submissions(engine) == 0


def test_an_oversized_part_is_413(app, engine, client, world, forms):
    app.state.settings.max_attachment_bytes = 1_000
    xml = xml_for(forms["visit"], typed_visit_data(**{"/data/photo": "a.jpg"}))
    response = post(client, world.monitor, xml, {"a.jpg": jpeg() + b"\x00" * 2_000})
    assert response.status_code == 413 and "a.jpg" in message(response)
    assert submissions(engine) == 0


def test_requests_without_the_openrosa_version_header_are_accepted(client, world, forms):
    """Our choice (Central refuses them): curl and browsers can reach the endpoints; a wrong value is refused."""
    response = client.get("/formList", headers=world.monitor.basic)
    assert response.status_code == 200 and b"visit" in response.content


def test_two_xml_parts_are_refused(engine, client, world, forms):
    xml = xml_for(forms["visit"], typed_visit_data())
    body, headers = multipart(xml)
    second, _ = multipart(xml)
    body = body.replace(b"--asmfieldBoundary123--\r\n", second)
    response = client.post("/submission", content=body, headers={**headers, **world.monitor.basic})
    assert response.status_code == 400 and "more than one xml_submission_file" in message(response)
    assert submissions(engine) == 0


#: A follow-up form that picks a case from the per-organisation ``cases.csv`` (generated per caller).
FOLLOWUP_MD = """
| survey   |                                 |           |        |
|          | type                            | name      | label  |
|          | select_one_from_file cases.csv  | case_code | Case   |
| settings |                                 |           |        |
|          | form_id                         | version   |        |
|          | followup                        | 1         |        |
"""


def test_manifest_lists_per_caller_media_with_the_md5_of_what_is_served(engine, client, settings, world):
    with session_scope(engine) as s:
        make_form(s, settings, md=FOLLOWUP_MD, form_id="followup", kind="case_followup")
    entry = form_list(client, world.caseworker_a.basic)["followup"]
    manifest = client.get(entry["manifestUrl"], headers={**OR, **world.caseworker_a.basic})
    (file,) = etree.fromstring(manifest.content).findall("m:mediaFile", namespaces=MANIFEST)
    assert file.findtext("m:filename", namespaces=MANIFEST) == "cases.csv"
    served = client.get(file.findtext("m:downloadUrl", namespaces=MANIFEST), headers={**OR, **world.caseworker_a.basic})
    assert served.status_code == 200 and served.content.startswith(b"name,label")
    assert file.findtext("m:hash", namespaces=MANIFEST) == f"md5:{hashlib.md5(served.content).hexdigest()}"
    # A coordinator gets no per-organisation case list (the file is omitted, not empty).
    coordinator = client.get(entry["manifestUrl"].replace("http://testserver", ""),
                             headers={**OR, **world.coordinator.basic})
    assert etree.fromstring(coordinator.content).findall("m:mediaFile", namespaces=MANIFEST) == []


def test_an_upload_with_a_too_long_device_id_is_refused_naming_the_parameter(client, world, forms):
    """Uploads are answered by a plain route ahead of the route table (issue 13); it checks what the
    documented route's parameters say, with the same 4xx."""
    xml = xml_for(forms["visit"], typed_visit_data())
    response = post(client, world.monitor, xml, url="/submission?deviceID=" + "x" * 201)
    assert response.status_code == 422
    assert "deviceID" in response.text
    assert post(client, world.monitor, xml, url="/submission?deviceID=" + "x" * 200).status_code == 201


def test_the_upload_is_still_described_in_the_openapi_document(client):
    operations = client.get("/openapi.json").json()["paths"]
    assert "post" in operations["/submission"] and "post" in operations["/key/{device_token}/submission"]


def test_a_new_upload_writes_its_submission_row_once(client, engine, world, forms):
    """Capabilities fill their columns before the insert (geodata: where the visit falls), so a new
    submission costs one INSERT and no UPDATE of its row (issue 13)."""
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # noqa: ANN001, ANN002
        statements.append(" ".join(statement.split()).lower())

    app_engine = client.app.state.engine
    event.listen(app_engine, "before_cursor_execute", seen)
    try:
        response = post(client, world.monitor, xml_for(forms["visit"], typed_visit_data()))
    finally:
        event.remove(app_engine, "before_cursor_execute", seen)
    assert response.status_code == 201
    assert len([s for s in statements if s.startswith('insert into "submission"')]) == 1
    assert not [s for s in statements if s.startswith("update submission") or s.startswith('update "submission"')]
    with session_scope(engine) as s:
        stored = s.exec(select(Submission)).one()
        assert (stored.site_match, stored.site_flag) == ("unmapped", None)
