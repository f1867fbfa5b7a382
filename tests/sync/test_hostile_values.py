"""Issue 9, finding 12: values Python or the database cannot take (lone surrogates, NUL, integers
past Python's 4300-digit conversion limit, NaN, Infinity, floats beyond range) make one batch item
``invalid`` — the other items are stored — and an OpenRosa submission a 4xx, never a 500. A
negative GPS accuracy is no accuracy: invalid."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.db import session_scope
from forms.models import FormVersion
from sync.models import Submission
from sync.submission_xml import parse_geopoint
from tests.factories import ROOT, batch_item, multipart, new_instance_id, visit_data, visit_xml

BATCH = "/api/v1/sync/batches"
HUGE_INT = "9" * 5000


def send_raw(client, person, body: str):
    """POST a JSON text as is (json= would refuse surrogates and NaN before they reach us)."""
    return client.post(BATCH, content=body.encode("utf-8", "surrogatepass"),
                       headers=person.bearer | {"Content-Type": "application/json"})


def stored_ids(engine) -> set[str]:
    with session_scope(engine) as s:
        return set(s.exec(select(Submission.instance_id)))


def item_json(item: dict, **raw: str) -> str:
    """An item as JSON text, with some values replaced by raw JSON (``"\\ud800"``, ``NaN``...)."""
    text = json.dumps(item)
    for key, value in raw.items():
        text = text.replace(f'"@{key}@"', value)
    return text


def test_unstorable_values_fail_their_item_only(client, world, visit_form, engine):
    good_first, good_last = batch_item(new_instance_id()), batch_item(new_instance_id())
    xml_item = batch_item(new_instance_id())
    del xml_item["data"]
    xml_item["xml"] = "@x@"
    bad = [
        (batch_item("@x@"), r'"uuid:\ud800"', "batch.bad_text"),
        (xml_item, r'"<field_visit id=\"field_visit\">\ud800</field_visit>"', "batch.bad_text"),
        (batch_item(new_instance_id(), data=visit_data(site_code="@x@")), r'"\udfff"', "batch.bad_text"),
        (batch_item(new_instance_id(), data={**visit_data(), "@x@": 1}), r'"\ud800"', "batch.bad_text"),
        (batch_item(new_instance_id(), form_id="@x@"), r'"field\ud800visit"', "batch.bad_text"),
        (batch_item(new_instance_id(), form_id="@x@"), r'"field\u0000visit"', "batch.bad_text"),
        (batch_item(new_instance_id(), data=visit_data(workers="@x@")), HUGE_INT, "batch.bad_number"),
        (batch_item(new_instance_id(), data=visit_data(site_code="@x@")), HUGE_INT, "batch.bad_number"),
        (batch_item(new_instance_id(), data={**visit_data(), f"{ROOT}/pits": [{f"{ROOT}/pits/depth_m": "@x@"}]}),
         "NaN", "batch.bad_number"),
        (batch_item(new_instance_id(), data=visit_data(workers="@x@")), "Infinity", "batch.bad_number"),
        (batch_item(new_instance_id(), data=visit_data(workers="@x@")), "-Infinity", "batch.bad_number"),
        (batch_item(new_instance_id(), data=visit_data(workers="@x@")), "1e999", "batch.bad_number"),
    ]
    # An attachment name with a surrogate, and an attachment size past the conversion limit.
    named = batch_item(new_instance_id(), data=visit_data(photo_name="a.jpg"), files={"a.jpg": b"x"})
    named["attachments"][0]["name"] = "@x@"
    sized = batch_item(new_instance_id(), data=visit_data(photo_name="b.jpg"), files={"b.jpg": b"y"})
    sized["attachments"][0]["size"] = "@x@"
    bad += [(named, r'"a\ud800.jpg"', "batch.bad_text"), (sized, HUGE_INT, "batch.bad_number")]
    body = "[" + ",".join([json.dumps(good_first)] + [item_json(i, x=v) for i, v, _ in bad] + [json.dumps(good_last)]) + "]"
    response = send_raw(client, world.monitor, '{"items": ' + body + "}")
    assert response.status_code == 200, response.text
    out = response.json()["results"]
    assert out[0]["status"] == "created" and out[-1]["status"] == "created"
    assert [(r["status"], r["code"]) for r in out[1:-1]] == [("invalid", code) for _, _, code in bad]
    assert out[1]["instance_id"] is None  # a lone surrogate cannot be sent back as JSON text
    assert stored_ids(engine) == {good_first["instance_id"], good_last["instance_id"]}


def test_a_device_name_with_a_surrogate_is_a_422_not_a_500(client, world, visit_form, engine):
    response = send_raw(client, world.monitor, '{"device": "tab\\ud800", "items": []}')
    assert response.status_code == 422 and response.json()["error"]["code"] == "batch.invalid"
    top_level = send_raw(client, world.monitor, '{"items": [' + HUGE_INT + ', NaN]}')
    assert [r["code"] for r in top_level.json()["results"]] == ["batch.bad_number", "batch.bad_number"]


@pytest.mark.parametrize("attachments", ["true", "5", '[{"sha256": ["a"]}]', '[{"sha256": {"a": 1}}]'])
def test_attachments_of_the_wrong_type_fail_their_item_only(client, world, visit_form, engine, attachments):
    """Finding 12, found again by the attacker's replay: ``"attachments": true`` (or a ``sha256`` that
    is a list) was read before the item's validation and made the whole batch a 500."""
    good = batch_item(new_instance_id())
    odd = batch_item(new_instance_id())
    odd["attachments"] = "@x@"
    response = send_raw(client, world.monitor, '{"items": [' + item_json(odd, x=attachments) + ", "
                        + json.dumps(good) + "]}")
    assert response.status_code == 200, response.text
    out = response.json()["results"]
    assert (out[0]["status"], out[0]["code"]) == ("invalid", "batch.item_invalid")
    assert out[1]["status"] == "created"
    assert stored_ids(engine) == {good["instance_id"]}


@pytest.mark.parametrize("accuracy", ["-5", "-0.1"])
def test_a_negative_gps_accuracy_is_invalid(client, world, visit_form, engine, accuracy):
    assert parse_geopoint(f"-2.5 28.8 950 {accuracy}") is None
    item = batch_item(new_instance_id(), data=visit_data() | {f"{ROOT}/location": f"-2.5 28.8 950 {accuracy}"})
    out = client.post(BATCH, json={"items": [item]}, headers=world.monitor.bearer).json()["results"][0]
    assert out["status"] == "invalid" and out["code"] == "submission.invalid_value"
    assert "accuracy" in out["reason"]
    with session_scope(engine) as s:
        version = s.exec(select(FormVersion)).one()
        xml = visit_xml(version, new_instance_id()).replace(b"950.0 5.0", f"950.0 {accuracy}".encode())
    body, headers = multipart(xml)
    response = client.post("/submission", content=body, headers=headers | world.monitor.basic)
    assert response.status_code == 422 and "accuracy" in response.text
    assert stored_ids(engine) == set()


def openrosa_variants(version) -> list[tuple[bytes, int]]:
    """Submission XML with hostile values, and the status each must get."""
    good = visit_xml(version, new_instance_id())
    return [
        (good.replace(b"SITE-001", b"&#xD800;"), 400),  # a character reference to a surrogate
        (good.replace(b"SITE-001", b"\xed\xa0\x80"), 400),  # a surrogate encoded as UTF-8 (CESU)
        (good.replace(b"SITE-001", b"&#0;"), 400),  # NUL
        (good.replace(b"<workers>12</workers>", b"<workers>" + HUGE_INT.encode() + b"</workers>"), 422),
        (good.replace(b"<workers>12</workers>", b"<workers>NaN</workers>"), 422),
        (good.replace(b"950.0 5.0", HUGE_INT.encode() + b" 5.0"), 422),  # a float overflowing to infinity
        (good.replace(b"-2.5 28.8", b"1e999 28.8"), 422),
        (good.replace(b"-2.5 28.8", b"NaN Infinity"), 422),
    ]


def test_openrosa_submissions_with_hostile_values_get_a_4xx(client, world, visit_form, engine):
    with session_scope(engine) as s:
        version = s.exec(select(FormVersion)).one()
        variants = openrosa_variants(version)
    for xml, status in variants:
        body, headers = multipart(xml)
        response = client.post("/submission", content=body, headers=headers | world.monitor.basic)
        assert response.status_code == status, (xml[:200], response.text)
    assert stored_ids(engine) == set()


def test_an_attachment_part_named_with_invalid_utf8_is_not_a_500(client, world, visit_form, engine):
    with session_scope(engine) as s:
        version = s.exec(select(FormVersion)).one()
        xml = visit_xml(version, new_instance_id(), photo_name="a.jpg")
    body, headers = multipart(xml, {"a.jpg": b"x"})
    body = body.replace(b'name="a.jpg"; filename="a.jpg"', b'name="a\xed\xa0\x80.jpg"; filename="a\xed\xa0\x80.jpg"')
    response = client.post("/submission", content=body, headers=headers | world.monitor.basic)
    assert response.status_code == 201  # the odd part is not referenced: ignored, like Central does
    assert "still waiting for 1 attachment" in response.text
