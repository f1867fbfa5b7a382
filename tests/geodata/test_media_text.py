"""The published site list (``sites.geojson``, ``sites.csv``) is written as text around the stored geometries
(issue 14: it was ≈17 s of a 20,000-site import's profile): the same file as when every geometry was parsed
with shapely and written back with ``json``."""

from __future__ import annotations

import json

import shapely
from sqlmodel import select

from app.db import session_scope
from geodata import media, queries
from geodata.models import Site
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square

#: GEOS writes its first corner as 25.951294999999998 (json writes the same number as 25.951295)
GEOS_WRITES_LONG = shapely.Polygon([(25.951295, -10.467642), (25.96, -10.467642), (25.96, -10.46)])


def parsed_and_written(sites: list[Site]) -> bytes:
    """The site list as it was written before: each geometry parsed, a multi-polygon's largest part kept."""
    features = []
    for s in sites:
        geom = shapely.from_geojson(s.geometry)
        if geom.geom_type == "MultiPolygon":
            geom = max(geom.geoms, key=lambda g: g.area)
        features.append({"type": "Feature", "id": s.code, "geometry": json.loads(shapely.to_geojson(geom)),
                         "properties": {"id": s.code, "title": s.name, "province": s.province or "", "kind": s.kind}})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def test_the_site_list_is_the_same_file_without_parsing_each_geometry(engine, settings, world):
    small, large = square(*offset(*KOLWEZI, 9000), 80), square(*offset(*KOLWEZI, 12_000), 400)
    frame = sites_frame([("MULTI", small), ("MULTI", large), ("B-é", square(*offset(*KOLWEZI, 3000), 120)),
                         ("GONE", square(*offset(*KOLWEZI, 20_000), 50)), ("A", GEOS_WRITES_LONG)])
    frame.loc[frame["code"] == "B-é", "name"] = 'Kasulo "Nord" – puits d’Évariste'
    import_frame(engine, settings, frame)
    import_frame(engine, settings, frame[frame["code"] != "GONE"], replace=True)  # GONE is retired: not listed

    with session_scope(engine) as s:
        published = media.sites_geojson(s)
        expected = parsed_and_written(queries.mappable_sites(s))
        stored_multi = s.exec(select(Site.geometry).where(Site.code == "MULTI")).one()
        assert "25.951294999999998" in s.exec(select(Site.geometry).where(Site.code == "A")).one()

    assert json.loads(published) == json.loads(expected)
    assert published == expected  # byte for byte: tablets do not download an unchanged list again
    features = {f["id"]: f for f in json.loads(published)["features"]}
    assert sorted(features) == ["A", "B-é", "MULTI"]
    assert '"MultiPolygon"' in stored_multi and features["MULTI"]["geometry"]["type"] == "Polygon"
    parts = shapely.from_geojson(stored_multi).geoms
    assert shapely.from_geojson(json.dumps(features["MULTI"]["geometry"])).area == max(p.area for p in parts)
    assert features["B-é"]["properties"]["title"] == 'Kasulo "Nord" – puits d’Évariste'
