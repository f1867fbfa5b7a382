"""/map and its API through the real app: roles, filters in the URL, bad input, the tile host in the CSP."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.http_security import CONTENT_SECURITY_POLICY
from app.main import create_app
from tests.app.factories import PASSWORD, login
from tests.browser import api_json
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square, submit, visit_answers


@pytest.fixture
def mapped(engine, settings, world, forms):
    """A ZEA, two sites near Kolwezi (A at stage 2, B unvisited) and visits by two monitors."""
    import_frame(engine, settings, sites_frame([("ZEA-1", square(*KOLWEZI, 2000), "zea"), ("A", square(*KOLWEZI, 100)),
                                                ("B", square(*offset(*KOLWEZI, 5000), 100))]))
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-20"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    submit(engine, settings, "monitor2", visit_answers(2, visit_date="2026-10-05"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    return world


def legend(html: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r'data-stage="(\d)">.*?<strong class="count">(\d+)</strong>', html, re.S)}


def test_coordinator_sees_the_map_with_the_counts_of_the_statistics(client, mapped):
    login(client, "coord", PASSWORD)
    page = client.get("/map")
    assert page.status_code == 200
    assert 'href="/map" aria-current="page"' in page.text  # in the navigation
    assert 'id="map"' in page.text and "data-tile-url" not in page.text and "data-mbtiles-url" not in page.text
    stats = client.get("/api/v1/sites/stats").json()
    assert legend(page.text) == {k: v for k, v in stats["by_stage"].items()} and stats["by_stage"]["2"] == 1


def test_filters_come_from_the_url_and_narrow_the_counts(client, mapped):
    login(client, "coord", PASSWORD)
    page = client.get("/map?province=CD-LU&stage=0&mineral=&from=2020-01-01&to=")
    assert page.status_code == 200
    assert '<option value="CD-LU" selected>' in page.text and '<option value="0" selected>' in page.text
    assert legend(page.text) == {**{str(s): 0 for s in range(7)}}  # B (stage 0) has no visit since 2020 or ever
    stats = client.get("/api/v1/sites/stats?province=CD-LU&stage=2&months=1").json()
    assert stats["by_stage"]["2"] == 1 and stats["sites"] == 1
    assert legend(client.get("/map?province=CD-LU&stage=2").text)["2"] == 1


def test_a_province_named_in_the_url_is_the_one_selected(client, mapped):
    login(client, "coord", PASSWORD)
    page = client.get("/map?province=Lualaba")
    assert '<option value="CD-LU" selected>' in page.text and legend(page.text)["2"] == 1


def test_bad_filters_are_shown_beside_their_field(client, mapped):
    login(client, "coord", PASSWORD)
    page = client.get("/map?stage=9&from=yesterday")
    assert page.status_code == 400
    assert 'id="e-stage"' in page.text and 'id="e-from"' in page.text and 'value="yesterday"' in page.text


def test_monitor_sees_the_map_and_only_their_own_visits(client, mapped):
    login(client, "monitor2", PASSWORD)
    assert client.get("/map").status_code == 200
    visits = client.get("/api/v1/map/visits").json()["visits"]
    assert [(v[2], v[3]) for v in visits] == [("A", "2026-10-05")]
    login(client, "coord", PASSWORD)
    assert len(client.get("/api/v1/map/visits").json()["visits"]) == 3
    assert [v[3] for v in client.get("/api/v1/map/visits?from=2026-10-10").json()["visits"]] == ["2026-10-20"]


@pytest.mark.parametrize("username", ["cw_a"])
def test_caseworkers_get_neither_the_map_nor_its_data(client, mapped, username):
    login(client, username, PASSWORD)
    assert client.get("/map").status_code == 403
    for path in ["/api/v1/map/sites", "/api/v1/map/visits", "/api/v1/map/legal/zea", "/api/v1/map/provinces.geojson"]:
        assert client.get(path).status_code == 403, path
    assert 'href="/map"' not in client.get("/account").text


def test_anonymous_visitors_are_sent_to_sign_in(client, mapped):
    response = client.get("/map?stage=2", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fmap%3Fstage%3D2"
    assert client.get("/api/v1/map/sites").status_code == 401


def test_site_points_and_polygons(client, mapped):
    login(client, "coord", PASSWORD)
    points = client.get("/api/v1/map/sites?zoom=5").json()
    assert points["fields"] == ["code", "name", "stage", "flag", "lon", "lat"]
    assert sorted((s[0], s[2]) for s in points["sites"]) == [("A", 2), ("B", 0)]  # the ZEA is not a site
    assert [s[0] for s in client.get("/api/v1/map/sites?stage=2").json()["sites"]] == ["A"]
    lon, lat = KOLWEZI
    near = client.get(f"/api/v1/map/sites?zoom=15&bbox={lon - .01},{lat - .01},{lon + .01},{lat + .01}").json()
    assert near["mode"] == "polygons" and [f["properties"]["code"] for f in near["features"]] == ["A"]
    zea = client.get("/api/v1/map/legal/zea?zoom=9").json()
    assert [f["properties"]["code"] for f in zea["features"]] == ["ZEA-1"]
    assert client.get("/api/v1/map/legal/pe").json()["features"] == []


@pytest.mark.parametrize("path", ["/api/v1/map/sites?bbox=1,2,3", "/api/v1/map/sites?zoom=40", "/api/v1/map/sites?stage=7",
                                  "/api/v1/map/sites?from=nope", "/api/v1/map/legal/roads", "/api/v1/sites/stats?stage=-1"])
def test_bad_map_requests_are_4xx(client, mapped, path):
    login(client, "coord", PASSWORD)
    assert 400 <= client.get(path).status_code < 500


def test_map_data_is_gzipped(client, mapped):
    login(client, "coord", PASSWORD)
    response = client.get("/api/v1/map/provinces.geojson", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and "max-age" in response.headers["cache-control"]
    assert len(response.json()["features"]) == 26


def test_an_online_tile_server_is_offered_and_allowed_in_img_src(settings, world):
    app = create_app(settings.model_copy(update={"tile_url": "https://tile.example.org/{z}/{x}/{y}.png"}))
    with TestClient(app) as client:
        login(client, "coord", PASSWORD)
        page = client.get("/map")
        assert 'data-tile-url="https://tile.example.org/{z}/{x}/{y}.png"' in page.text
        policy = page.headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://tile.example.org;" in policy
        assert policy.replace(" https://tile.example.org", "") == CONTENT_SECURITY_POLICY
    app.state.engine.dispose()


def test_without_a_tile_server_the_policy_names_no_other_host(client, world):
    login(client, "coord", PASSWORD)
    assert client.get("/map").headers["content-security-policy"] == CONTENT_SECURITY_POLICY


# -- in Chromium, over the demo data ----------------------------------------------------------------

LEGEND = """() => Object.fromEntries([...document.querySelectorAll('#map-legend [data-stage]')]
    .map(li => [li.dataset.stage, Number(li.querySelector('.count').textContent)]))"""


def wait_for_sites(page, count: int | None = None) -> None:
    if count is None:
        page.wait_for_function("() => document.getElementById('map').dataset.siteCount !== undefined")
    else:
        page.wait_for_function(f"() => document.getElementById('map').dataset.siteCount === '{count}'")


@pytest.mark.browser
def test_the_legend_counts_are_the_statistics_and_follow_the_stage_filter(web):
    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/map"))
    stats = api_json(page, "/api/v1/sites/stats")
    wait_for_sites(page, stats["sites"])
    assert page.evaluate(LEGEND) == stats["by_stage"]
    assert page.inner_text("#map-total") == str(stats["sites"])
    page.check("#layer-visits")  # visits: clustered, off until asked for
    page.wait_for_function("() => Number(document.getElementById('map').dataset.visitCount) > 0")
    web.check(page, "map")

    stage = max(stats["by_stage"], key=lambda s: stats["by_stage"][s])  # the most common stage of the demo
    page.click(".map-filters summary")
    page.select_option("#f-stage", stage)
    page.wait_for_url(f"**/map?stage={stage}")
    wait_for_sites(page, stats["by_stage"][stage])
    filtered = api_json(page, f"/api/v1/sites/stats?stage={stage}")
    page.wait_for_function(f"() => document.getElementById('map-total').textContent === '{filtered['sites']}'")
    assert page.evaluate(LEGEND) == filtered["by_stage"]
    sites = api_json(page, f"/api/v1/map/sites?stage={stage}")["sites"]
    assert {s[2] for s in sites} == {int(stage)}

    page.reload()  # the filter is in the URL: a reload (or a shared link) shows the same map
    wait_for_sites(page, stats["by_stage"][stage])
    assert page.input_value("#f-stage") == stage
    web.check(page, "map-filtered")


@pytest.mark.browser
def test_a_site_popup_links_to_its_page_and_the_zea_layer_toggles(web):
    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/map"))
    wait_for_sites(page)
    site = api_json(page, "/api/v1/map/sites?zoom=5")["sites"][0]
    page.evaluate(f"() => {{ document.getElementById('map').asmfieldMap.setView([{site[5]}, {site[4]}], 16, {{animate: false}}); }}")
    page.wait_for_function("() => document.getElementById('map').dataset.mode === 'polygons'")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    link = page.locator(".leaflet-popup a.site-link")
    link.wait_for()
    code = page.locator(".leaflet-popup .map-popup > div").first.inner_text()
    assert link.get_attribute("href") == f"/sites/{code}"
    assert code == site[0]

    page.evaluate("() => { document.getElementById('map').asmfieldMap.setView([-10.7, 25.5], 7, {animate: false}); }")
    page.check("#layer-zea")
    page.wait_for_function("() => Number(document.getElementById('map').dataset.legalzea) > 0")
    assert page.evaluate("document.getElementById('map').dataset.onzea") == "1"
    page.uncheck("#layer-zea")
    assert page.evaluate("document.getElementById('map').dataset.onzea") == "0"
    web.check(page, "map-zea")


@pytest.mark.browser
def test_a_monitor_sees_the_map_in_french(web):
    page = web.sign_in("monitor1", lang="fr")
    page.goto(web.url("/map?flag=1"))
    stats = api_json(page, "/api/v1/sites/stats?flag=1")
    wait_for_sites(page, stats["sites"])
    assert page.evaluate(LEGEND) == stats["by_stage"]
    assert "Sites par étape" in page.inner_text("main") and page.is_checked("input[name=flag]")
    page.check("#layer-pe")
    page.wait_for_function("() => document.getElementById('map').dataset.legalpe !== undefined")
    web.check(page, "map-monitor")
