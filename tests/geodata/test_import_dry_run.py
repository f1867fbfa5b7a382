"""A dry run of a site import writes nothing and reports what the real import then does."""

import json

import shapely
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.models import AuditLog
from geodata.models import Site
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square

runner = CliRunner()
A = square(*KOLWEZI, 100)
B = square(*offset(*KOLWEZI, 5000), 100)
C = square(*offset(*KOLWEZI, 9000), 100)


def _sites(engine) -> dict[str, str]:
    with session_scope(engine) as s:
        return {site.code: site.name for site in s.exec(select(Site))}


def _imports(engine) -> int:
    with session_scope(engine) as s:
        return len(list(s.exec(select(AuditLog).where(AuditLog.action == "sites.import"))))


def _next_file():
    """Against A and B stored: A unchanged, B renamed, C new, a second C (same polygon) refused."""
    frame = sites_frame([("A", A), ("B", B), ("C", C), ("C", C)])
    frame.loc[1, "name"] = "Kambove Nord"
    return frame


def test_dry_run_writes_nothing_and_counts_what_the_import_then_does(engine, settings, forms):
    import_frame(engine, settings, sites_frame([("A", A), ("B", B)]))
    before, audits = _sites(engine), _imports(engine)

    dry = import_frame(engine, settings, _next_file(), dry_run=True)

    assert _sites(engine) == before and _imports(engine) == audits
    assert (dry["dry_run"], dry["created"], dry["updated"], dry["unchanged"], dry["skipped"]) == (True, 1, 1, 1, 1)
    assert [(i["row"], i["code"], i["action"]) for i in dry["items"]] == [
        (1, "A", "unchanged"), (2, "B", "updated"), (3, "C", "created")]
    assert dry["items"][1]["changed"] == ["name"]
    assert dry["problems"] == [{"row": 4, "code": "C", "problem": "duplicate code (first on row 3)"}]

    real = import_frame(engine, settings, _next_file())

    assert {k: real[k] for k in ("created", "updated", "unchanged", "skipped", "items")} == \
        {k: dry[k] for k in ("created", "updated", "unchanged", "skipped", "items")}
    assert real["dry_run"] is False and _sites(engine)["B"] == "Kambove Nord" and "C" in _sites(engine)


def test_api_dry_run_by_query_or_form_field(client, engine, world, forms):
    h = world.coordinator.bearer
    upload = {"file": ("sites.geojson", _next_file().to_json().encode(), "application/geo+json")}

    by_query = client.post("/api/v1/sites/import?dry_run=true", headers=h, files=upload)
    by_form = client.post("/api/v1/sites/import", headers=h, files=upload, data={"dry_run": "true"})

    assert by_query.status_code == by_form.status_code == 200
    assert by_query.json() == by_form.json()
    body = by_query.json()
    assert (body["dry_run"], body["created"], body["skipped"]) == (True, 3, 1)
    assert [i["action"] for i in body["items"]] == ["created"] * 3
    assert _sites(engine) == {}
    real = client.post("/api/v1/sites/import", headers=h, files=upload).json()
    assert (real["dry_run"], real["created"], real["items"]) == (False, 3, body["items"])
    assert set(_sites(engine)) == {"A", "B", "C"}


def test_api_dry_run_is_for_staff_only(client, world, forms):
    upload = {"file": ("sites.geojson", _next_file().to_json().encode(), "application/geo+json")}
    r = client.post("/api/v1/sites/import?dry_run=true", headers=world.monitor.bearer, files=upload)
    assert r.status_code == 403


def test_cli_dry_run_lists_each_kind_of_row(engine, settings, forms, tmp_path, monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret_key)
    if settings.database_url:
        monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.database_url)
    import_frame(engine, settings, sites_frame([("A", A), ("B", B)]))
    path = tmp_path / "sites.geojson"
    _next_file().to_file(path)

    r = runner.invoke(cli, ["sites", "import", str(path), "--dry-run"])

    assert r.exit_code == 0, r.output
    assert "nothing written" in r.output and "1 created, 1 updated, 1 unchanged, 0 refused, 0 retired, 1 skipped" in r.output
    assert "Updated (1):\n  row 2 site B (name)" in r.output and "Skipped (1):\n  row 4 C: duplicate code" in r.output
    assert _sites(engine)["B"] == "Site B"
    r = runner.invoke(cli, ["sites", "import", str(path), "--dry-run", "--json"])
    assert json.loads(r.output)["items"][2] == {"row": 3, "code": "C", "name": "Site C", "action": "created",
                                                "target": "site", "changed": []}


def test_an_unreadable_upload_is_refused_without_the_servers_path(client, world, forms):
    broken = {"file": ("broken.geojson", b"{nonsense", "application/geo+json")}
    r = client.post("/api/v1/sites/import?dry_run=true", headers=world.coordinator.bearer, files=broken)
    assert r.status_code == 422 and r.json()["error"]["code"] == "sites.unreadable"
    message = r.json()["error"]["message"]
    assert "broken.geojson" in message and "asmfield-sites-" not in message and "/tmp" not in message


def _two_parts():
    """Issue 14, item 4: a title in two rows, the second part 9× larger, plus the first part again."""
    return sites_frame([("M", A), ("M", square(*offset(*KOLWEZI, 20_000), 300)), ("M", A)])


def test_a_multi_part_site_is_merged_in_the_dry_run_and_the_import(engine, settings, forms):
    dry = import_frame(engine, settings, _two_parts(), dry_run=True)
    assert (dry["created"], dry["merged"], dry["skipped"], dry["would_import"]) == (1, 1, 1, 1)
    assert dry["problems"] == [{"row": 3, "code": "M", "problem": "duplicate code (first on row 1)"}]
    assert {"row": 2, "code": "M", "warning": "another part of the site on row 1: merged into one multi-polygon"} \
        in dry["warnings"]
    real = import_frame(engine, settings, _two_parts())
    assert (real["created"], real["merged"], real["skipped"], real["items"]) == (1, 1, 1, dry["items"])
    with session_scope(engine) as s:
        site = s.exec(select(Site).where(Site.code == "M")).one()
        geometry = shapely.from_geojson(site.geometry)
    expected = shapely.union_all([A, square(*offset(*KOLWEZI, 20_000), 300)])
    assert geometry.geom_type == "MultiPolygon" and len(geometry.geoms) == 2
    assert abs(geometry.area - expected.area) < 1e-3 * expected.area
    assert 9 * 0.95 < site.area_m2 / (200 * 200) < 10 * 1.05  # both parts: 1 + 9 squares of 200 m
    again = import_frame(engine, settings, _two_parts())
    assert (again["unchanged"], again["merged"]) == (1, 1)


def test_api_reports_the_merged_rows(client, engine, world, forms):
    upload = {"file": ("sites.geojson", _two_parts().to_json().encode(), "application/geo+json")}
    body = client.post("/api/v1/sites/import?dry_run=true", headers=world.coordinator.bearer, files=upload).json()
    assert (body["created"], body["merged"], body["skipped"]) == (1, 1, 1)
    assert any(w["row"] == 2 and "merged" in w["warning"] for w in body["warnings"])
    body = client.post("/api/v1/sites/import", headers=world.coordinator.bearer, files=upload).json()
    assert (body["dry_run"], body["created"], body["merged"]) == (False, 1, 1)
    with session_scope(engine) as s:
        assert s.exec(select(Site).where(Site.code == "M")).one().geometry.count("[[[") == 2
