"""Read API: submissions of a form (paged, filtered), one submission with its history, media files."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import update

from app import accounts
from app.db import session_scope
from app.timeutil import utcnow
from forms.models import Form
from geodata.models import Site
from sync.models import Submission
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
LIST = "/api/v1/forms/field_visit/submissions"


def sync(client, person, *items) -> list[dict]:
    response = client.post(BATCH, json={"items": list(items)}, headers=person.bearer)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def with_photo(client, person, body: bytes) -> str:
    iid = new_instance_id()
    sync(client, person, batch_item(iid, data=visit_data(photo_name="s.jpg"), files={"s.jpg": body}))
    assert client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=person.bearer).status_code in (200, 201)
    return iid


def test_pages_with_a_cursor_and_with_an_offset(client, world, visit_form):
    ids = [new_instance_id() for _ in range(5)]
    sync(client, world.monitor, *[batch_item(i, data=visit_data(workers=n)) for n, i in enumerate(ids)])
    seen, cursor = [], None
    while True:
        page = client.get(LIST, params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=world.coordinator.bearer).json()
        seen += [item["instance_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    offset = client.get(LIST, params={"limit": 2, "offset": 3}, headers=world.coordinator.bearer).json()
    assert [i["instance_id"] for i in offset["items"]] == ids[3:]


def test_items_carry_data_location_submitter_and_attachment_urls(client, world, visit_form, engine):
    body = photo(1)
    iid = with_photo(client, world.monitor, body)
    item = client.get(LIST, headers=world.admin.bearer).json()["items"][0]
    assert item["instance_id"] == iid == item["root_instance_id"]
    assert item["version"] == "1" and item["submitter"] == "monitor" and item["complete"] is True
    assert item["data"]["/field_visit/workers"] == 12
    assert (item["lat"], item["lon"], item["accuracy"]) == (-2.5, 28.8, 5.0)
    assert item["site"] is None and "site_match" in item
    assert item["attachments"] == [{"name": "s.jpg", "field": "/field_visit/site_photo", "received": True,
                                    "sha256": sha256(body), "size": len(body), "media_type": "image/jpeg",
                                    "url": f"/api/v1/media/{sha256(body)}"}]


def test_filters_by_received_date_device_and_site(client, world, visit_form, engine):
    old, new = new_instance_id(), new_instance_id()
    sync(client, world.monitor, batch_item(old), batch_item(new))
    with session_scope(engine) as s:
        s.execute(update(Submission).where(Submission.instance_id == old)
                  .values(received_at=utcnow() - timedelta(days=10)))
        _, token = accounts.create_device(s, name="tab-3", user=world.monitor.user.id)
    via_device = new_instance_id()
    client.post(BATCH, json={"items": [batch_item(via_device)]}, headers={"Authorization": f"Bearer {token}"})
    client.post(BATCH, json={"device": "collect:abc", "items": [batch_item(new_instance_id())]},
                headers=world.monitor.bearer)

    def ids(**params) -> list[str]:
        response = client.get(LIST, params=params, headers=world.coordinator.bearer)
        assert response.status_code == 200, response.text
        return [i["instance_id"] for i in response.json()["items"]]

    since = (utcnow() - timedelta(days=1)).date().isoformat()
    assert old not in ids(since=since) and new in ids(since=since)
    assert ids(until=(utcnow() - timedelta(days=5)).isoformat()) == [old]
    assert ids(device="tab-3") == [via_device]
    assert len(ids(device="collect:abc")) == 1
    assert ids(site="NO-SUCH-SITE") == []


def test_the_site_filter_and_site_code_come_from_geodata_through_the_hooks(client, world, visit_form, engine):
    """Sync knows no site table (issue 10): geodata answers ``site=CODE`` and adds each submission's site code."""
    mapped, other = new_instance_id(), new_instance_id()
    sync(client, world.monitor, batch_item(mapped), batch_item(other))
    with session_scope(engine) as s:
        site = Site(code="KIV-0001", name="Bisie", geometry="{}", min_lon=28.0, min_lat=-2.0, max_lon=28.1, max_lat=-1.9)
        s.add(site)
        s.flush()
        s.execute(update(Submission).where(Submission.instance_id == mapped).values(site_id=site.id))

    listed = client.get(LIST, params={"site": "KIV-0001"}, headers=world.coordinator.bearer).json()["items"]
    assert [(i["instance_id"], i["site"]) for i in listed] == [(mapped, "KIV-0001")]
    detail = client.get(f"/api/v1/submissions/{other}", headers=world.coordinator.bearer).json()
    assert detail["site"] is None and detail["versions"][0]["site"] is None


def test_who_reads_what(client, world, visit_form, engine):
    mine, theirs = new_instance_id(), new_instance_id()
    sync(client, world.monitor, batch_item(mine))
    sync(client, world.monitor2, batch_item(theirs))

    def listed(person) -> list[str]:
        return [i["instance_id"] for i in client.get(LIST, headers=person.bearer).json()["items"]]

    assert listed(world.admin) == listed(world.coordinator) == [mine, theirs]
    assert listed(world.monitor) == [mine]
    assert listed(world.monitor2) == [theirs]
    refused = client.get(LIST, headers=world.caseworker_a.bearer)
    assert refused.status_code == 403
    assert client.get(f"/api/v1/submissions/{theirs}", headers=world.monitor.bearer).status_code == 404
    assert client.get(f"/api/v1/submissions/{mine}", headers=world.caseworker_a.bearer).status_code == 404
    with session_scope(engine) as s:
        _, token = accounts.create_device(s, name="tab-9", user=world.admin.user.id)
    assert client.get(LIST, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert client.get(LIST).status_code == 401


def test_case_form_submissions_never_leave_by_the_generic_routes(client, world, app, engine, settings):
    """Issue 9, finding 3: whoever asks, a case form's submissions and photos are refused by the
    generic submission and media routes (403 ``submission.case_data`` pointing to /api/v1/cases);
    the owning NGO reads them through the case routes (scoped, audited)."""
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
    iid = new_instance_id()
    body = photo(7)
    sync(client, world.caseworker_a, batch_item(iid, form_id="case_check", data=case_data(child_photo="c.jpg"),
                                                files={"c.jpg": body}))
    client.put(f"/api/v1/blobs/{sha256(body)}", content=body, headers=world.caseworker_a.bearer)
    everybody = (world.admin, world.coordinator, world.monitor, world.caseworker_a, world.caseworker_b)
    for person in everybody:
        listed = client.get("/api/v1/forms/case_check/submissions", headers=person.bearer)
        one = client.get(f"/api/v1/submissions/{iid}", headers=person.bearer)
        for response in (listed, one):
            assert response.status_code == 403, (person.username, response.text)
            assert response.json()["error"]["code"] == "submission.case_data"
            assert "/api/v1/cases" in response.json()["error"]["message"] and "R1" not in response.text
        assert client.get(f"/api/v1/media/{sha256(body)}", headers=person.bearer).status_code == 404
    (case,) = client.get("/api/v1/cases", headers=world.caseworker_a.bearer).json()["cases"]
    photo_url = f"/api/v1/cases/{case['code']}/photos/c.jpg"
    assert client.get(photo_url, headers=world.caseworker_a.bearer).status_code == 200
    assert client.get(photo_url, headers=world.caseworker_b.bearer).status_code == 404


def test_case_data_stays_refused_whatever_the_form_kind_says_later(client, world, app, engine, settings):
    """Issue 9, finding 3: "case data" is sticky on the submission (case management took it in), so
    even a form whose kind was changed behind the API's back does not serve it."""
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
    iid = new_instance_id()
    sync(client, world.caseworker_a, batch_item(iid, form_id="case_check", data=case_data()))
    with session_scope(engine) as s:
        s.execute(update(Form).where(Form.xml_form_id == "case_check").values(kind="general"))
    for path in ("/api/v1/forms/case_check/submissions", f"/api/v1/submissions/{iid}"):
        response = client.get(path, headers=world.coordinator.bearer)
        assert response.status_code == 403 and response.json()["error"]["code"] == "submission.case_data"


def test_a_submission_with_its_edit_history(client, world, visit_form):
    first, second, third = new_instance_id(), new_instance_id(), new_instance_id()
    sync(client, world.monitor, batch_item(first))
    sync(client, world.monitor, batch_item(second, data=visit_data(workers=30), deprecated_id=first))
    sync(client, world.monitor, batch_item(third, data=visit_data(workers=40), deprecated_id=second))
    body = client.get(f"/api/v1/submissions/{second}", headers=world.monitor.bearer).json()
    assert body["instance_id"] == second and body["current"] is False and body["superseded_by"] == third
    assert [h["instance_id"] for h in body["history"]] == [first, second, third]
    assert [v["data"]["/field_visit/workers"] for v in body["versions"]] == [12, 30, 40]
    listed = client.get(LIST, headers=world.monitor.bearer).json()["items"]
    assert [i["instance_id"] for i in listed] == [third]


def test_media_original_and_derived_sizes_with_etags(client, world, visit_form):
    body = photo(2, size=(2000, 1500))
    with_photo(client, world.monitor, body)
    url = f"/api/v1/media/{sha256(body)}"
    original = client.get(url, headers=world.monitor.bearer)
    assert original.status_code == 200 and original.content == body
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["etag"] == f'"{sha256(body)}"'
    cached = client.get(url, headers=world.monitor.bearer | {"If-None-Match": original.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    for size, longest in (("thumb", 240), ("web", 1280)):
        derived = client.get(url, params={"size": size}, headers=world.coordinator.bearer)
        assert derived.status_code == 200 and derived.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(derived.content)).size) == longest
        assert derived.headers["etag"] != original.headers["etag"]


def test_media_is_readable_only_through_a_readable_submission(client, world, visit_form):
    body = photo(3)
    with_photo(client, world.monitor, body)
    url = f"/api/v1/media/{sha256(body)}"
    assert client.get(url, headers=world.monitor2.bearer).status_code == 404
    assert client.get(url, headers=world.caseworker_a.bearer).status_code == 404
    assert client.get(f"/api/v1/media/{sha256(b'never stored')}", headers=world.admin.bearer).status_code == 404


@pytest.mark.parametrize("path,params,code", [
    (LIST, {"limit": 0}, "request.bad_limit"),
    (LIST, {"limit": 1001}, "request.bad_limit"),
    (LIST, {"cursor": "!!nope"}, "request.bad_cursor"),
    (LIST, {"since": "last tuesday"}, "request.bad_date"),
    (LIST, {"offset": -1}, "request.bad_offset"),
    ("/api/v1/media/xyz", {}, "blob.bad_hash"),
    (f"/api/v1/media/{'a' * 64}", {"size": "huge"}, "media.bad_size"),
])
def test_bad_parameters_are_422_naming_them(client, world, visit_form, path, params, code):
    response = client.get(path, params=params, headers=world.admin.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


def test_unknown_form_is_404(client, world):
    response = client.get("/api/v1/forms/nope/submissions", headers=world.admin.bearer)
    assert response.status_code == 404 and response.json()["error"]["code"] == "form.not_found"
