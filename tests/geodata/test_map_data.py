"""The map's data: lean layers for 10,000 sites, filters shared with the statistics."""

from __future__ import annotations

import json
import random
import time
from datetime import date, timedelta

import pytest
import shapely

from app.db import session_scope
from app.timeutil import utcnow
from geodata import map_data, queries, read
from geodata.map_data import MapFilters
from geodata.models import LegalArea
from tests.app.factories import PASSWORD, login
from tests.browser import Web
from tests.e2e.server import live_server, settings_env
from tests.geodata.conftest import KOLWEZI, offset, square

PROVINCES = [("Lualaba", "CD-LU", (25.5, -10.7)), ("Haut-Katanga", "CD-HK", (27.4, -11.6)),
             ("Sud-Kivu", "CD-SK", (28.8, -2.5))]
MINERALS = [["cobalt"], ["copper", "cobalt"], ["gold"], ["cassiterite", "coltan"]]


def site_rows(n: int, *, seed: int = 11) -> list[dict]:
    """``n`` mine sites around three provinces: 12-vertex polygons of about 300 m, stages 0-6,
    some red flags, visits in the last year (Core rows for ``queries.insert_sites``)."""
    rng = random.Random(seed)
    today = utcnow().date()
    rows = []
    for i in range(n):
        province, iso, (lon0, lat0) = PROVINCES[i % len(PROVINCES)]
        lon, lat = lon0 + rng.uniform(-1.5, 1.5), lat0 + rng.uniform(-1.5, 1.5)
        geom = shapely.Point(lon, lat).buffer(rng.uniform(0.002, 0.004), quad_segs=3)  # 12 sides, ~300 m
        minx, miny, maxx, maxy = geom.bounds
        stage = rng.choice([0, 0, 1, 1, 2, 2, 3, 4, 5, 6])
        rows.append({
            "code": f"SITE-{i:05d}", "name": f"Site {i} de {province}", "kind": "asm_site", "province": province,
            "province_iso": iso, "minerals": MINERALS[i % len(MINERALS)], "geometry": shapely.to_geojson(geom),
            "min_lon": minx, "min_lat": miny, "max_lon": maxx, "max_lat": maxy, "lon": lon, "lat": lat,
            "properties": {}, "zea_codes": [], "permit_codes": [], "stage": stage, "last_known_stage": stage,
            "stage_status": "assessed" if stage else "unassessed", "red_flag": rng.random() < 0.1,
            "visit_count": 1 if stage else 0, "last_visit_on": today - timedelta(days=rng.randint(1, 300)) if stage else None,
            "created_at": utcnow(), "updated_at": utcnow(),
        })
    return rows


def insert(engine, rows: list[dict]) -> None:
    with session_scope(engine) as s:
        queries.insert_sites(s, rows)
        queries.bump_counter(s, queries.SITES_VERSION)


def gzipped_size(client, path: str) -> int:
    """Bytes on the wire of a GET with ``Accept-Encoding: gzip`` (what a browser downloads)."""
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200, path
        return sum(len(chunk) for chunk in response.iter_raw())


def test_first_view_of_10000_sites_transfers_under_1_5_mb(client, engine, world, capsys):
    start = time.perf_counter()
    insert(engine, site_rows(10_000))
    built = time.perf_counter() - start
    login(client, "coord", PASSWORD)
    page = client.get("/map")
    assert page.status_code == 200
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:] + page.text.split('href="')[1:]
              if part.startswith("/static/")]
    data = ["/api/v1/map/provinces.geojson", "/api/v1/map/sites?zoom=5", "/api/v1/sites/stats?months=1",
            "/api/v1/map/visits"]
    sizes = {path: gzipped_size(client, path) for path in ["/map", *data, *assets]}
    start = time.perf_counter()
    sites = client.get("/api/v1/map/sites?zoom=5").json()
    answered = time.perf_counter() - start
    assert sites["mode"] == "points" and len(sites["sites"]) == 10_000
    total = sum(sizes.values())
    with capsys.disabled():
        print(f"\n10,000 sites inserted in {built:.1f}s; points answered in {answered:.2f}s; "
              f"first view gzipped: {total / 1e6:.2f} MB")
        for path, size in sizes.items():
            print(f"  {size / 1000:8.1f} kB  {path}")
    assert sum(sizes[p] for p in ["/api/v1/map/provinces.geojson", "/api/v1/map/sites?zoom=5"]) < 1_500_000
    assert total < 1_500_000


def test_high_zoom_sends_clipped_simplified_polygons_of_the_view(client, engine, world):
    insert(engine, site_rows(3_000))
    login(client, "coord", PASSWORD)
    lon, lat = 25.5, -10.7
    bbox = f"{lon - 0.05},{lat - 0.05},{lon + 0.05},{lat + 0.05}"
    body = client.get(f"/api/v1/map/sites?zoom=13&bbox={bbox}").json()
    assert body["mode"] == "polygons"
    assert 0 < len(body["features"]) < 100
    for feature in body["features"]:
        assert set(feature["properties"]) == {"code", "name", "stage", "flag"}
        minx, miny, maxx, maxy = shapely.geometry.shape(feature["geometry"]).bounds
        assert minx >= lon - 0.08 and maxx <= lon + 0.08 and miny >= lat - 0.08 and maxy <= lat + 0.08
    # low zoom ignores the view and sends every matching site as a point
    assert client.get(f"/api/v1/map/sites?zoom=8&bbox={bbox}").json()["mode"] == "points"


def test_simplification_drops_vertices_at_lower_zoom(session):
    rows = site_rows(1)
    rows[0]["geometry"] = shapely.to_geojson(shapely.Point(KOLWEZI).buffer(0.01, quad_segs=64))
    queries.insert_sites(session, rows)
    bbox = (KOLWEZI[0] - 1, KOLWEZI[1] - 1, KOLWEZI[0] + 1, KOLWEZI[1] + 1)

    def vertices(zoom: int) -> int:
        features = json.loads(map_data.site_layer(session, MapFilters(), zoom=zoom, bbox=bbox))["features"]
        return len(features[0]["geometry"]["coordinates"][0])

    assert vertices(12) < vertices(16) <= 257


@pytest.mark.parametrize("filters", [
    MapFilters(), MapFilters(province="Lualaba"), MapFilters(province="CD-HK", stage=2), MapFilters(mineral="cobalt"),
    MapFilters(mineral="gold", flag=True), MapFilters(date_from=date.today() - timedelta(days=100)),
    MapFilters(stage=0, date_to=date.today() - timedelta(days=30)),
])
def test_the_points_shown_are_the_sites_counted_by_the_statistics(session, filters):
    queries.insert_sites(session, site_rows(400))
    points = json.loads(map_data.site_layer(session, filters, zoom=5))["sites"]
    stats = read.stats(session, months=1, site_ids=map_data.matching_site_ids(session, filters))
    assert stats.sites == len(points)
    for stage in range(7):
        assert stats.by_stage[str(stage)] == sum(1 for p in points if p[2] == stage)


def test_a_stale_stage_counts_as_unassessed_on_the_map_and_in_the_statistics(session):
    rows = site_rows(1)
    rows[0].update(stage=4, stage_status="assessed", last_visit_on=utcnow().date() - timedelta(days=3 * 365))
    queries.insert_sites(session, rows)
    assert json.loads(map_data.site_layer(session, MapFilters(stage=0), zoom=5))["sites"][0][2] == 0
    assert map_data.matching_site_ids(session, MapFilters(stage=4)) == set()


def test_legal_layers_hold_only_their_kind(session):
    rows = site_rows(1)
    queries.insert_sites(session, rows)
    zea = square(*offset(*KOLWEZI, 3000), 2000)
    x0, y0, x1, y1 = zea.bounds
    queries.insert_rows(session, LegalArea, [dict(layer="cadastre", code="ZEA-1", kind="zea", title_type="ZEA",
                                                  name="Kasulo", geometry=shapely.to_geojson(zea), min_lon=x0,
                                                  min_lat=y0, max_lon=x1, max_lat=y1, properties={},
                                                  status="active", created_at=utcnow(), updated_at=utcnow())])
    body = json.loads(map_data.legal_layer(session, kinds=map_data.LEGAL_LAYERS["zea"], zoom=8))
    assert [f["properties"] for f in body["features"]] == [{"layer": "cadastre", "code": "ZEA-1", "name": "Kasulo",
                                                            "kind": "zea", "title_type": "ZEA", "holder": None}]
    assert json.loads(map_data.legal_layer(session, kinds=map_data.LEGAL_LAYERS["pe"], zoom=8))["features"] == []
    assert [s[0] for s in json.loads(map_data.site_layer(session, MapFilters(), zoom=5))["sites"]] == ["SITE-00000"]


def test_provinces_are_the_26_bundled_ones_simplified():
    body = map_data.provinces_geojson()
    features = json.loads(body)["features"]
    assert len(features) == 26 and len(body) < 150_000
    assert ("CD-LU", "Lualaba") in map_data.province_names() and ("CD-NK", "Nord-Kivu") in map_data.province_names()


@pytest.mark.browser
def test_10000_sites_draw_and_pan_smoothly_in_chromium(settings, world, engine, chromium, request, capsys):
    insert(engine, site_rows(10_000))
    with live_server(settings_env(settings)) as server:
        web = Web(server=server, browser=chromium, test_name=request.node.name)
        try:
            page = web.sign_in("coord", lang="en", password=PASSWORD)
            start = time.perf_counter()
            page.goto(web.url("/map"))
            page.wait_for_function("() => document.getElementById('map').dataset.siteCount === '10000'")
            shown = time.perf_counter() - start
            # a pan redraws the 10,000 points from memory (no new request below zoom 12)
            pan = page.evaluate("""() => new Promise((done) => {
                const map = document.getElementById('map').asmfieldMap;
                const t0 = performance.now();
                map.once('moveend', () => requestAnimationFrame(() => done(performance.now() - t0)));
                map.panBy([200, 100], {animate: false});
            })""")
            with capsys.disabled():
                print(f"\n10,000 sites: map drawn {shown:.1f}s after navigation; a pan redraws in {pan:.0f} ms")
            assert shown < 15 and pan < 1000
            web.check(page, "map-10000", axe=False)
        finally:
            web.close()
