"""Issue 14 item 6: a site's province is the one its area overlaps most (real geoBoundaries polygons),
the same from a Shapefile and from GeoJSON, and ``?province=`` ignores accents, case and takes ISO codes."""

import zipfile

import numpy as np
import pytest
import shapely
from sqlmodel import Session, select

from geodata import importers
from geodata.models import LegalArea
from tests.geodata.conftest import import_frame, sites_frame

#: On the Lualaba (west) / Haut-Katanga (east) border, which runs about north-south here.
BORDER_LON, BORDER_LAT = 26.5996, -10.7


def l_shape():
    """A long thin bar in Lualaba (0.00032 deg²) joined to a tall block in Haut-Katanga (0.0002 deg²):
    the point on its surface lies in Haut-Katanga, most of its area in Lualaba."""
    bar = shapely.box(BORDER_LON - 0.08, BORDER_LAT + 0.006, BORDER_LON + 0.002, BORDER_LAT + 0.01)
    block = shapely.box(BORDER_LON + 0.002, BORDER_LAT - 0.01, BORDER_LON + 0.012, BORDER_LAT + 0.01)
    return shapely.union(bar, block)


def test_the_province_is_the_one_of_largest_overlap_not_of_a_point():
    shape = l_shape()
    point = shapely.point_on_surface(shape)
    assert importers.provinces_of([point.x], [point.y])[0] == ["Haut-Katanga"]  # what a point would say
    west = shapely.box(BORDER_LON - 0.03, BORDER_LAT - 0.01, BORDER_LON + 0.01, BORDER_LAT + 0.01)
    east = shapely.box(BORDER_LON - 0.01, BORDER_LAT - 0.01, BORDER_LON + 0.03, BORDER_LAT + 0.01)
    outside = shapely.Point(0, 0).buffer(0.01)
    names, isos = importers.provinces_of_geometries(np.array([shape, shapely.reverse(shape), west, east, outside]))
    assert names == ["Lualaba", "Lualaba", "Lualaba", "Haut-Katanga", None]
    assert isos == ["CD-LU", "CD-LU", "CD-LU", "CD-HK", None]


def test_shapefile_and_geojson_of_the_same_title_give_the_same_province(engine, settings, world, tmp_path):
    frame = sites_frame([("PE-1", l_shape(), "pe")])
    frame.to_file(tmp_path / "titles.geojson", driver="GeoJSON")
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / "titles.shp")
    with zipfile.ZipFile(tmp_path / "titles.zip", "w") as zf:
        for part in shp_dir.iterdir():
            zf.write(part, part.name)
    from_geojson = importers.read_sites(tmp_path / "titles.geojson")
    from_shapefile = importers.read_sites(tmp_path / "titles.zip")
    assert from_shapefile.format == "shapefile"
    for read in (from_geojson, from_shapefile):
        names, _ = importers.provinces_of_geometries(np.asarray(read.frame.geometry.values, dtype=object))
        assert names == ["Lualaba"]
    import_frame(engine, settings, from_shapefile.frame)
    with Session(engine) as s:
        title = s.exec(select(LegalArea).where(LegalArea.code == "PE-1")).one()
    assert (title.province, title.province_iso) == ("Lualaba", "CD-LU")


@pytest.fixture
def accented(engine, settings, world):
    """One site in each of Kasaï-Central, Équateur and Lualaba (inside the real province polygons)."""
    provinces, names, _, _ = importers._provinces()  # noqa: SLF001
    rows = []
    for code, province in (("KC", "Kasaï-Central"), ("EQ", "Équateur"), ("LU", "Lualaba")):
        inside = shapely.point_on_surface(provinces[names.index(province)])
        rows.append((code, inside.buffer(0.001)))
    import_frame(engine, settings, sites_frame(rows))
    return world


@pytest.mark.parametrize("value,codes", [
    ("Kasai-Central", ["KC"]), ("kasai central", ["KC"]), ("KASAÏ-CENTRAL", ["KC"]), ("Kasaï-Central", ["KC"]),
    ("CD-KC", ["KC"]), ("cd-kc", ["KC"]),
    ("Equateur", ["EQ"]), ("equateur", ["EQ"]), ("Équateur", ["EQ"]), ("CD-EQ", ["EQ"]),
    ("Nowhere", []),
])
def test_province_filter_ignores_accents_and_case_and_takes_iso_codes(client, accented, value, codes):
    listed = client.get("/api/v1/sites", params={"province": value}, headers=accented.coordinator.bearer).json()
    assert [f["id"] for f in listed["features"]] == codes
    stats = client.get("/api/v1/sites/stats", params={"province": value}, headers=accented.coordinator.bearer).json()
    assert stats["sites"] == len(codes)


def test_canonical_province_names():
    assert importers.canonical_province("equateur") == "Équateur"
    assert importers.canonical_province(" Kasai-Central ") == "Kasaï-Central"
    assert importers.canonical_province("Central Kasai") == "Kasaï-Central"  # geoBoundaries' English name
    assert importers.canonical_province("cd-lu") == "Lualaba"
    assert importers.canonical_province("Atlantis") == "Atlantis"
