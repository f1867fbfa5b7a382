"""Reading site files of every format, generated here with geopandas/shapely (pure, no database)."""

import os
import zipfile

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from app.errors import Invalid
from geodata import importers

KOLWEZI = shapely.box(25.46, -10.73, 25.48, -10.71)
LIKASI = shapely.box(26.72, -10.99, 26.74, -10.97)


def frame(**extra):
    data = {"code": ["S-1", "S-2"], "name": ["Kamilombe", "Kambove"], **extra}
    return gpd.GeoDataFrame(data, geometry=[KOLWEZI, LIKASI], crs=4326)


def zip_shapefile(tmp_path, gdf, *, drop=()):
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    gdf.to_file(shp_dir / "sites.shp")
    path = tmp_path / "sites.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in shp_dir.iterdir():
            if f.suffix not in drop:
                zf.write(f, f.name)
    return path


@pytest.mark.parametrize("suffix,driver", [("geojson", "GeoJSON"), ("gpkg", "GPKG"), ("kml", "KML")])
def test_reads_each_ogr_format(tmp_path, suffix, driver):
    path = tmp_path / f"sites.{suffix}"
    gdf = frame()
    if driver == "KML":
        gdf = gdf.rename(columns={"code": "Name", "name": "Description"})
    gdf.to_file(path, driver=driver)
    mapping = "code=Name,name=Description" if driver == "KML" else None
    result = importers.read_sites(path, mapping=mapping)
    assert result.format == suffix
    assert list(result.frame["code"]) == ["S-1", "S-2"]
    assert list(result.frame["name"]) == ["Kamilombe", "Kambove"]
    assert result.frame.geometry.iloc[0].equals_exact(KOLWEZI.normalize(), 1e-6) or \
        result.frame.geometry.iloc[0].symmetric_difference(KOLWEZI).area < 1e-10


def test_reads_a_zipped_shapefile(tmp_path):
    result = importers.read_sites(zip_shapefile(tmp_path, frame()))
    assert result.format == "shapefile" and list(result.frame["code"]) == ["S-1", "S-2"]


def test_reads_csv_with_wkt_and_with_lon_lat(tmp_path):
    wkt = tmp_path / "wkt.csv"
    pd.DataFrame({"code": ["S-1"], "name": ["A"], "wkt": [KOLWEZI.wkt]}).to_csv(wkt, index=False)
    assert importers.read_sites(wkt).frame.geometry.iloc[0].area == pytest.approx(KOLWEZI.area)
    lonlat = tmp_path / "points.csv"
    pd.DataFrame({"pcode": ["codmine01"], "name": ["B"], "longitude": [25.47], "latitude": [-10.72],
                  "radius_m": [200]}).to_csv(lonlat, index=False)
    result = importers.read_sites(lonlat, mapping="ipis")
    site = result.frame.iloc[0]
    assert site["code"] == "codmine01" and site.geometry.geom_type == "Polygon"
    assert site.geometry.contains(shapely.Point(25.47, -10.72))


def test_reprojects_a_utm_file_to_wgs84(tmp_path):
    path = tmp_path / "utm.gpkg"
    frame().to_crs(32735).to_file(path, driver="GPKG")
    result = importers.read_sites(path)
    assert result.frame.crs.to_epsg() == 4326
    assert result.frame.geometry.iloc[0].symmetric_difference(KOLWEZI).area < KOLWEZI.area * 0.01


def test_cami_preset_maps_types_to_kinds(tmp_path):
    path = tmp_path / "titres.geojson"
    gpd.GeoDataFrame({"name": ["ZEA-360", "1234", "PR 99"], "type": ["ZEA", "PE", "PR (AS)"],
                      "parties": ["", "GECAMINES (100%)", "X"]},
                     geometry=[KOLWEZI, LIKASI, shapely.box(27, -11.7, 27.1, -11.6)], crs=4326).to_file(path)
    result = importers.read_sites(path, mapping="cami")
    assert list(result.frame["kind"]) == ["zea", "pe", "pr"]
    assert result.frame.iloc[1]["properties"]["holder"] == "GECAMINES (100%)"


def test_invalid_polygons_are_repaired_and_empty_ones_reported(tmp_path):
    bowtie = shapely.Polygon([(25.46, -10.73), (25.48, -10.71), (25.48, -10.73), (25.46, -10.71), (25.46, -10.73)])
    assert not bowtie.is_valid
    path = tmp_path / "bad.geojson"
    gpd.GeoDataFrame({"code": ["BOW", "EMPTY", "OK"]}, geometry=[bowtie, shapely.Polygon(), LIKASI],
                     crs=4326).to_file(path)
    result = importers.read_sites(path)
    assert list(result.frame["code"]) == ["BOW", "OK"]
    assert result.frame.geometry.iloc[0].is_valid and result.frame.geometry.iloc[0].area > 0
    assert [p["code"] for p in result.problems] == ["EMPTY"]
    assert "repaired" in result.warnings[0]["warning"]


def test_duplicate_codes_keep_the_first_and_report_the_rest(tmp_path):
    path = tmp_path / "dup.geojson"
    gpd.GeoDataFrame({"code": ["A", "A", "B", "P", "P"]},
                     geometry=[KOLWEZI, KOLWEZI, LIKASI, LIKASI.centroid, KOLWEZI.centroid], crs=4326).to_file(path)
    result = importers.read_sites(path)
    assert list(result.frame["code"]) == ["A", "B", "P"]
    assert result.problems == [{"row": 2, "code": "A", "problem": "duplicate code (first on row 1)"},
                               {"row": 5, "code": "P", "problem": "duplicate code (first on row 4)"}]
    assert result.merged == 0


def test_another_polygon_under_the_same_code_is_merged_into_a_multi_polygon(tmp_path):
    """Issue 14, item 4: multi-part features split across rows (the second part 11× larger)."""
    path = tmp_path / "parts.geojson"
    big = shapely.box(26.72, -10.99, 26.72 + 0.02 * 11 ** 0.5, -10.99 + 0.02 * 11 ** 0.5)
    gpd.GeoDataFrame({"code": ["A", "B", "A", "A"]}, geometry=[KOLWEZI, LIKASI.buffer(-0.005), big, KOLWEZI],
                     crs=4326).to_file(path)
    result = importers.read_sites(path)
    assert list(result.frame["code"]) == ["A", "B"] and result.merged == 1
    merged = result.frame.geometry.iloc[0]
    assert merged.geom_type == "MultiPolygon" and merged.equals(shapely.union_all([KOLWEZI, big]))
    assert result.problems == [{"row": 4, "code": "A", "problem": "duplicate code (first on row 1)"}]
    assert result.warnings == [{"row": 3, "code": "A",
                                "warning": "another part of the site on row 1: merged into one multi-polygon"}]


def test_swapped_lon_lat_gets_a_warning(tmp_path):
    path = tmp_path / "swapped.csv"
    pd.DataFrame({"code": ["S"], "lon": [-10.72], "lat": [25.47]}).to_csv(path, index=False)
    result = importers.read_sites(path)
    assert "swapped" in result.warnings[0]["warning"]


def test_a_file_that_is_not_geodata_is_refused(tmp_path):
    path = tmp_path / "notes.docx"
    path.write_bytes(b"\x00\x01hello, not geodata" * 10)
    with pytest.raises(Invalid) as exc:
        importers.read_sites(path)
    assert exc.value.code == "sites.not_geodata"


def test_ten_megabytes_of_garbage_named_geojson_is_refused(tmp_path):
    path = tmp_path / "garbage.geojson"
    path.write_bytes(b"{" + os.urandom(10 * 1024 * 1024))
    with pytest.raises(Invalid) as exc:
        importers.read_sites(path)
    assert exc.value.code == "sites.unreadable"


def test_a_zip_without_a_shapefile_is_refused(tmp_path):
    path = tmp_path / "nothing.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "no shapes here")
    with pytest.raises(Invalid, match="no .shp"):
        importers.read_sites(path)


def test_a_shapefile_without_crs_is_refused_unless_one_is_given(tmp_path):
    path = zip_shapefile(tmp_path, frame().to_crs(32735), drop=(".prj",))
    with pytest.raises(Invalid) as exc:
        importers.read_sites(path)
    assert exc.value.code == "sites.missing_crs"
    result = importers.read_sites(path, crs="EPSG:32735")
    assert result.frame.geometry.iloc[0].symmetric_difference(KOLWEZI).area < KOLWEZI.area * 0.01


def test_a_csv_without_geometry_columns_is_refused(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("code,name\nA,B\n")
    with pytest.raises(Invalid, match="WKT column"):
        importers.read_sites(path)


def test_provinces_come_from_the_bundled_layer():
    names, isos = importers.provinces_of([25.473, 27.479, 29.22], [-10.716, -11.661, -1.68])
    assert isos == ["CD-LU", "CD-HK", "CD-NK"]
    assert names[2] == "Nord-Kivu"


def test_an_unknown_crs_is_refused_with_its_name(tmp_path):
    path = zip_shapefile(tmp_path, frame().to_crs(32735), drop=(".prj",))
    with pytest.raises(Invalid) as exc:
        importers.read_sites(path, crs="EPSG:not-a-crs")
    assert exc.value.code == "sites.bad_crs" and "EPSG:not-a-crs" in exc.value.message


def test_a_file_with_only_lines_has_no_usable_site(tmp_path):
    path = tmp_path / "roads.geojson"
    gpd.GeoDataFrame({"code": ["R1"]}, geometry=[shapely.LineString([(25, -10), (25.1, -10.1)])],
                     crs=4326).to_file(path)
    result = importers.read_sites(path)
    assert len(result.frame) == 0 and "not a site shape" in result.problems[0]["problem"]


def test_properties_keep_numbers_booleans_and_dates_and_drop_empty_cells(tmp_path):
    """Each column is converted once (issue 14, item 8); what a site keeps is what the cells say."""
    path = tmp_path / "typed.gpkg"
    frame(depth=[12, 7], width=[3.5, float("nan")], active=[True, False], remark=["  deep pit ", "  "],
          seen=pd.to_datetime(["2024-05-03 10:00", None]), mixed=pd.Series([1, "x"], dtype=object)) \
        .to_file(path, driver="GPKG")
    props = list(importers.read_sites(path).frame["properties"])
    assert props[0] == {"depth": 12, "width": 3.5, "active": True, "remark": "deep pit", "seen": "2024-05-03",
                        "mixed": "1"}
    assert props[1] == {"depth": 7, "active": False, "mixed": "x"}
    assert type(props[0]["depth"]) is int and type(props[0]["width"]) is float
