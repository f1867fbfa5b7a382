"""`asmfield init --demo` installs every bundled form, with placeholder media, idempotently."""

from __future__ import annotations

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from forms import queries
from forms.demo import bundled_files, seed


def test_seed_installs_every_bundled_form_once(session, settings):
    first = seed(session, settings, build_hooks(), FilesystemBlobStore(settings.media_path))
    assert {f["xml_form_id"] for f in first["installed"]} == {p.stem for p in bundled_files()}
    assert all(f["created"] for f in first["installed"])
    visit = queries.get_form(session, "asm_site_visit")
    assert visit.kind == "site_visit"
    assert visit.settings["site_field"] == "/asm_site_visit/site_id"
    assert visit.settings["location_field"] == "/asm_site_visit/visit_location"
    media = queries.media_for_version(session, queries.published_version(session, visit))
    assert [m.filename for m in media] == ["sites.geojson"]
    again = seed(session, settings, build_hooks(), FilesystemBlobStore(settings.media_path))
    assert not any(f["created"] for f in again["installed"])
    assert len(queries.versions_of(session, visit)) == 1
