"""XLSForm to XForm through pyxform (forms/xlsform.py): pure, no database."""

from __future__ import annotations

import io
import zipfile

import pytest

from forms import xlsform
from forms.xlsform import XLSFormError, convert, file_type, markdown_to_xlsx

MD = """
| survey |
| | type | name | label |
| | image | photo | Photo |
| settings |
| | form_id | version |
| | pics | 1 |
"""


def test_markdown_converts_with_warnings():
    result = convert(MD, kind="md")
    assert 'id="pics"' in result.xform
    assert any("max-pixels" in w for w in result.warnings)


def test_xlsx_round_trip_gives_the_same_xform():
    assert convert(markdown_to_xlsx(MD), kind="xlsx").xform == convert(MD, kind="md").xform


@pytest.mark.parametrize(("md", "row", "words"), [
    ("| survey |\n| | type | name | label |\n| | text | a | A |\n| | text | a | B |\n", 3, "'a'"),
    ("| survey |\n| | type | name | label |\n| | begin repeat | r | R |\n", 2, "Unmatched"),
    ("| survey |\n| | type | name | label |\n| | select_one nolist | q | Q |\n"
     "| choices |\n| | list_name | name | label |\n| | yn | yes | Yes |\n", 2, "nolist"),
])
def test_errors_carry_pyxforms_message_and_row(md, row, words):
    with pytest.raises(XLSFormError) as err:
        convert(md, kind="md")
    assert err.value.row == row
    assert words in err.value.message


def test_unknown_type_is_an_error():
    with pytest.raises(XLSFormError, match="bogus"):
        convert("| survey |\n| | type | name | label |\n| | bogus | a | A |\n", kind="md")


def test_broken_workbooks_are_refused():
    with pytest.raises(XLSFormError, match="zip"):
        convert(b"PK\x03\x04 not really a zip", kind="xlsx")
    with pytest.raises(XLSFormError, match="Content_Types"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a.txt", "a")
        convert(buf.getvalue(), kind="xlsx")


def test_zip_bombs_are_refused(monkeypatch):
    monkeypatch.setattr(xlsform, "MAX_UNZIPPED_BYTES", 5_000_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<x/>")
        z.writestr("xl/bomb.xml", b"0" * 5_000_001)
    assert len(buf.getvalue()) < 50_000
    with pytest.raises(XLSFormError, match="inflates"):
        convert(buf.getvalue(), kind="xlsx")


def test_file_type_from_name_or_content():
    assert file_type("f.xlsx", b"") == "xlsx"
    assert file_type(None, b"PK\x03\x04...") == "xlsx"
    assert file_type("f.XML", b"") == "xml"
    assert file_type(None, b"\xef\xbb\xbf<?xml") == "xml"
    assert file_type("form.md", b"") == "md"
    assert file_type("x.bin", b"\x00\x01") == "unknown"
