"""Issue 14 item 1: the site list reaches every form that references it, whatever the order of uploads
(sites imported first, site-visit form uploaded afterwards), and can be regenerated on demand."""

import hashlib
import json
from pathlib import Path

from lxml import etree
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.blobs import FilesystemBlobStore
from app.cli import cli
from app.db import session_scope
from forms import service as forms_service
from forms.models import FormMedia
from sync import openrosa
from tests.geodata.conftest import KOLWEZI, import_frame, sites_frame, square

BUNDLED = Path(__file__).resolve().parents[2] / "forms" / "bundled"
OR = {"X-OpenRosa-Version": "1.0"}
LIST = {"x": openrosa.XFORMS_LIST_NS}
MANIFEST = {"m": openrosa.MANIFEST_NS}
SITE = square(*KOLWEZI, 100)


def geojson_upload(frame) -> dict:
    return {"file": ("sites.geojson", frame.to_json().encode(), "application/geo+json")}


def manifest_files(client, headers, xml_form_id: str) -> dict[str, tuple[str, str]]:
    """{filename: (hash, downloadUrl)} of the form's OpenRosa manifest, found through formList."""
    listed = etree.fromstring(client.get("/formList", headers={**OR, **headers}).content)
    entry = next(x for x in listed.findall("x:xform", namespaces=LIST) if x.findtext("x:formID", namespaces=LIST) == xml_form_id)
    manifest = client.get(entry.findtext("x:manifestUrl", namespaces=LIST), headers={**OR, **headers})
    assert manifest.status_code == 200, manifest.text
    return {f.findtext("m:filename", namespaces=MANIFEST): (f.findtext("m:hash", namespaces=MANIFEST),
                                                            f.findtext("m:downloadUrl", namespaces=MANIFEST))
            for f in etree.fromstring(manifest.content).findall("m:mediaFile", namespaces=MANIFEST)}


def test_sites_imported_first_then_form_uploaded_gives_the_site_list_at_once(client, world):
    r = client.post("/api/v1/sites/import", headers=world.coordinator.bearer, files=geojson_upload(
        sites_frame([("A", SITE), ("ZEA-1", square(*KOLWEZI, 900), "zea")])))
    assert r.status_code == 200 and r.json()["created"] == 2
    form = (BUNDLED / "asm_site_visit.md").read_bytes()
    r = client.post("/api/v1/forms", headers=world.coordinator.bearer, files={"file": ("asm_site_visit.md", form)},
                    data={"kind": "site_visit"})
    assert r.status_code == 201, r.text
    assert [m["filename"] for m in r.json()["media"]] == [] and r.json()["media_names"] == ["sites.geojson"]

    files = manifest_files(client, world.monitor.basic, "asm_site_visit")
    assert set(files) == {"sites.geojson"}
    md5, url = files["sites.geojson"]
    download = client.get(url, headers={**OR, **world.monitor.basic})
    assert download.status_code == 200
    assert md5 == f"md5:{hashlib.md5(download.content).hexdigest()}"
    assert [f["properties"]["id"] for f in json.loads(download.content)["features"]] == ["A"]


def test_form_uploaded_before_any_site_gets_an_empty_list_then_the_sites(client, engine, settings, world):
    r = client.post("/api/v1/forms", headers=world.admin.bearer,
                    files={"file": ("asm_site_visit.md", (BUNDLED / "asm_site_visit.md").read_bytes())})
    assert r.status_code == 201, r.text
    _, url = manifest_files(client, world.monitor.basic, "asm_site_visit")["sites.geojson"]
    assert json.loads(client.get(url, headers={**OR, **world.monitor.basic}).content)["features"] == []
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    _, url = manifest_files(client, world.monitor.basic, "asm_site_visit")["sites.geojson"]
    assert len(json.loads(client.get(url, headers={**OR, **world.monitor.basic}).content)["features"]) == 1


def stored_site_list(engine) -> dict[str, str]:
    with Session(engine) as s:
        return {m.filename: m.md5 for m in s.exec(select(FormMedia).where(FormMedia.filename.in_(("sites.csv", "sites.geojson"))))}


def upload_without_generators(engine, settings) -> None:
    """A form uploaded the way callers did before generated media were stored at upload."""
    with session_scope(engine) as s:
        for name in ("asm_site_visit.md", "child_case_intake.md"):
            forms_service.add_form(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings, actor=None,
                                   content=(BUNDLED / name).read_bytes(), filename=name)


def test_publish_media_command_regenerates_on_demand(engine, settings, world, monkeypatch):
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    upload_without_generators(engine, settings)
    assert stored_site_list(engine) == {}
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret_key)
    if settings.database_url:
        monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.database_url)
    r = CliRunner().invoke(cli, ["sites", "publish-media"])
    assert r.exit_code == 0, r.output
    assert "Site list (1 sites) published: 2 form files changed" in r.output
    assert set(stored_site_list(engine)) == {"sites.csv", "sites.geojson"}
    r = CliRunner().invoke(cli, ["sites", "publish-media", "--json"])
    assert json.loads(r.output) == {"versions_changed": 0, "sites": 1}


def test_publish_media_route_is_for_admins_and_coordinators(client, engine, settings, world):
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    upload_without_generators(engine, settings)
    assert client.post("/api/v1/sites/media", headers=world.monitor.bearer).status_code == 403
    r = client.post("/api/v1/sites/media", headers=world.coordinator.bearer)
    assert r.status_code == 200 and r.json() == {"versions_changed": 2, "sites": 1}
    assert set(stored_site_list(engine)) == {"sites.csv", "sites.geojson"}
    assert client.post("/api/v1/sites/media", headers=world.admin.bearer).json()["versions_changed"] == 0
