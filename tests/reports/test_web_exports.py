"""The exports page in real Chromium over the demo data: a coordinator asks for a GeoPackage of the
site visits, watches it run, downloads it and opens it with geopandas; a refused export is explained
beside the field; phones first, French first."""

from __future__ import annotations

import geopandas as gpd
import pytest

from tests.browser import api_json


@pytest.mark.browser
def test_a_coordinator_exports_the_visits_as_a_geopackage_and_downloads_it(web, tmp_path):
    page = web.sign_in("coord")
    page.goto(web.url("/exports"))
    assert page.locator("h1").inner_text() == "Exports"
    page.get_by_label("Formulaire", exact=True).select_option("asm_site_visit")
    page.get_by_label("Format", exact=True).select_option("gpkg")
    page.get_by_text("Options").click()
    page.get_by_label("Langue des libellés").select_option("en")
    page.get_by_role("button", name="Exporter").click()

    job = page.locator("li.job").first
    job.get_by_role("link", name="Télécharger").wait_for(timeout=60_000)  # the script follows the job
    assert job.locator("[data-role=status]").inner_text() == "Prêt"
    web.check(page, "exports")

    listed = api_json(page, "/api/v1/exports")["jobs"][0]
    assert listed["status"] == "done" and listed["params"]["language"] == "en"
    with page.expect_download() as download:
        job.get_by_role("link", name="Télécharger").click()
    path = tmp_path / "visits.gpkg"
    download.value.save_as(path)
    frame = gpd.read_file(path)
    assert len(frame) == listed["rows_total"] == listed["rows_done"]
    assert "_site_code" in frame.columns


@pytest.mark.browser
def test_an_export_the_form_cannot_draw_is_explained_beside_the_field(web):
    page = web.sign_in("coord", lang="en")
    page.goto(web.url("/exports?form=asm_site_visit"))
    page.get_by_label("Format", exact=True).select_option("geojson")
    page.get_by_text("Options").click()
    page.get_by_label("GPS question to map (GeoJSON, GeoPackage)").fill("workers_total")
    page.get_by_role("button", name="Export").click()
    error = page.locator("#e-geometry_field")
    assert "geometry_field" in error.inner_text() and "visit_location" in error.inner_text()
    assert page.get_by_label("Form", exact=True).input_value() == "asm_site_visit"  # what was chosen is kept
    web.check(page, "exports-refused")
