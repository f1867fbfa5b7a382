"""The sites API through the real app: every route, every role, bad input."""

import io
import json
import os
import zipfile

import geopandas as gpd
import pytest

from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square, submit, visit_answers

SITE = square(*KOLWEZI, 100)


@pytest.fixture
def seeded(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("ZEA-360", square(*KOLWEZI, 2000), "zea"), ("A", SITE),
                                                ("B", square(*offset(*KOLWEZI, 5000), 100))]))
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    submit(engine, settings, "monitor2", visit_answers(1, visit_date="2026-10-05"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    far = offset(*KOLWEZI, 20_000)
    submit(engine, settings, "monitor2", visit_answers(1), lon=far[0], lat=far[1])
    return world


def geojson_upload(frame: gpd.GeoDataFrame) -> dict:
    return {"file": ("sites.geojson", frame.to_json().encode(), "application/geo+json")}


def test_list_is_geojson_with_stage_and_visit_properties(client, seeded):
    r = client.get("/api/v1/sites", headers=seeded.coordinator.bearer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    features = {f["properties"]["code"]: f for f in r.json()["features"]}
    a = features["A"]["properties"]
    assert (a["stage"], a["visit_count"], a["last_visit"], a["province"]) == (1, 2, "2026-10-05", "Lualaba")  # the latest visit decides
    assert features["A"]["geometry"]["type"] == "Polygon"


def test_list_filters_and_simplify(client, seeded):
    h = seeded.admin.bearer
    assert [f["id"] for f in client.get("/api/v1/sites?kind=zea", headers=h).json()["features"]] == []  # a legal area
    assert [f["id"] for f in client.get("/api/v1/sites?stage=1", headers=h).json()["features"]] == ["A"]
    west, south, east, north = SITE.bounds
    bbox = f"{west},{south},{east},{north}"
    assert {f["id"] for f in client.get(f"/api/v1/sites?bbox={bbox}", headers=h).json()["features"]} == {"A"}
    assert [f["id"] for f in client.get("/api/v1/sites?visited_since=2026-10-02", headers=h).json()["features"]] == ["A"]
    assert len(client.get("/api/v1/sites?province=CD-HK", headers=h).json()["features"]) == 0
    simple = client.get("/api/v1/sites?simplify=50&kind=asm_site", headers=h).json()
    assert all(f["geometry"]["type"] == "Polygon" for f in simple["features"])
    bad = client.get("/api/v1/sites?bbox=1,2,3", headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "sites.bad_bbox"


def test_names_with_commas_and_quotes_stay_valid_json(client, world, forms):
    frame = sites_frame([("Q", SITE)])
    frame["name"] = ['Kamilombe, "Nord" \\ é']
    client.post("/api/v1/sites/import", headers=world.admin.bearer, files=geojson_upload(frame))
    (feature,) = client.get("/api/v1/sites", headers=world.admin.bearer).json()["features"]
    assert feature["properties"]["name"] == 'Kamilombe, "Nord" \\ é'


def test_caseworkers_get_the_list_without_visit_data(client, seeded):
    r = client.get("/api/v1/sites", headers=seeded.caseworker_a.bearer)
    props = r.json()["features"][0]["properties"]
    assert r.status_code == 200 and "stage" not in props and "visit_count" not in props
    detail = client.get("/api/v1/sites/A", headers=seeded.caseworker_a.bearer).json()
    assert "visits" not in detail and "stage_history" not in detail
    assert client.get("/api/v1/sites?stage=1", headers=seeded.caseworker_a.bearer).status_code == 422


def test_site_detail_with_history_and_visits_monitors_see_only_their_own(client, seeded):
    coord = client.get("/api/v1/sites/A", headers=seeded.coordinator.bearer).json()
    assert len(coord["visits"]) == 2
    assert [h["stage"] for h in coord["stage_history"]] == [2, 1]
    assert coord["properties"]["zea_codes"] == ["ZEA-360"]
    mine = client.get("/api/v1/sites/A", headers=seeded.monitor.bearer).json()
    assert len(mine["visits"]) == 1 and mine["visits"][0]["visit_date"] == "2026-10-01"
    missing = client.get("/api/v1/sites/NOPE", headers=seeded.admin.bearer)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "sites.not_found"


def test_unmapped_lists_submissions_for_review_by_role(client, seeded):
    items = client.get("/api/v1/sites/unmapped", headers=seeded.coordinator.bearer).json()["items"]
    assert [i["site_match"] for i in items] == ["unmapped"]
    assert client.get("/api/v1/sites/unmapped", headers=seeded.monitor.bearer).json()["items"] == []
    assert len(client.get("/api/v1/sites/unmapped", headers=seeded.monitor2.bearer).json()["items"]) == 1


def test_stats(client, seeded):
    stats = client.get("/api/v1/sites/stats?months=2", headers=seeded.monitor.bearer).json()
    assert stats["by_stage"]["1"] == 1 and stats["by_stage"]["0"] == 1 and len(stats["monthly"]) == 2


def test_exports_geojson_and_geopackage(client, seeded, tmp_path):
    r = client.get("/api/v1/sites/export.geojson", headers=seeded.coordinator.bearer)
    assert r.status_code == 200 and len(r.json()["features"]) == 2  # sites only (the ZEA is a legal area)
    g = client.get("/api/v1/sites/export.gpkg", headers=seeded.coordinator.bearer)
    assert g.status_code == 200
    path = tmp_path / "x.gpkg"
    path.write_bytes(g.content)
    frame = gpd.read_file(path)
    assert sorted(frame["code"]) == ["A", "B"] and "stage" in frame.columns


def test_import_creates_sites_and_reports_row_problems(client, world, forms):
    frame = sites_frame([("A", SITE), ("A", SITE), ("C", square(*offset(*KOLWEZI, 9000), 50))])
    r = client.post("/api/v1/sites/import", headers=world.coordinator.bearer, files=geojson_upload(frame),
                    data={"mapping": "code=code,name=name"})
    body = r.json()
    assert r.status_code == 200, body
    assert (body["created"], body["skipped"]) == (2, 1) and body["problems"][0]["code"] == "A"
    listed = client.get("/api/v1/sites", headers=world.coordinator.bearer).json()["features"]
    assert {f["id"] for f in listed} == {"A", "C"}


@pytest.mark.parametrize("name,content,code", [
    ("junk.bin", b"\x00\x01" + os.urandom(2048), "sites.not_geodata"),
    ("junk.geojson", b"{" + os.urandom(10 * 1024 * 1024), "sites.unreadable"),
    ("empty.geojson", b"", "sites.empty_file"),
])
def test_import_refuses_bad_files_and_imports_nothing(client, world, forms, name, content, code):
    r = client.post("/api/v1/sites/import", headers=world.admin.bearer, files={"file": (name, content)})
    assert r.status_code == 422 and r.json()["error"]["code"] == code
    assert client.get("/api/v1/sites", headers=world.admin.bearer).json()["features"] == []


def test_import_refuses_a_zip_without_shp(client, world, forms):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    r = client.post("/api/v1/sites/import", headers=world.admin.bearer, files={"file": ("s.zip", buf.getvalue())})
    assert r.status_code == 422 and r.json()["error"]["code"] == "sites.zip_without_shp"


def test_assurance_route_sets_and_validates(client, seeded):
    ok = client.put("/api/v1/sites/A/assurance", headers=seeded.coordinator.bearer,
                    json={"assurance_type": "egc_kumi", "valid_until": "2027-06-30"})
    assert ok.status_code == 200 and ok.json()["assurance_type"] == "egc_kumi"
    bad = client.put("/api/v1/sites/A/assurance", headers=seeded.coordinator.bearer,
                     json={"assurance_type": "self_declared", "valid_until": "2027-06-30"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "sites.bad_assurance_type"


@pytest.mark.parametrize("method,path,role,status", [
    ("get", "/api/v1/sites/unmapped", "caseworker", 403),
    ("get", "/api/v1/sites/stats", "caseworker", 403),
    ("get", "/api/v1/sites/export.geojson", "caseworker", 403),
    ("get", "/api/v1/sites/export.gpkg", "caseworker", 403),
    ("post", "/api/v1/sites/import", "monitor", 403),
    ("post", "/api/v1/sites/import", "caseworker", 403),
    ("post", "/api/v1/sites/recompute", "monitor", 403),
    ("put", "/api/v1/sites/A/assurance", "monitor", 403),
    ("get", "/api/v1/sites", None, 401),
    ("get", "/api/v1/sites/A", None, 401),
])
def test_wrong_roles_are_refused(client, world, method, path, role, status):
    headers = world.person(role).bearer if role else {}
    kwargs = {}
    if path.endswith("/import"):
        kwargs["files"] = geojson_upload(sites_frame([("Z", SITE)]))
    if path.endswith("/assurance"):
        kwargs["json"] = {"assurance_type": None}
    r = getattr(client, method)(path, headers=headers, **kwargs)
    assert r.status_code == status, r.text


def test_recompute_route(client, seeded):
    r = client.post("/api/v1/sites/recompute", headers=seeded.admin.bearer)
    assert r.status_code == 200 and json.loads(r.text) == {"remapped": 0, "stage_changes": 0}


def test_the_list_reflects_new_visits_and_site_edits_at_once(client, engine, settings, seeded):
    def props(code):
        features = client.get("/api/v1/sites", headers=seeded.coordinator.bearer).json()["features"]
        return next(f["properties"] for f in features if f["id"] == code)

    assert props("B")["stage"] == 0
    centre_b = offset(*KOLWEZI, 5000)
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-11-02"), lon=centre_b[0], lat=centre_b[1])
    assert (props("B")["stage"], props("B")["visit_count"]) == (2, 1)
    renamed = sites_frame([("B", square(*centre_b, 100))])
    renamed["name"] = ["Kanina"]
    import_frame(engine, settings, renamed)
    assert props("B")["name"] == "Kanina"


def test_every_sites_route_declares_its_response(app):
    """Issue 10: OpenAPI describes every answer of the sites API (GeoJSON models, binary exports)."""
    paths = {p: ops for p, ops in app.openapi()["paths"].items() if p.startswith("/api/v1/sites")}
    assert len(paths) == 12
    for path, ops in paths.items():
        for method, op in ops.items():
            content = op["responses"]["200"]["content"]
            if path.startswith("/api/v1/sites/export."):
                (media_type,) = content
                assert media_type in ("application/geo+json", "application/geopackage+sqlite3")
                assert content[media_type]["schema"] == {"type": "string", "format": "binary"}
                continue
            schemas = [c.get("schema", {}) for c in content.values()]
            assert any("$ref" in s for s in schemas), (method, path, content)
    listed = paths["/api/v1/sites"]["get"]["responses"]["200"]["content"]
    assert listed["application/geo+json"]["schema"]["$ref"].endswith("/SiteCollection")
