"""Issue 14, item 9: KML styling fields are not site properties; a --crs is always checked, and one
that differs from the file's own CRS is applied as an override, with a warning. Pure: no database."""

import geopandas as gpd
import pytest
import shapely

from app.errors import Invalid
from geodata import importers

KOLWEZI = shapely.box(25.46, -10.73, 25.48, -10.71)

PLACEMARK = """<Placemark><name>{code}</name><description>Kamilombe</description>{time}
<ExtendedData><Data name="mineral"><value>gold</value></Data></ExtendedData>
<Polygon><tessellate>1</tessellate><extrude>0</extrude><altitudeMode>clampToGround</altitudeMode>
<outerBoundaryIs><LinearRing><coordinates>25.46,-10.73 25.48,-10.73 25.48,-10.71 25.46,-10.71 25.46,-10.73
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"""


def kml(*placemarks: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            + "".join(placemarks) + "</Document></kml>")


def test_kml_placemarks_keep_their_data_but_not_how_google_earth_draws_them(tmp_path):
    path = tmp_path / "sites.kml"
    path.write_text(kml(PLACEMARK.format(code="S-1", time=""), PLACEMARK.format(code="S-2", time="")))
    read = importers.read_sites(path)
    assert list(read.frame["code"]) == ["S-1", "S-2"]  # the placemark's name (no XML ids in the file)
    assert read.frame["minerals"].iloc[0] == ["gold"]
    assert read.frame["properties"].iloc[0] == {"description": "Kamilombe"}

    dated = tmp_path / "dated.kml"
    dated.write_text(kml(PLACEMARK.format(code="S-1", time="<TimeStamp><when>2024-05-03</when></TimeStamp>"),
                         PLACEMARK.format(code="S-2", time="")))
    props = importers.read_sites(dated).frame["properties"]
    assert props.iloc[0] == {"description": "Kamilombe", "timestamp": "2024-05-03"}
    assert props.iloc[1] == {"description": "Kamilombe"}


@pytest.mark.parametrize("suffix", ["geojson", "gpkg"])
def test_an_invalid_crs_is_refused_even_when_the_file_has_one(tmp_path, suffix):
    path = tmp_path / f"sites.{suffix}"
    gpd.GeoDataFrame({"code": ["S-1"]}, geometry=[KOLWEZI], crs=4326).to_file(path)
    with pytest.raises(Invalid) as exc:
        importers.read_sites(path, crs="EPSG:99999999")
    assert exc.value.code == "sites.bad_crs" and "EPSG:99999999" in exc.value.message
    same = importers.read_sites(path, crs=" epsg:4326 ")  # the file's own CRS, however written: no remark
    assert same.warnings == [] and same.frame.geometry.iloc[0].equals(KOLWEZI)


def test_a_crs_other_than_the_files_overrides_it_with_a_warning(tmp_path):
    """A GeoJSON written in UTM without saying so: GDAL reads it as WGS 84, --crs says what it is."""
    utm = gpd.GeoDataFrame({"code": ["S-1"]}, geometry=[KOLWEZI], crs=4326).to_crs(32735)
    path = tmp_path / "utm.geojson"
    path.write_text(utm.set_crs(4326, allow_override=True).to_json())  # UTM numbers, labelled WGS 84
    assert importers.read_sites(path).problems[0]["problem"].startswith("coordinates are not longitude/latitude")

    read = importers.read_sites(path, crs="EPSG:32735")
    assert read.frame.geometry.iloc[0].symmetric_difference(KOLWEZI).area < KOLWEZI.area * 0.01
    assert read.warnings == [{"row": 0, "code": None, "warning": "the given CRS EPSG:32735 replaces the file's own "
                              "(EPSG:4326): its coordinates are read as EPSG:32735"}]
