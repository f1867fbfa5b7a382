"""The media zip: the photos of the exported submissions, sent by tablets as ODK Collect does, named so
they match the rows (``media.csv`` and the CSV's ``_uuid``), with the stored bytes; the same row scope
as the tables, and no case photos for coordinators."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pytest

from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from reports.errors import ExportCaseData
from reports.exports.media_zip import write_media_zip
from reports.exports.rows import export_plan, iter_rows
from reports.exports.spec import parse_spec
from sync.submission_xml import build_instance_xml
from tests.factories import CASE_MD, VISIT_MD, case_data, multipart, new_instance_id, photo, visit_xml


def _send(client, person, version, files: dict[str, bytes], **kwargs) -> str:
    instance_id = new_instance_id()
    body, headers = multipart(visit_xml(version, instance_id, **kwargs), files)
    response = client.post("/submission", content=body, headers={**headers, **person.basic})
    assert response.status_code == 201, response.text
    return instance_id


def _media(kit, person, **params) -> tuple[zipfile.ZipFile, list[str]]:
    with session_scope(kit.engine) as session:
        plan = export_plan(session, Actor(user=person.user), build_hooks(), parse_spec({"format": "media", **params}),
                           audited=False)
        out = io.BytesIO()
        write_media_zip(session, plan, out, blobs=kit.blobs)
        uuids = [row[plan.main.header.index("_uuid")] for row in iter_rows(session, plan, plan.main)]
    return zipfile.ZipFile(io.BytesIO(out.getvalue())), uuids


def test_media_zip_names_each_photo_by_submission_and_question_with_its_stored_bytes(client, kit) -> None:
    version = kit.publish(VISIT_MD)
    first = _send(client, kit.world.monitor, version, {"site.jpg": photo(1), "pit1.jpg": photo(2), "pit2.jpg": photo(3)},
                  photo_name="site.jpg", pit_photos=["pit1.jpg", "pit2.jpg"])
    other = _send(client, kit.world.monitor2, version, {"site.jpg": photo(4)}, photo_name="site.jpg")
    without = _send(client, kit.world.monitor2, version, {})

    archive, uuids = _media(kit, kit.world.coordinator, form="field_visit")
    folder = first.removeprefix("uuid:")
    assert sorted(archive.namelist()) == sorted([
        f"media/{folder}/site_photo_site.jpg", f"media/{folder}/pits-pit_photo_pit1.jpg",
        f"media/{folder}/pits-pit_photo_pit2.jpg", f"media/{other.removeprefix('uuid:')}/site_photo_site.jpg",
        "media.csv"])
    assert archive.getinfo(f"media/{folder}/site_photo_site.jpg").compress_type == zipfile.ZIP_STORED
    index = list(csv.DictReader(io.StringIO(archive.read("media.csv").decode("utf-8-sig"))))
    assert len(index) == 4
    assert {row["_uuid"] for row in index} == {first, other} and without in uuids  # keys of the CSV rows
    assert set(uuids) == {first, other, without}
    for row in index:
        data = archive.read(row["path"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        with kit.blobs.open(row["sha256"]) as stored:
            assert stored.read() == data
        assert row["path"] == f"media/{row['_uuid'].removeprefix('uuid:')}/{row['field']}_{row['file']}"

    own, _ = _media(kit, kit.world.monitor2, form="field_visit")  # a monitor: their own visits' photos only
    assert {n.split("/")[1] for n in own.namelist() if n.startswith("media/")} == {other.removeprefix("uuid:")}


def test_case_photos_go_only_to_the_owning_organisations_caseworkers(client, kit) -> None:
    version = kit.publish(CASE_MD, kind="case_intake")
    instance_id = new_instance_id()
    body, headers = multipart(build_instance_xml(version, case_data(child_photo="child.jpg"), instance_id),
                              {"child.jpg": photo(5)})
    assert client.post("/submission", content=body, headers={**headers, **kit.world.caseworker_a.basic}).status_code == 201
    with pytest.raises(ExportCaseData):
        _media(kit, kit.world.coordinator, form="case_check")
    with pytest.raises(ExportCaseData):
        _media(kit, kit.world.admin, form="case_check")
    own, uuids = _media(kit, kit.world.caseworker_a, form="case_check")
    assert uuids == [instance_id]
    assert [n for n in own.namelist() if n.startswith("media/")] == [
        f"media/{instance_id.removeprefix('uuid:')}/child_photo_child.jpg"]
    other, uuids = _media(kit, kit.world.caseworker_b, form="case_check")
    assert uuids == [] and other.namelist() == ["media.csv"]
