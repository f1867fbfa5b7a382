"""GeoJSON and GeoPackage exports, opened with geopandas/pyogrio as a QGIS or Python user would, and
compared with the stored submissions (points, a geoshape, the mapped site and its stage)."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlmodel import select

from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from app.timeutil import utcnow
from geodata.models import Site
from geodata.stages import effective_stage
from reports.errors import ExportBadParam
from reports.exports.geo import write_geojson, write_gpkg
from reports.exports.rows import export_plan
from reports.exports.spec import parse_spec

#: A visit with a point and the perimeter walked (geoshape), and a track (geotrace).
GEO_MD = """
| survey |
| | type | name | label |
| | integer | workers | Workers |
| | geopoint | entrance | Entrance |
| | geoshape | perimeter | Perimeter |
| | geotrace | track | Track |
| settings |
| | form_id | version | name |
| | geo_visit | 1 | geo_visit |
"""
SHAPE = "-10.701 25.401 0 0;-10.701 25.409 0 0;-10.709 25.409 0 0;-10.709 25.401 0 0;-10.701 25.401 0 0"


def _export(engine, actor, writer, **params) -> bytes:
    with session_scope(engine) as session:
        plan = export_plan(session, Actor(user=actor.user), build_hooks(), parse_spec(params), audited=False)
        out = io.BytesIO()
        writer(session, plan, out)
    return out.getvalue()


def test_geojson_has_a_point_feature_per_visit_with_the_site_and_the_answers(kit, visits, tmp_path) -> None:
    raw = _export(kit.engine, kit.world.coordinator, write_geojson, form="export_visit", format="geojson")
    path = tmp_path / "visits.geojson"
    path.write_bytes(raw)
    frame = gpd.read_file(path).set_index("_uuid")
    assert set(frame.index) == {visits["edited"], visits["second"], visits["third"], visits["outside"]}
    assert frame.crs.to_epsg() == 4326
    point = frame.loc[visits["edited"]].geometry
    assert (point.x, point.y) == (25.405, -10.705)
    assert frame.loc[visits["edited"], "counts-workers"] == 13
    assert frame.loc[visits["edited"], "_site_code"] == "KZ-1"
    assert frame.loc[visits["edited"], "_site_name"] == "Kasulo 1"
    assert pd.isna(frame.loc[visits["outside"], "_site_code"])
    with session_scope(kit.engine) as session:
        site = session.exec(select(Site).where(Site.code == "KZ-1")).one()
        stage = effective_stage(site.stage, site.stage_status, site.last_visit_on, utcnow().date())[0]
    assert frame.loc[visits["edited"], "_site_stage"] == stage
    assert frame.loc[visits["third"], "remark"] == "Été sec, accès difficile"
    assert json.loads(raw)["features"][0]["geometry"]["type"] == "Point"


def test_geopackage_has_a_layer_per_geo_question_or_only_the_one_asked(kit, tmp_path) -> None:
    version = kit.publish(GEO_MD)
    with_shape = kit.submit(kit.world.monitor, version, {
        "/geo_visit/workers": 3, "/geo_visit/entrance": "-10.705 25.405 900 4", "/geo_visit/perimeter": SHAPE,
        "/geo_visit/track": "-10.7 25.4 0 0;-10.71 25.41 0 0"})
    without = kit.submit(kit.world.monitor, version, {"/geo_visit/workers": 0})

    path = tmp_path / "visits.gpkg"
    path.write_bytes(_export(kit.engine, kit.world.coordinator, write_gpkg, form="geo_visit", format="gpkg"))
    assert [list(layer) for layer in pyogrio.list_layers(path)] == [
        ["entrance", "Point"], ["perimeter", "Polygon"], ["track", "LineString"]]
    assert list(gpd.read_file(path, layer="perimeter")["_uuid"]) == [with_shape]  # the visits that walked it
    assert list(gpd.read_file(path, layer="track")["_uuid"]) == [with_shape]
    points = gpd.read_file(path, layer="entrance").set_index("_uuid")
    assert points.geom_type.loc[with_shape] == "Point"
    assert points.loc[without].geometry is None or points.loc[without].geometry.is_empty
    assert points.loc[with_shape, "workers"] == 3
    assert str(points["workers"].dtype).startswith("int")
    assert points.loc[with_shape, "entrance-accuracy"] == 4.0

    path = tmp_path / "perimeter.gpkg"
    path.write_bytes(_export(kit.engine, kit.world.coordinator, write_gpkg, form="geo_visit", format="gpkg",
                             geometry_field="perimeter"))
    shapes = gpd.read_file(path).set_index("_uuid")
    assert [list(layer) for layer in pyogrio.list_layers(path)] == [["perimeter", "Polygon"]]
    assert shapes.loc[with_shape].geometry.equals(shapely.box(25.401, -10.709, 25.409, -10.701))
    assert "perimeter" not in shapes.columns  # drawn, not repeated as text

    lines = json.loads(_export(kit.engine, kit.world.coordinator, write_geojson, form="geo_visit",
                               format="geojson", geometry_field="/geo_visit/track"))
    by_id = {f["properties"]["_uuid"]: f["geometry"] for f in lines["features"]}
    assert by_id[with_shape] == {"type": "LineString", "coordinates": [[25.4, -10.7], [25.41, -10.71]]}
    assert by_id[without] is None


def test_a_geo_export_names_the_geo_field_it_cannot_draw(kit, visits) -> None:
    with pytest.raises(ExportBadParam) as refused:
        _export(kit.engine, kit.world.coordinator, write_geojson, form="export_visit", format="geojson",
                geometry_field="workers")
    assert refused.value.details == {"field": "geometry_field"}
    assert "location" in refused.value.message
