"""A visit sent from a tablet (OpenRosa, with a photo) shows up where coordinators look for it: on the map's
visits layer, on its site's page (visit row and photo) — in a real browser over the demo data."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser import api_json, send_visit_with_photo


@pytest.mark.browser
def test_a_tablet_visit_appears_on_the_map_and_on_its_site_page(web):
    iid, code = send_visit_with_photo(web.server.url, "monitor2", site_code="CD-HK-000002")

    page = web.sign_in("coord", lang="fr")
    page.goto(web.url("/map"))
    visits = api_json(page, "/api/v1/map/visits")
    mine = [v for v in visits["visits"] if v[4] == iid]
    assert len(mine) == 1 and mine[0][2] == code  # what the map's visit clusters are drawn from

    page.goto(web.url(f"/sites/{code}"))
    row = page.locator("table tr", has=page.locator(f"a[href='/submissions/{iid}']"))
    assert row.count() == 1 and "Monitrice terrain Likasi" in row.inner_text()
    submission = json.dumps(api_json(page, f"/api/v1/submissions/{iid}"))
    photo_hashes = set(re.findall(r"[0-9a-f]{64}", submission))
    links = page.locator(".site-gallery a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    ours = [link for link in links if any(h in link for h in photo_hashes)]
    assert len(ours) == 1, "the visit's photo is in the gallery"
    thumbnail = page.locator(f".site-gallery a[href='{ours[0]}'] img")
    thumbnail.scroll_into_view_if_needed()  # thumbnails load lazily, when they come into view
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert thumbnail.evaluate("img => img.naturalWidth") <= 240
    web.check(page, "site-after-a-tablet-visit")

    row.locator(f"a[href='/submissions/{iid}']").click()
    page.wait_for_url(web.url(f"/submissions/{iid}"))
    assert code in page.inner_text("main")
