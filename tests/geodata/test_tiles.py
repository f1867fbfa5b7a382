"""The offline base map: the MBTiles reader (TMS rows flipped to XYZ) and /tiles/{z}/{x}/{y}.png."""

from __future__ import annotations

import io
import sqlite3

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from geodata import tiles
from tests.app.factories import PASSWORD, login
from tests.browser import Web
from tests.e2e.server import live_server, settings_env


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(out, format="PNG")
    return out.getvalue()


def make_mbtiles(path, *, fmt: str = "png") -> dict[tuple[int, int, int], tuple[int, int, int]]:
    """A two-zoom MBTiles file as QGIS writes it (TMS rows); returns XYZ address -> tile colour."""
    colours = {}
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name text, value text)")
    db.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", fmt), ("minzoom", "0"),
                                                          ("maxzoom", "1"), ("bounds", "12.2,-13.5,31.3,5.4")])
    for z in (0, 1):
        for x in range(2 ** z):
            for y in range(2 ** z):
                colour = (40 * z, 100 + 50 * x, 100 + 50 * y)
                colours[(z, x, y)] = colour
                db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2 ** z - 1 - y, png(colour)))
    db.commit()
    db.close()
    return colours


def colour_of(data: bytes) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((128, 128))


def test_mbtiles_reader_flips_tms_rows_to_xyz(tmp_path):
    colours = make_mbtiles(tmp_path / "base.mbtiles")
    source = tiles.MBTiles(tmp_path / "base.mbtiles")
    assert source.media_type == "image/png" and source.zoom_range == (0, 1)
    assert source.bounds == (12.2, -13.5, 31.3, 5.4)
    for (z, x, y), colour in colours.items():
        assert colour_of(source.tile(z, x, y)) == colour
    assert colour_of(source.tile(1, 0, 0)) == (40, 100, 100)  # XYZ row 0 is the north: TMS row 1
    assert source.tile(2, 0, 0) is None and source.tile(1, 2, 0) is None and source.tile(1, 0, -1) is None
    source.close()


def test_mbtiles_reader_names_jpeg_tiles(tmp_path):
    make_mbtiles(tmp_path / "base.mbtiles", fmt="jpg")
    assert tiles.MBTiles(tmp_path / "base.mbtiles").media_type == "image/jpeg"


def test_mbtiles_reader_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        tiles.MBTiles(tmp_path / "none.mbtiles")


@pytest.fixture
def tiled_client(settings, world, tmp_path):
    make_mbtiles(tmp_path / "base.mbtiles")
    app = create_app(settings.model_copy(update={"mbtiles": tmp_path / "base.mbtiles"}))
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_tiles_are_served_with_their_type_and_caching_headers(tiled_client):
    login(tiled_client, "monitor", PASSWORD)
    response = tiled_client.get("/tiles/1/1/0.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert colour_of(response.content) == (40, 150, 100)
    assert "max-age" in response.headers["cache-control"] and response.headers["etag"]
    assert "content-encoding" not in response.headers  # PNG is compressed already


@pytest.mark.parametrize("path", ["/tiles/2/0/0.png", "/tiles/1/2/0.png", "/tiles/1/0/7.png", "/tiles/40/0/0.png"])
def test_a_tile_outside_the_file_is_404(tiled_client, path):
    login(tiled_client, "coord", PASSWORD)
    assert tiled_client.get(path).status_code == 404


def test_tiles_need_a_signed_in_reader(tiled_client):
    assert tiled_client.get("/tiles/0/0/0.png").status_code == 401
    login(tiled_client, "cw_a", PASSWORD)
    assert tiled_client.get("/tiles/0/0/0.png").status_code == 403


def test_without_an_mbtiles_setting_there_are_no_tiles(client, world):
    login(client, "coord", PASSWORD)
    assert client.get("/tiles/0/0/0.png").status_code == 404


# -- in Chromium: the offline base map of /map ---------------------------------------------------------


def make_drc_mbtiles(path, max_zoom: int = 3) -> None:
    """Every tile of zooms 0..max_zoom, one colour per zoom, as QGIS writes them (TMS rows)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name text, value text)")
    db.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("minzoom", "0"),
                                                          ("maxzoom", str(max_zoom)), ("bounds", "12,-14,32,6")])
    for z in range(max_zoom + 1):
        data = png((200, 220 - 20 * z, 180))
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                       [(z, x, y, data) for x in range(2 ** z) for y in range(2 ** z)])
    db.commit()
    db.close()


@pytest.mark.browser
def test_the_map_draws_the_offline_base_map_from_our_server(settings, world, chromium, tmp_path, request):
    make_drc_mbtiles(tmp_path / "drc.mbtiles")
    with live_server(settings_env(settings, mbtiles=tmp_path / "drc.mbtiles")) as server:
        web = Web(server=server, browser=chromium, test_name=request.node.name)
        try:
            page = web.sign_in("coord", lang="en", password=PASSWORD)
            tiles_seen = []
            page.on("response", lambda r: "/tiles/" in r.url and tiles_seen.append(r.status))
            page.goto(web.url("/map"))
            page.wait_for_selector("#map img.leaflet-tile-loaded")
            assert page.is_checked("#base-offline")
            assert tiles_seen and set(tiles_seen) == {200}
            page.check("#base-provinces")
            assert page.locator("#map img.leaflet-tile").count() == 0
            web.check(page, "map-offline")
        finally:
            web.close()
