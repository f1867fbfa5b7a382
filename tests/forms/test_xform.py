"""Reading XForms into the field schema (forms/xform.py): pure, no database."""

from __future__ import annotations

import pytest

from forms.xform import XFormError, parse_xform, set_version
from forms.xlsform import convert

NESTED = """
| survey |
| | type | name | label | required | choice_filter | calculation |
| | begin group | household | Household | | | |
| | integer | members | Members | yes | | |
| | select_multiple yn | assets | Assets | | | |
| | end group | | | | | |
| | begin repeat | pits | Pits | | | |
| | geopoint | pit_gps | Pit location | | | |
| | image | pit_photo | Photo | | | |
| | begin repeat | workers | Workers | | | |
| | text | role | Role | | | |
| | end repeat | | | | | |
| | end repeat | | | | | |
| | geotrace | route | Route | | | |
| | select_one yn | filtered | Filtered | | name != 'no' | |
| | select_one_from_file villages.csv | village | Village | | | |
| | calculate | total | | | | ${members} * 2 |
| | barcode | tag | Tag | | | |
| | note | intro | Intro | | | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| settings |
| | form_id | version | name |
| | nested | 2 | nested |
"""


def fields_by_name(md: str) -> dict[str, dict]:
    return {f["name"]: f for f in parse_xform(convert(md, kind="md").xform).fields}


def test_groups_repeats_and_nesting():
    f = fields_by_name(NESTED)
    assert f["household"]["kind"] == "group" and f["household"]["type"] is None
    assert f["members"]["path"] == "/nested/household/members" and f["members"]["repeat"] is None
    assert f["members"]["type"] == "int" and f["members"]["required"] is True
    assert f["pits"]["kind"] == "repeat"
    assert f["pit_gps"]["repeat"] == "/nested/pits"
    assert f["workers"]["kind"] == "repeat" and f["workers"]["repeat"] == "/nested/pits"
    assert f["role"]["path"] == "/nested/pits/workers/role" and f["role"]["repeat"] == "/nested/pits/workers"


def test_types_choices_and_media():
    f = fields_by_name(NESTED)
    assert f["assets"]["type"] == "select" and f["assets"]["choices"] == ["yes", "no"]
    assert f["filtered"]["type"] == "select1" and f["filtered"]["choices"] == ["yes", "no"]
    assert f["village"]["choices_from"] == "villages.csv" and f["village"]["choices"] is None
    assert f["pit_photo"]["type"] == "binary" and f["pit_photo"]["mediatype"] == "image/*"
    assert f["route"]["type"] == "geotrace" and f["tag"]["type"] == "barcode"
    assert f["total"]["type"] == "string"
    assert f["members"]["labels"] == {"default": "Members"}


def test_document_order_and_no_meta():
    info = parse_xform(convert(NESTED, kind="md").xform)
    paths = [f["path"] for f in info.fields]
    assert paths.index("/nested/household") < paths.index("/nested/household/members") < paths.index("/nested/pits")
    assert not any("/meta" in p for p in paths)
    assert len(paths) == len(set(paths))
    assert (info.xml_form_id, info.version, info.root) == ("nested", "2", "nested")


def test_media_names_from_instances_images_and_search():
    md = """
| survey |
| | type | name | label | media::image | appearance | calculation |
| | note | n | Look | picture.png | | |
| | select_one yn | s | S | | search('lookup') | |
| | calculate | c | | | | pulldata('prices', 'price', 'item', 'x') |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
"""
    info = parse_xform(convert(md, kind="md").xform)
    assert sorted(info.media_names) == ["lookup.csv", "picture.png", "prices.csv"]


@pytest.mark.parametrize("xml", [
    b'<?xml version="1.0"?><!DOCTYPE h [<!ENTITY x SYSTEM "file:///etc/passwd">]><h>&x;</h>',
    b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
    b"<not-closed>",
    b"",
    b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><h:head/></h:html>",
    b"<html>not an xform</html>",
])
def test_unsafe_or_non_xforms_are_refused(xml):
    with pytest.raises(XFormError):
        parse_xform(xml)


def test_a_form_without_id_is_refused():
    xml = convert(NESTED, kind="md").xform.replace(' id="nested"', "")
    with pytest.raises(XFormError, match="form id"):
        parse_xform(xml)


def test_set_version_writes_the_version_on_the_instance_root():
    xml = convert(NESTED, kind="md").xform
    assert parse_xform(set_version(xml, "20260101")).version == "20260101"


def test_hand_written_xform_with_inline_items_and_xsd_types():
    xml = b"""<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Hand</h:title><model>
    <instance><hand id="hand"><n/><colour/><meta><instanceID/></meta></hand></instance>
    <bind nodeset="/hand/n" type="xsd:integer" required="true()"/>
  </model></h:head>
  <h:body>
    <input ref="/hand/n"><label>N</label></input>
    <select1 ref="/hand/colour"><label>Colour</label>
      <item><label>Red</label><value>red</value></item><item><label>Blue</label><value>blue</value></item>
    </select1>
  </h:body></h:html>"""
    info = parse_xform(xml)
    assert (info.xml_form_id, info.version, info.title) == ("hand", None, "Hand")
    n, colour = info.fields
    assert (n["type"], n["required"], n["labels"]) == ("int", True, {"default": "N"})
    assert (colour["type"], colour["choices"]) == ("select1", ["red", "blue"])
