"""Issue 14, items 2 and 3: sites and legal areas kept apart, and no silent overwrites.

A cadastre (titles, ZEA, quarry authorisations, forbidden zones) and a register of mine sites are
imported as a GIS officer has them; only the sites reach tablets, statistics and placement, the
titles are the sites' legal context. Codes are unique per namespace (sites; each legal layer), a
change of kind or namespace is refused unless forced, a layer can be replaced as a whole (what
left it is retired, never deleted), and sites can be retired and restored.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from sqlmodel import Session, select

from app.blobs import FilesystemBlobStore
from app.db import session_scope
from app.models import AuditLog
from geodata import importers, media, placement, read, upsert
from geodata.index import indexes
from geodata.models import LegalArea, Site, SiteObservation
from tests.geodata.conftest import KOLWEZI, offset, square, submit, visit_answers

pytestmark = pytest.mark.storage

ZEA = square(*offset(*KOLWEZI, 3000), 1000)
PE_5 = square(*offset(*KOLWEZI, -6000), 1500)
#: a quarry authorisation right next to the mine site "KOL-1" (the trap of the issue: it captured visits)
QUARRY = square(*offset(*KOLWEZI, 400), 250)
SITE = square(*KOLWEZI, 60)


def cadastre(rows: list[tuple[str, str, object]], holder: str = "GECAMINES") -> gpd.GeoDataFrame:
    """Titles as the cadastre publishes them: numbered codes and a ``type`` column (PE, AECP, ZEA, ZIN...)."""
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "type": [r[1] for r in rows],
                             "titulaire": [holder] * len(rows)}, geometry=[r[2] for r in rows], crs=4326)


def register(rows: list[tuple[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [f"Mine {r[0]}" for r in rows]},
                            geometry=[r[1] for r in rows], crs=4326)


def run(engine, settings, frame: gpd.GeoDataFrame, tmp_path: Path, name: str = "file.geojson", **options) -> dict:
    """Import ``frame`` as a file, as the CLI and the API do (``upsert.import_file``)."""
    path = tmp_path / name
    frame.to_file(path, driver="GeoJSON")
    with session_scope(engine) as s:
        return upsert.import_file(s, path=path, settings=settings, blobs=FilesystemBlobStore(settings.media_path),
                                  **options)


def actions(report: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in report["items"]:
        out.setdefault(item["action"], []).append(item["code"])
    return out


def test_titles_are_legal_areas_and_only_sites_reach_tablets_stats_and_placement(engine, settings, world, forms,
                                                                                  client, tmp_path):
    report = run(engine, settings, cadastre([("360", "ZEA", ZEA), ("5", "PE", PE_5), ("10011", "AECP", QUARRY),
                                             ("77", "ZIN", square(*offset(*KOLWEZI, 9000), 500))]), tmp_path)
    assert (report["sites"], report["legal_areas"], report["created"]) == (0, 4, 4)
    run(engine, settings, register([("KOL-1", SITE)]), tmp_path, name="register.geojson")

    with Session(engine) as s:
        titles = {a.code: (a.layer, a.kind, a.title_type, a.holder) for a in s.exec(select(LegalArea))}
        assert titles == {"360": ("cadastre", "zea", "ZEA", "GECAMINES"), "5": ("cadastre", "pe", "PE", "GECAMINES"),
                          "10011": ("cadastre", "quarry", "AECP", "GECAMINES"),
                          "77": ("cadastre", "zin", "ZIN", "GECAMINES")}
        assert [site.code for site in s.exec(select(Site))] == ["KOL-1"]
        assert [row.split(",")[0] for row in media.sites_csv(s).decode().splitlines()[1:]] == ["KOL-1"]
        assert "10011" not in media.sites_geojson(s).decode()
        assert read.stats(s, months=1).sites == 1
        # a visit 200 m from the mine site, inside the quarry authorisation, maps to the mine site
        lon, lat = offset(*KOLWEZI, 260)
        (where,) = placement.place(indexes(s), lons=[lon], lats=[lat], named=[None],
                                   tolerance_m=settings.site_tolerance_m)
        assert (where.match, where.site_id) == ("nearest", s.exec(select(Site.id)).one())
    # the site's legal context: it lies beside the quarry authorisation, not in it; the ZEA is 2 km off
    r = client.get("/api/v1/sites/KOL-1", headers=world.coordinator.bearer).json()["properties"]
    assert r["legal_areas"] == [] and r["nearest_zea"] == "360" and 1900 < r["nearest_zea_m"] < 2000
    layer = client.get("/api/v1/map/legal/quarry?zoom=10", headers=world.monitor.bearer).json()
    assert [(f["id"], f["properties"]["title_type"]) for f in layer["features"]] == [("cadastre:10011", "AECP")]
    every = client.get("/api/v1/legal-areas?kind=pe", headers=world.monitor.bearer).json()
    assert [f["properties"]["code"] for f in every["features"]] == ["5"]


def test_a_site_inside_a_title_names_it_and_the_zea_it_lies_in(engine, settings, world, tmp_path, client):
    run(engine, settings, cadastre([("360", "ZEA", ZEA), ("5", "PEPM", PE_5)]), tmp_path)
    run(engine, settings, register([("IN-ZEA", square(*offset(*KOLWEZI, 3000), 50)),
                                    ("IN-PE", square(*offset(*KOLWEZI, -6000), 50))]), tmp_path, name="r.geojson")
    with Session(engine) as s:
        sites = {site.code: (site.zea_codes, site.permit_codes) for site in s.exec(select(Site))}
    assert sites == {"IN-ZEA": (["360"], []), "IN-PE": ([], ["5"])}
    r = client.get("/api/v1/sites/IN-PE", headers=world.coordinator.bearer).json()["properties"]
    assert r["legal_areas"] == [{"layer": "cadastre", "code": "5", "kind": "pe", "title_type": "PEPM",
                                 "name": "5"}]
    page = client.get("/api/v1/sites/IN-ZEA", headers=world.coordinator.bearer).json()["properties"]
    assert (page["nearest_zea"], page["nearest_zea_m"]) == ("360", 0.0)


def test_numeric_site_codes_never_overwrite_the_titles_of_the_same_number(engine, settings, world, tmp_path):
    run(engine, settings, cadastre([("5", "PE", PE_5)]), tmp_path)
    points = register([("5", SITE), ("6", square(*offset(*KOLWEZI, 900), 60))])

    guessed = run(engine, settings, points, tmp_path, name="points.geojson")
    assert actions(guessed) == {"refused": ["5"], "created": ["6"]}
    assert "code 5 is a legal area (PE in layer cadastre)" in guessed["items"][0]["reason"]
    said = run(engine, settings, points, tmp_path, name="points.geojson", target="sites")
    assert actions(said) == {"created": ["5"], "unchanged": ["6"]}
    with Session(engine) as s:
        assert s.exec(select(LegalArea.kind, LegalArea.geometry).where(LegalArea.code == "5")).one()[0] == "pe"
        assert s.exec(select(Site.kind).where(Site.code == "5")).one() == "asm_site"


def test_a_change_of_kind_is_refused_unless_forced(engine, settings, world, tmp_path):
    run(engine, settings, cadastre([("5", "PE", PE_5)]), tmp_path)
    became_research = cadastre([("5", "PR", PE_5)])
    report = run(engine, settings, became_research, tmp_path, dry_run=True)
    assert (report["refused"], report["items"][0]["reason"]) == (
        1, "would change the kind of 5 in layer cadastre from pe to pr: use --force if it is the same feature")
    forced = run(engine, settings, became_research, tmp_path, force=True)
    assert actions(forced) == {"updated": ["5"]} and "kind" in forced["items"][0]["changed"]


def test_a_cadastre_replaced_by_an_older_one_lists_what_it_would_retire_first(engine, settings, world, tmp_path, client):
    newer = cadastre([("1", "PE", PE_5), ("2", "PR", ZEA), ("3", "PE", QUARRY), ("4", "ZEA", SITE)])
    run(engine, settings, newer, tmp_path)
    older = cadastre([("1", "PE", PE_5), ("2", "PR", square(*offset(*KOLWEZI, 3000), 800))], holder="GECAMINES")

    dry = run(engine, settings, older, tmp_path, name="older.geojson", replace=True, dry_run=True)
    assert actions(dry) == {"unchanged": ["1"], "updated": ["2"], "retired": ["3", "4"]}
    assert (dry["retired"], dry["dry_run"]) == (2, True)
    with Session(engine) as s:
        assert {a.code for a in s.exec(select(LegalArea).where(LegalArea.status == "active"))} == {"1", "2", "3", "4"}

    run(engine, settings, older, tmp_path, name="older.geojson", replace=True)
    with Session(engine) as s:
        states = {a.code: (a.status, a.retired_at is not None) for a in s.exec(select(LegalArea))}
    assert states == {"1": ("active", False), "2": ("active", False), "3": ("retired", True), "4": ("retired", True)}
    layer = client.get("/api/v1/map/legal/pe?zoom=8", headers=world.monitor.bearer).json()
    assert [f["properties"]["code"] for f in layer["features"]] == ["1"]  # retired titles leave the map
    back = run(engine, settings, newer, tmp_path, replace=True)
    assert actions(back)["updated"] == ["2", "3", "4"] and back["items"][2]["changed"] == ["status"]


def test_a_retired_site_leaves_tablets_and_stats_but_keeps_its_visits(engine, settings, world, forms, tmp_path, client):
    run(engine, settings, register([("A", SITE), ("B", square(*offset(*KOLWEZI, 5000), 60))]), tmp_path)
    submit(engine, settings, "monitor", visit_answers(1, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])

    assert client.post("/api/v1/sites/A/retire", headers=world.monitor.bearer).status_code == 403
    r = client.post("/api/v1/sites/A/retire", headers=world.coordinator.bearer)
    assert r.status_code == 200 and r.json() == {"code": "A", "layer": None, "status": "retired", "changed": True}
    with Session(engine) as s:
        assert [row.split(",")[0] for row in media.sites_csv(s).decode().splitlines()[1:]] == ["B"]
        assert read.stats(s, months=1).sites == 1
        assert s.exec(select(AuditLog.action).where(AuditLog.action == "sites.retire")).one() == "sites.retire"
    assert [f["id"] for f in client.get("/api/v1/sites", headers=world.coordinator.bearer).json()["features"]] == ["B"]
    detail = client.get("/api/v1/sites/A", headers=world.coordinator.bearer).json()
    assert detail["properties"]["status"] == "retired" and len(detail["visits"]) == 1  # history stays
    later = submit(engine, settings, "monitor", visit_answers(1, visit_date="2026-10-09"), lon=KOLWEZI[0],
                   lat=KOLWEZI[1])
    assert later.site_id is None  # nothing new maps onto a retired site

    # replacing the sites with a register that no longer holds B retires B too; restoring brings A back
    dry = run(engine, settings, register([("A", SITE)]), tmp_path, name="r2.geojson", replace=True, dry_run=True)
    assert actions(dry) == {"updated": ["A"], "retired": ["B"]}
    r = client.post("/api/v1/sites/A/restore", headers=world.admin.bearer)
    assert r.json()["status"] == "active" and client.get("/api/v1/sites/A", headers=world.coordinator.bearer
                                                         ).json()["properties"]["status"] == "active"
    assert client.post("/api/v1/sites/NOPE/retire", headers=world.admin.bearer).status_code == 404


def test_older_rows_of_a_register_are_kept_as_observations(engine, settings, world, forms, client):
    frame = register([("A", SITE)])
    read_result = importers.clean(frame)
    read_result.observations = pd.DataFrame({  # what the importer returns with history=True
        "code": ["A", "A", "ZZ"], "observed_on": [pd.Timestamp("2019-05-02"), pd.Timestamp("2021-03-01"), None],
        "properties": [{"workers": 40}, {"workers": 120}, {}]})
    with session_scope(engine) as s:
        report = upsert.upsert_sites(s, read=read_result, settings=settings, source="register.csv")
        again = upsert.upsert_sites(s, read=read_result, settings=settings, source="register.csv")
    assert (report["observations"], again["observations"]) == (2, 2)
    with Session(engine) as s:
        assert len(s.exec(select(SiteObservation)).all()) == 2  # a re-import replaces, never doubles
    detail = client.get("/api/v1/sites/A", headers=world.coordinator.bearer).json()
    assert [(o["observed_on"], o["properties"]) for o in detail["observations"]] == [
        ("2021-03-01", {"workers": 120}), ("2019-05-02", {"workers": 40})]
    assert json.dumps(detail)  # plain JSON


def test_the_title_type_is_read_from_the_kind_column_whatever_the_mapping():
    assert upsert.with_title_type(None, "auto") == {"title_type": "type"}
    assert upsert.with_title_type("code=no,kind=categorie", "legal-areas")["title_type"] == "categorie"
    assert upsert.with_title_type("cami", "auto")["title_type"] == "type"
    assert upsert.with_title_type("ipis", "auto") == "ipis" and upsert.with_title_type(None, "sites") is None
    assert [upsert.legal_kind("other", t) for t in ("AECP", "ZIN", "PEPM", "Aire protégée", "PR 99", "river bed")] == [
        "quarry", "zin", "pe", "protected", "pr", None]
