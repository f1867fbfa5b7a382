"""The site pages: the list, one site with its evidence, and the import through its dry run.

Route-level behaviour with TestClient (roles, 404s, bad files → a message beside the field);
then, in real Chromium over the demo data, what coordinators and monitors see.
"""

from __future__ import annotations

import json
import re
import uuid

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlmodel import select

from app.db import session_scope
from geodata.models import Site
from tests.app.factories import SAME_ORIGIN, login
from tests.browser import api_json
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square, submit, visit_answers

SITE = square(*KOLWEZI, 100)


def api_ids(client: TestClient, path: str) -> set[str]:
    return {v["instance_id"] for v in client.get(path).json()["visits"]}


def signed_in(client: TestClient, username: str) -> TestClient:
    assert login(client, username).status_code == 303
    return client


@pytest.fixture
def seeded(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("ZEA-9", square(*KOLWEZI, 2000), "zea"), ("A", SITE),
                                                ("B", square(*offset(*KOLWEZI, 5000), 100))]))
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01", children_u15_seen=3,
                                                      children_tasks=["sorting"]), lon=KOLWEZI[0], lat=KOLWEZI[1])
    submit(engine, settings, "monitor2", visit_answers(1, visit_date="2026-10-05", children_u15_seen=4),
           lon=KOLWEZI[0], lat=KOLWEZI[1])
    return world


def upload(frame: gpd.GeoDataFrame, name: str = "new.geojson") -> dict:
    return {"file": (name, frame.to_json().encode(), "application/geo+json")}


# -- who sees what -----------------------------------------------------------------------


def test_the_list_filters_and_counts_per_stage(client, seeded):
    signed_in(client, "coord")
    page = client.get("/sites")
    assert page.status_code == 200
    assert 'href="/sites/A"' in page.text and 'href="/sites/B"' in page.text
    assert 'href="/sites/ZEA-9"' not in page.text  # a legal area, not a site
    assert 'href="/sites/import"' in page.text
    assert 'href="/sites/B"' not in client.get("/sites?stage=1").text
    assert 'href="/sites/A"' not in client.get("/sites?q=b").text
    assert 'href="/sites/ZEA-9"' not in client.get("/sites?kind=zea").text  # a legal area, never a site
    assert 'href="/sites/B"' not in client.get("/sites?visited_days=3650").text
    assert 'href="/sites/A"' in client.get("/sites?province=lualaba").text
    assert 'href="/sites/A"' not in client.get("/sites?province=Kasai-Central").text
    assert '<option value="45" selected>' in client.get("/sites?visited_days=45").text
    assert client.get("/sites?stage=nine&page=x&visited_days=-1").status_code == 200


def test_site_pages_are_for_the_roles_that_see_visits(client, seeded):
    signed_in(client, "cw_a")
    assert client.get("/sites").status_code == 403
    assert client.get("/sites/A").status_code == 403


def test_an_unknown_site_is_a_404_page(client, seeded):
    signed_in(client, "coord")
    page = client.get("/sites/NOPE")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


def test_the_site_page_shows_evidence_and_suppresses_small_child_figures(client, seeded):
    signed_in(client, "coord")
    page = client.get("/sites/A")
    assert page.status_code == 200
    assert "ZEA-9" in page.text  # legal status
    assert page.text.count("/submissions/uuid:") == 3  # two visits in the table, one as the evidence
    assert '<div class="value">7</div>' in page.text  # children under 15: 3 + 4
    assert '<div class="value">&lt; 5</div>' in page.text  # 15-17: none seen


def test_a_visit_near_a_site_shows_its_distance_in_whole_metres(client, seeded, engine, settings):
    lon, lat = offset(*KOLWEZI, 5000 + 100 + 185)  # 185 m east of site B's edge: within the tolerance
    stored = submit(engine, settings, "monitor", visit_answers(1, visit_date="2026-10-07"), lon=lon, lat=lat)
    signed_in(client, "coord")
    assert client.get(f"/api/v1/submissions/{stored.instance_id}").json()["site_distance_m"] == pytest.approx(185, abs=2)
    distance = re.search(r"à (\d+)\u00a0m du site", client.get("/sites/B").text)
    assert distance and abs(int(distance.group(1)) - 185) <= 2  # not 185.00000000000003
    client.cookies.set("asmfield_lang", "en")
    assert re.search(r"\d+\u00a0m from the site", client.get("/sites/B").text)


def test_a_monitor_sees_only_their_own_visits(client, seeded):
    signed_in(client, "monitor")
    page = client.get("/sites/A")
    assert page.status_code == 200
    shown = set(re.findall(r'/submissions/(uuid:[0-9a-f-]+)', page.text))
    assert len(shown) == 1  # of the site's two visits
    assert api_ids(client, "/api/v1/sites/A") == shown
    assert '<div class="value">&lt; 5</div>' in page.text  # 3 children: suppressed


# -- import ------------------------------------------------------------------------------


def test_import_is_for_staff(client, seeded):
    signed_in(client, "monitor")
    assert client.get("/sites/import").status_code == 403
    assert 'href="/sites/import"' not in client.get("/sites").text
    r = client.post("/sites/import", files=upload(sites_frame([("N", SITE)])), headers=SAME_ORIGIN)
    assert r.status_code == 403


def test_dry_run_then_confirm_imports_the_same_file(client, seeded, engine):
    signed_in(client, "coord")
    frame = sites_frame([("N-1", square(*offset(*KOLWEZI, 9000), 100)), ("A", SITE),
                         ("N-1", square(*offset(*KOLWEZI, 9000), 100))])
    dry = client.post("/sites/import", files=upload(frame), headers=SAME_ORIGIN)
    assert dry.status_code == 200
    assert "code en double (d&#39;abord à la ligne 1)" in dry.text  # French first
    token = re.search(r'name="token" value="([^"]+)"', dry.text).group(1)
    with session_scope(engine) as s:
        assert s.exec(select(Site).where(Site.code == "N-1")).first() is None
    # another person cannot confirm it
    other = TestClient(client.app)
    signed_in(other, "admin")
    assert other.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN).status_code == 410
    done = client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN)
    assert done.status_code == 200 and 'href="/sites/N-1"' in done.text
    assert client.get("/sites/N-1").status_code == 200
    again = client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN)
    assert again.status_code == 410  # used once
    assert client.post("/sites/import/confirm", data={"token": "../../etc"}, headers=SAME_ORIGIN).status_code == 410


def test_the_dry_run_page_says_where_rows_go_and_what_it_refuses_and_retires(client, seeded, engine):
    """Issue 14, items 2 and 3: a points file whose codes are titles' numbers, replacing the sites."""
    signed_in(client, "coord")
    frame = sites_frame([("A", SITE), ("ZEA-9", square(*offset(*KOLWEZI, 9000), 100))])
    dry = client.post("/sites/import", files=upload(frame), data={"replace": "1"}, headers=SAME_ORIGIN)
    assert dry.status_code == 200
    assert "2 lignes : 1 sites, 0 zones légales (couche cadastre)." in dry.text
    assert "Refusés (1)" in dry.text and "le code ZEA-9 est déjà une zone légale (ZEA de la couche cadastre)" in dry.text
    assert "Retirés : absents du fichier (1)" in dry.text and ">B</td>" in dry.text
    token = re.search(r'name="token" value="([^"]+)"', dry.text).group(1)
    assert client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN).status_code == 200
    with session_scope(engine) as s:
        assert s.exec(select(Site.status).where(Site.code == "B")).one() == "retired"
    page = client.get("/sites/B")
    assert page.status_code == 200 and "Ce site est retiré" in page.text
    assert "ZEA la plus proche : ZEA-9, à 3,0 km." in page.text  # a French decimal comma
    assert "Dans la ZEA ZEA-9." in client.get("/sites/A").text
    bad = client.post("/sites/import", files=upload(frame), data={"layer": "Bad Layer!", "target": "x"},
                      headers=SAME_ORIGIN)
    assert bad.status_code == 422 and re.search(r'id="f-layer"[^>]*aria-invalid="true"', bad.text)


def test_an_upload_waits_an_hour_at_most(client, seeded, settings):
    signed_in(client, "coord")
    dry = client.post("/sites/import", files=upload(sites_frame([("LATE", SITE)])), headers=SAME_ORIGIN)
    token = re.search(r'name="token" value="([^"]+)"', dry.text).group(1)
    meta = settings.data_dir / "pending-site-imports" / token / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "created": 0}))
    late = client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN)
    assert late.status_code == 410 and 'aria-invalid="true"' in late.text
    assert client.get("/sites/LATE").status_code == 404


def test_bad_files_are_refused_beside_the_field_without_server_paths(client, seeded, settings):
    signed_in(client, "coord")
    cases = [
        ({"file": ("x.geojson", b'{"type": "FeatureCollection", "features": [', "application/json")}, {}, "f-file"),
        ({"file": ("x.pdf", b"%PDF-1.4 nonsense", "application/pdf")}, {}, "f-file"),
        ({"file": ("empty.geojson", b"", "application/json")}, {}, "f-file"),
        (upload(sites_frame([("N", SITE)])), {"mapping": "code=nothere"}, "f-mapping"),
        (upload(sites_frame([("N", SITE)])), {"default_radius_m": "-3"}, "f-default_radius_m"),
        ({}, {}, "f-file"),
    ]
    for files, data, field in cases:
        r = client.post("/sites/import", files=files or None, data=data, headers=SAME_ORIGIN)
        assert 400 <= r.status_code < 500, (files, r.status_code)
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', r.text), (field, r.text[-2000:])
        assert str(settings.data_dir) not in r.text and "/tmp/" not in r.text
    kept = client.post("/sites/import", files=upload(sites_frame([("N", SITE)])),
                       data={"mapping": "code=nothere", "crs": "EPSG:4326"}, headers=SAME_ORIGIN)
    assert 'value="code=nothere"' in kept.text and 'value="EPSG:4326"' in kept.text


# -- in the browser ----------------------------------------------------------------------


def _site_with_photos(page) -> str:
    sites = api_json(page, "/api/v1/sites")["features"]
    for feature in sorted(sites, key=lambda f: -(f["properties"].get("visit_count") or 0)):
        detail = api_json(page, f"/api/v1/sites/{feature['id']}")
        if any(p["url"] for v in detail["visits"] for p in v["photos"]):
            return feature["id"]
    raise AssertionError("no demo site with photos")


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_coordinator_opens_a_demo_site(web, lang):
    page = web.sign_in("coord", lang=lang)
    code = _site_with_photos(page)
    page.goto(web.url(f"/sites/{code}"))
    expect(page.locator("h1")).to_contain_text(code)
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.locator("#site-map.leaflet-container path").first).to_be_visible()
    first = page.locator(".site-gallery img").first
    first.scroll_into_view_if_needed()
    expect(first).to_be_visible()
    for _ in range(50):  # the (lazy) thumbnail loads
        if page.evaluate("document.querySelector('.site-gallery img').naturalWidth") > 0:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("document.querySelector('.site-gallery img').naturalWidth") > 0
    assert ("?size=web" in page.locator(".site-gallery a").first.get_attribute("href"))
    detail = api_json(page, f"/api/v1/sites/{code}")
    assert page.locator("table.visits tbody tr").count() == len(detail["visits"])
    web.check(page, f"site-{lang}")
    page.goto(web.url("/sites"))
    expect(page.locator("table.stack tbody tr").first).to_be_visible()
    web.check(page, f"sites-{lang}")


@pytest.mark.browser
def test_a_monitor_sees_only_their_visits_on_a_site(web):
    page = web.sign_in("monitor1", lang="en")
    mine = api_json(page, "/api/v1/sites/" + _site_with_photos(page))
    page.goto(web.url(f"/sites/{mine['id']}"))
    rows = page.locator("table.visits tbody tr")
    assert rows.count() == len(mine["visits"]) > 0
    me = page.locator("p.who").first.text_content().split(" · ")[0].strip()
    for i in range(rows.count()):
        assert rows.nth(i).locator("td").nth(1).inner_text().strip() == me
    web.check(page, "site-monitor")


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_coordinator_imports_sites_through_the_dry_run(web, tmp_path, lang):
    code = f"WEB-{uuid.uuid4().hex[:6].upper()}"
    part = square(*offset(*KOLWEZI, 30_000), 150)
    frame = sites_frame([(code, part), (code, square(*offset(*KOLWEZI, 31_000), 150)), (code, part)])
    path = tmp_path / "new-sites.geojson"
    path.write_text(json.loads(json.dumps(frame.to_json())))
    page = web.sign_in("coord", lang=lang)
    page.goto(web.url("/sites"))
    page.click("a[href='/sites/import']")
    web.check(page, f"import-form-{lang}")
    page.set_input_files("#f-file", str(path))
    page.click("form[action='/sites/import'] button[type=submit]")
    expect(page.locator("table.problems")).to_contain_text({"en": "duplicate code", "fr": "code en double"}[lang])
    expect(page.locator("ul.remarks")).to_contain_text(
        {"en": "merged into one multi-polygon", "fr": "fusionnée en un seul multipolygone"}[lang])
    expect(page.locator(".counts")).to_contain_text("1")
    web.check(page, f"import-dry-run-{lang}")
    assert page.request.get(web.url(f"/api/v1/sites/{code}")).status == 404  # nothing written yet
    page.click("form.confirm button[type=submit]")
    expect(page.locator(".notice")).to_be_visible()
    web.check(page, f"import-done-{lang}")
    page.click(f"a[href='/sites/{code}']")
    expect(page.locator("h1")).to_contain_text(code)


def test_the_dry_run_shows_rows_merged_into_a_multi_part_site(client, seeded, engine):
    signed_in(client, "coord")
    frame = sites_frame([("M-1", square(*offset(*KOLWEZI, 9000), 100)), ("M-1", square(*offset(*KOLWEZI, 12_000), 300))])
    dry = client.post("/sites/import", files=upload(frame), headers=SAME_ORIGIN)
    assert dry.status_code == 200
    assert "une autre partie du site de la ligne 1 : fusionnée en un seul multipolygone" in dry.text
    assert "parties fusionnées" in dry.text
    token = re.search(r'name="token" value="([^"]+)"', dry.text).group(1)
    done = client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN)
    assert done.status_code == 200
    with session_scope(engine) as s:
        assert '"MultiPolygon"' in s.exec(select(Site).where(Site.code == "M-1")).one().geometry
