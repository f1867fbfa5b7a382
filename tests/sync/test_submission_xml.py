"""Instance XML parsing (hostile-safe, typed by the field schema) and building, without a database."""

from __future__ import annotations

import pytest

from app.errors import BadRequest, Invalid
from forms.xform import parse_xform
from forms.xlsform import convert
from sync.submission_xml import (
    build_instance_xml,
    by_name,
    parse_geopoint,
    parse_instance,
    read_data,
)
from tests.sync.factories import TYPED_VISIT_MD

XFORM = convert(TYPED_VISIT_MD.format(form_id="visit", version="7"), kind="md").xform
INFO = parse_xform(XFORM.encode())
FIELDS = INFO.fields


class Version:
    """The attributes of FormVersion that building needs."""

    xform_xml = XFORM
    xform_sha256 = "test-visit-7"
    fields = FIELDS


def instance(body: str, *, root: str = "data", attrs: str = 'id="visit" version="7"', meta: str | None = None) -> bytes:
    meta = meta if meta is not None else "<meta><instanceID>uuid:abc</instanceID></meta>"
    return f'<?xml version="1.0"?><{root} {attrs}>{body}{meta}</{root}>'.encode()


def read(body: str, **kwargs) -> dict:
    return read_data(parse_instance(instance(body, **kwargs)), FIELDS).data


# -- envelope ------------------------------------------------------------------------------


def test_envelope_names_form_version_and_ids():
    parsed = parse_instance(instance("", meta="<meta><instanceID>uuid:new</instanceID>"
                                              "<deprecatedID>uuid:old</deprecatedID></meta>"))
    assert (parsed.form_id, parsed.version, parsed.instance_id, parsed.deprecated_id) == ("visit", "7", "uuid:new", "uuid:old")


def test_namespaced_instance_and_orx_meta_are_read():
    xml = (b'<data xmlns="http://opendatakit.org/submissions" xmlns:orx="http://openrosa.org/xforms" id="visit" '
           b'version="7"><workers>3</workers><orx:meta><orx:instanceID>uuid:ns</orx:instanceID></orx:meta></data>')
    parsed = parse_instance(xml)
    assert parsed.instance_id == "uuid:ns"
    assert read_data(parsed, FIELDS).data == {"/data/workers": 3}


def test_missing_instance_id_gets_a_stable_generated_one():
    xml = instance("<workers>3</workers>", meta="")
    first, again = parse_instance(xml), parse_instance(xml)
    assert first.instance_id_generated and first.instance_id.startswith("uuid:")
    assert first.instance_id == again.instance_id
    assert parse_instance(instance("<workers>4</workers>", meta="")).instance_id != first.instance_id


def test_root_without_form_id_is_refused():
    with pytest.raises(BadRequest, match="no id attribute"):
        parse_instance(instance("", attrs='version="7"'))


def test_deprecated_id_equal_to_instance_id_is_refused():
    with pytest.raises(BadRequest, match="deprecatedID equals"):
        parse_instance(instance("", meta="<meta><instanceID>uuid:a</instanceID><deprecatedID>uuid:a</deprecatedID></meta>"))


# -- hostile XML ---------------------------------------------------------------------------


@pytest.mark.parametrize("xml", [
    b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<data id="visit"><g><note>&xxe;</note></g></data>',
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><data id="visit"><g><note>&lol3;</note></g></data>',
    b'<!-- a comment first -->' + b" " * 5000 + b'<!DOCTYPE data SYSTEM "http://example.org/x.dtd"><data id="visit"/>',
], ids=["xxe", "billion-laughs", "late-doctype"])
def test_dtds_and_entities_are_refused(xml):
    with pytest.raises(BadRequest) as info:
        parse_instance(xml)
    assert info.value.code == "submission.xml_dtd"


@pytest.mark.parametrize("xml", [b"", b"   ", b"<data id='visit'><a></data>", b"not xml at all", b"<data id='visit'>"])
def test_malformed_xml_is_a_bad_request(xml):
    with pytest.raises(BadRequest) as info:
        parse_instance(xml)
    assert info.value.code == "submission.xml_malformed"


def test_wrong_root_element_is_invalid():
    with pytest.raises(Invalid, match="root element is <other>"):
        read_data(parse_instance(instance("", root="other")), FIELDS)


# -- typed values --------------------------------------------------------------------------


def test_values_are_typed_by_the_schema_and_empty_elements_omitted():
    data = read("<visit_date>2026-03-01</visit_date><workers> 12 </workers><depth_m>4.5</depth_m>"
                "<location>-10.7 25.5 1200 5</location><activity>active</activity>"
                "<docs>coop_approval none</docs><g><note>  spaced  </note></g><photo/><photo2></photo2>")
    assert data == {
        "/data/visit_date": "2026-03-01", "/data/workers": 12, "/data/depth_m": 4.5,
        "/data/location": "-10.7 25.5 1200 5", "/data/activity": "active",
        "/data/docs": ["coop_approval", "none"], "/data/g/note": "  spaced  ",
    }


def test_repeats_become_lists_and_geopoints_inside_them_are_extracted():
    parsed = read_data(parse_instance(instance(
        "<location>1 2</location><pits><pit_gps>-10.7 25.5 0 3</pit_gps><pit_depth>3</pit_depth></pits>"
        "<pits><pit_gps>-10.8 25.6</pit_gps></pits><pits><pit_gps/></pits>")), FIELDS)
    assert parsed.data["/data/pits"] == [{"/data/pits/pit_gps": "-10.7 25.5 0 3", "/data/pits/pit_depth": 3},
                                         {"/data/pits/pit_gps": "-10.8 25.6"}]
    points = [(p.field_path, p.ordinal, p.lat, p.lon, p.altitude, p.accuracy) for p in parsed.geopoints]
    assert points == [("/data/location", 0, 1.0, 2.0, None, None),
                      ("/data/pits/pit_gps", 0, -10.7, 25.5, 0.0, 3.0),
                      ("/data/pits/pit_gps", 1, -10.8, 25.6, None, None)]


def test_the_form_audit_log_in_meta_is_an_expected_attachment():
    xml = instance("", meta="<meta><instanceID>uuid:a</instanceID><audit>audit.csv</audit></meta>")
    assert read_data(parse_instance(xml), FIELDS).attachments == {"audit.csv": "/data/meta/audit"}


def test_binary_fields_name_the_expected_attachments():
    parsed = read_data(parse_instance(instance("<photo>1718000000000.jpg</photo><photo2>b.jpg</photo2>")), FIELDS)
    assert parsed.attachments == {"1718000000000.jpg": "/data/photo", "b.jpg": "/data/photo2"}


@pytest.mark.parametrize(("body", "path"), [
    ("<workers>twelve</workers>", "/data/workers"),
    ("<workers>1.5</workers>", "/data/workers"),
    ("<depth_m>deep</depth_m>", "/data/depth_m"),
    ("<depth_m>NaN</depth_m>", "/data/depth_m"),
    ("<visit_date>2026-02-30</visit_date>", "/data/visit_date"),
    ("<visit_date>01/03/2026</visit_date>", "/data/visit_date"),
    ("<seen_at>yesterday</seen_at>", "/data/seen_at"),
    ("<seen_at>2026-03-01T25:00:00</seen_at>", "/data/seen_at"),
    ("<location>91 25</location>", "/data/location"),
    ("<location>-10 181</location>", "/data/location"),
    ("<location>somewhere</location>", "/data/location"),
    ("<location>1</location>", "/data/location"),
    ("<activity>dancing</activity>", "/data/activity"),
    ("<docs>coop_approval bribe</docs>", "/data/docs"),
    ("<photo>../../etc/passwd</photo>", "/data/photo"),
    ("<pits><pit_gps>-95 10</pit_gps></pits>", "/data/pits/pit_gps"),
    ("<workers><x>1</x></workers>", "/data/workers"),
])
def test_bad_values_are_invalid_naming_the_field(body, path):
    with pytest.raises(Invalid) as info:
        read(body)
    assert info.value.code == "submission.invalid_value"
    assert info.value.message.startswith(path + ":")
    assert info.value.details["field"] == path


def test_date_times_keep_their_text():
    assert read("<seen_at>2026-03-01T10:20:30.000+01:00</seen_at>") == {"/data/seen_at": "2026-03-01T10:20:30.000+01:00"}


def test_booleans_and_times_by_bind_type():
    fields = [{"path": "/data/ok", "kind": "field", "type": "boolean"}, {"path": "/data/at", "kind": "field", "type": "time"}]
    parsed = parse_instance(instance("<ok>true</ok><at>10:20:30.000+01:00</at>"))
    assert read_data(parsed, fields).data == {"/data/ok": True, "/data/at": "10:20:30.000+01:00"}
    for body, path in (("<ok>maybe</ok>", "/data/ok"), ("<at>noon</at>", "/data/at")):
        with pytest.raises(Invalid, match=f"^{path}:"):
            read_data(parse_instance(instance(body)), fields)


def test_unknown_elements_are_ignored():
    assert read("<workers>2</workers><from_an_older_version>x</from_an_older_version>") == {"/data/workers": 2}


def test_parse_geopoint_bounds():
    assert parse_geopoint("-90 180 10 2") == (-90.0, 180.0, 10.0, 2.0)
    assert parse_geopoint("90.0001 0") is None
    assert parse_geopoint("0 -180.5") is None
    assert parse_geopoint("1 2 3 4 5") is None
    assert parse_geopoint("inf 2") is None


# -- building ------------------------------------------------------------------------------


def test_build_then_parse_gives_the_same_data():
    data = {"/data/visit_date": "2026-03-01", "/data/workers": 0, "/data/depth_m": 4.25, "/data/location": "1 2 3 4",
            "/data/docs": ["none"], "/data/g/note": "ok & <fine>",
            "/data/pits": [{"/data/pits/pit_gps": "1 2", "/data/pits/pit_depth": 2}, {"/data/pits/pit_depth": 5}]}
    xml = build_instance_xml(Version, data, "uuid:built", deprecated_id="uuid:before")
    parsed = parse_instance(xml)
    assert (parsed.form_id, parsed.version, parsed.instance_id, parsed.deprecated_id) == \
        ("visit", "7", "uuid:built", "uuid:before")
    assert read_data(parsed, FIELDS).data == data


def test_build_refuses_keys_that_are_not_fields():
    with pytest.raises(Invalid, match="/data/wrokers: not a field"):
        build_instance_xml(Version, {"/data/wrokers": 3}, "uuid:x")


def test_by_name_maps_last_segment_and_skips_repeats():
    data = {"/data/workers": 3, "/data/g/note": "n", "/data/docs": ["a", "b"],
            "/data/pits": [{"/data/pits/pit_depth": 1}]}
    assert by_name(data) == {"workers": 3, "note": "n", "docs": ["a", "b"]}
