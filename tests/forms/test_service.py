"""Publishing versions, settings, media and access rules (forms/service.py)."""

from __future__ import annotations

import hashlib

import pytest

from app.blobs import FilesystemBlobStore
from app.errors import Conflict, Invalid, PayloadTooLarge, UnsupportedMedia
from app.identity import Actor
from app.models import User
from forms import queries, service
from forms.models import FormKind
from tests.forms.factories import add, simple_form

MEDIA_FORM = b"""
| survey |
| | type | name | label | media::image |
| | select_one_from_file villages.csv | village | Village | |
| | note | logo_note | Logo | logo.png |
| | select_one_from_file sites.geojson | site_id | Site | |
| settings |
| | form_id | version |
| | with_media | 1 |
"""


def test_first_upload_creates_the_form_and_publishes_its_version(session, settings):
    result = add(session, settings, simple_form(version="7"))
    assert result.created
    assert (result.form.xml_form_id, result.version.version, result.form.state) == ("simple", "7", "open")
    assert result.form.published_version_id == result.version.id
    assert result.form.kind == FormKind.general
    assert [f["path"] for f in result.version.fields] == ["/simple/gps", "/simple/remark"]
    assert len(result.version.md5) == 32


def test_a_new_version_is_published_and_older_versions_stay(session, settings):
    add(session, settings, simple_form(version="1"))
    second = add(session, settings, simple_form(version="2", extra="| | integer | count | Count |"))
    form = queries.get_form(session, "simple")
    assert queries.published_version(session, form).version == "2"
    assert [v.version for v in queries.versions_of(session, form)] == ["1", "2"]
    assert queries.get_version(session, form, "1").fields != second.version.fields


def test_reuploading_the_same_version_and_content_is_idempotent(session, settings):
    first = add(session, settings, simple_form(version="3"))
    again = add(session, settings, simple_form(version="3"))
    assert not again.created
    assert again.version.id == first.version.id


def test_same_version_with_different_content_is_a_conflict(session, settings):
    add(session, settings, simple_form(version="3"))
    with pytest.raises(Conflict) as err:
        add(session, settings, simple_form(version="3", extra="| | integer | count | Count |"))
    assert err.value.code == "form.version_conflict"
    assert "'3'" in err.value.message


def test_a_form_without_version_gets_a_timestamp_version_written_into_the_xform(session, settings):
    md = b"| survey |\n| | type | name | label |\n| | text | a | A |\n| settings |\n| | form_id |\n| | nover |\n"
    result = add(session, settings, md)
    assert result.version.version.isdigit() and len(result.version.version) == 14
    assert f'version="{result.version.version}"' in result.version.xform_xml
    again = add(session, settings, md)
    assert not again.created and again.version.id == result.version.id


def test_xlsform_errors_carry_pyxforms_message_and_row(session, settings):
    md = b"| survey |\n| | type | name | label |\n| | text | a | A |\n| | text | a | B |\n"
    with pytest.raises(Invalid) as err:
        add(session, settings, md)
    assert err.value.code == "form.xlsform_invalid"
    assert err.value.details["row"] == 3
    assert "'a'" in err.value.message


def test_bad_files_are_refused(session, settings):
    with pytest.raises(UnsupportedMedia):
        add(session, settings, b"\x00\x01binary", filename="form.bin")
    with pytest.raises(Invalid) as err:
        add(session, settings, b"PK\x03\x04truncated", filename="form.xlsx")
    assert "zip" in err.value.message
    settings.max_form_bytes = 100
    with pytest.raises(PayloadTooLarge):
        add(session, settings, simple_form())


def test_defaults_for_settings_follow_the_published_version(session, settings):
    result = add(session, settings, simple_form(), kind="site_visit")
    assert result.form.settings == {"location_field": "/simple/gps", "site_mapping": True}
    case_form = add(session, settings, simple_form(form_id="case"), kind="case_intake")
    assert case_form.form.settings["site_mapping"] is False
    service.update_form(session, form=result.form, actor=None, changes={"site_mapping": False})
    assert result.form.settings["site_mapping"] is False
    with pytest.raises(Invalid):
        service.update_form(session, form=result.form, actor=None, changes={"location_field": "/simple/remark"})
    with pytest.raises(Invalid):
        service.update_form(session, form=result.form, actor=None, changes={"site_field": "/simple/nothing"})


def test_media_upload_refuses_unreferenced_and_path_like_names(session, settings):
    result = add(session, settings, MEDIA_FORM)
    assert sorted(result.version.media_names) == ["logo.png", "sites.geojson", "villages.csv"]
    blobs = FilesystemBlobStore(settings.media_path)
    row = service.add_media(session, blobs=blobs, settings=settings, actor=None, form=result.form,
                            upload=service.IncomingMedia("villages.csv", b"name,label\nv1,Village 1\n"))
    assert row.md5 == hashlib.md5(b"name,label\nv1,Village 1\n").hexdigest()  # noqa: S324
    assert row.media_type == "text/csv"
    assert blobs.exists(row.sha256)
    for bad in ("../villages.csv", "/villages.csv", "a/villages.csv", "other.csv"):
        with pytest.raises(Invalid):
            service.add_media(session, blobs=blobs, settings=settings, actor=None, form=result.form,
                              upload=service.IncomingMedia(bad, b"x"))


def test_generated_media_replaces_the_file_on_every_referencing_version(session, settings):
    blobs = FilesystemBlobStore(settings.media_path)
    first = add(session, settings, MEDIA_FORM)
    add(session, settings, simple_form())
    n = service.set_generated_media(session, blobs=blobs, filename="sites.geojson", content=b'{"a": 1}',
                                    media_type="application/geo+json", generated_from="sites")
    assert n == 1
    assert service.set_generated_media(session, blobs=blobs, filename="sites.geojson", content=b'{"a": 1}',
                                       media_type="application/geo+json", generated_from="sites") == 0
    second = add(session, settings, MEDIA_FORM.replace(b"| with_media | 1 |", b"| with_media | 2 |"))
    carried = queries.get_media(session, second.version, "sites.geojson")
    assert carried is not None and carried.generated_from == "sites"
    carried_md5 = carried.md5
    assert service.set_generated_media(session, blobs=blobs, filename="sites.geojson", content=b'{"a": 2}',
                                       media_type="application/geo+json", generated_from="sites") == 2
    old = queries.get_media(session, first.version, "sites.geojson")
    assert old.md5 == queries.get_media(session, second.version, "sites.geojson").md5 != carried_md5


@pytest.mark.parametrize(("role", "kinds"), [
    ("admin", {"site_visit", "case_intake", "case_followup", "general"}),
    ("coordinator", {"site_visit", "case_intake", "case_followup", "general"}),
    ("monitor", {"site_visit", "general"}),
    ("caseworker", {"case_intake", "case_followup"}),
])
def test_who_sees_and_submits_which_kinds(session, settings, role, kinds):
    for kind in FormKind:
        add(session, settings, simple_form(form_id=f"f_{kind}"), kind=kind)
    actor = Actor(user=User(username="u", password_hash="x", role=role, organisation_id=1))
    visible = service.forms_visible_to(session, actor)
    assert {f.kind for f in visible} == kinds
    assert {f.kind for f in queries.list_forms(session) if service.may_submit(actor, f)} == kinds
    assert service.may_manage(actor) == (role in ("admin", "coordinator"))


def test_closed_forms_are_left_out_when_only_open_ones_are_asked_for(session, settings):
    add(session, settings, simple_form(form_id="a"))
    closed = add(session, settings, simple_form(form_id="b")).form
    service.set_state(session, form=closed, state="closed", actor=None)
    admin = Actor(user=User(username="u", password_hash="x", role="admin", organisation_id=1))
    assert [f.xml_form_id for f in service.forms_visible_to(session, admin)] == ["a", "b"]
    assert [f.xml_form_id for f in service.forms_visible_to(session, admin, open_only=True)] == ["a"]
    with pytest.raises(Invalid):
        service.set_state(session, form=closed, state="archived", actor=None)


def test_a_new_version_keeps_uploaded_media_it_still_references(session, settings):
    blobs = FilesystemBlobStore(settings.media_path)
    first = add(session, settings, MEDIA_FORM)
    service.add_media(session, blobs=blobs, settings=settings, actor=None, form=first.form,
                      upload=service.IncomingMedia("villages.csv", b"name,label\nv1,V1\n"))
    second = add(session, settings, MEDIA_FORM.replace(b"| with_media | 1 |", b"| with_media | 2 |"))
    kept = queries.get_media(session, second.version, "villages.csv")
    assert kept is not None and kept.md5 == queries.get_media(session, first.version, "villages.csv").md5
    third = add(session, settings, MEDIA_FORM.replace(b"villages.csv", b"towns.csv").replace(b"| with_media | 1 |",
                                                                                                b"| with_media | 3 |"))
    assert [m.filename for m in queries.media_for_version(session, third.version)] == []


def test_location_setting_follows_a_version_that_renames_the_geopoint(session, settings):
    first = add(session, settings, simple_form(version="1"), kind="site_visit")
    assert first.form.settings["location_field"] == "/simple/gps"
    renamed = simple_form(version="2").replace(b"| geopoint | gps |", b"| geopoint | position |")
    second = add(session, settings, renamed)
    assert second.form.settings["location_field"] == "/simple/position"
    assert service.effective_settings(session, second.form)["location_field"] == "/simple/position"
