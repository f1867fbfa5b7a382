"""The web import page and registers with one row per visit (issue 14, items 5 and 9): the "latest by" and
"keep older rows as history" options the API has, whole-file remarks shown apart from the rows, and the
importer's messages in French."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from app.db import session_scope
from app.web.i18n import set_language
from geodata.models import Site
from geodata.web.sites import problem_text, refusal_text
from tests.app.factories import SAME_ORIGIN, login
from tests.geodata.conftest import KOLWEZI


def register_csv(prefix: str = "R") -> bytes:
    """Two sites visited several times (one row per visit) with two date columns, as French Excel saves it."""
    rows = [(f"{prefix}-1", "2023-05-03", "2023-05-04", "row 1"), (f"{prefix}-2", "2021-01-10", "2021-01-10", "row 2"),
            (f"{prefix}-1", "2024-01-15", "2024-01-16", "row 3"), (f"{prefix}-1", "2022-02-01", "2022-02-01", "row 4")]
    lines = ["code;date_visite;date;lon;lat;note"]
    for i, (code, visited, entered, note) in enumerate(rows):
        lon, lat = f"{KOLWEZI[0] + i * 0.01:.4f}".replace(".", ","), f"{KOLWEZI[1]:.4f}".replace(".", ",")
        lines.append(f"{code};{visited};{entered};{lon};{lat};{note}")
    return ("\n".join(lines) + "\n").encode("cp1252")


def dry_run(client, data: dict, content: bytes, name: str = "registre.csv"):  # noqa: ANN001, ANN201
    return client.post("/sites/import", files={"file": (name, content, "text/csv")}, data=data, headers=SAME_ORIGIN)


def test_the_import_form_takes_latest_by_and_history_and_shows_file_remarks_apart(client, world, engine):
    assert login(client, "coord").status_code == 303
    page = client.get("/sites/import").text
    assert 'name="latest_by"' in page and 'name="history"' in page

    two_dates = dry_run(client, {}, register_csv())  # two date columns: no guess, duplicates refused
    assert two_dates.status_code == 200
    remarks = re.search(r'<ul class="file-remarks".*?</ul>', two_dates.text, re.S).group(0)
    assert "plusieurs colonnes de date (date_visite, date)" in remarks
    assert "« Garder la plus récente selon »" in remarks
    assert "Ligne 0" not in two_dates.text and "Row 0" not in two_dates.text

    unknown = dry_run(client, {"latest_by": "quand"}, register_csv())
    assert unknown.status_code == 422
    assert re.search(r'id="e-latest_by"[^>]*>Le fichier n’a pas de colonne de ce nom \(colonnes : code, ', unknown.text)

    dry = dry_run(client, {"latest_by": "date_visite", "history": "1"}, register_csv())
    assert dry.status_code == 200
    assert ("4 lignes → 2 sites : 2 lignes plus anciennes de codes de site répétés remplacées par la plus récente "
            "selon date_visite (gardées comme historique)") in dry.text
    token = re.search(r'name="token" value="([^"]+)"', dry.text).group(1)
    done = client.post("/sites/import/confirm", data={"token": token}, headers=SAME_ORIGIN)
    assert done.status_code == 200
    assert "2 lignes plus anciennes gardées comme observations de leurs sites." in done.text
    with session_scope(engine) as s:
        kept = s.exec(select(Site).where(Site.code == "R-1")).one()
        assert kept.properties["note"] == "row 3"  # the latest visit by date_visite

    client.cookies.set("asmfield_lang", "en")
    dropped = dry_run(client, {"latest_by": "date"}, register_csv("E"))
    assert ("4 rows → 2 sites: 2 older rows of repeated site codes superseded by the latest row by date "
            "(dropped: tick “Keep older rows as history” to keep them as observations)") in dropped.text


def test_the_importers_other_messages_read_in_french():
    set_language("fr")
    assert problem_text("12,345 rows → 3,001 sites: 9,344 older rows of repeated site codes superseded by the "
                        "latest row by date (kept as history); 1,200 rows without a readable date ranked oldest") == (
        "12\u202f345 lignes → 3\u202f001 sites : 9\u202f344 lignes plus anciennes de codes de site répétés remplacées "
        "par la plus récente selon date (gardées comme historique) ; 1\u202f200 lignes sans date lisible classées "
        "comme les plus anciennes")
    assert problem_text("the given CRS EPSG:32735 replaces the file's own (EPSG:4326 WGS 84): its coordinates are "
                        "read as EPSG:32735") == ("le système de coordonnées donné EPSG:32735 remplace celui du "
                                                  "fichier (EPSG:4326 WGS 84) : ses coordonnées sont lues en EPSG:32735")
    assert problem_text("location (2.35000, 48.85000) is outside the DRC's bounding box; are longitude and latitude "
                        "swapped?").startswith("position (2,35000 ; 48,85000) hors du rectangle englobant de la RDC")
    assert refusal_text("code 10011 is a legal area (ZEA in layer cadastre, QUARRY in layer carrieres); importing "
                        "this row as a site would give a title's code to a mine site: use --as sites if both exist, "
                        "or --force") == ("le code 10011 est déjà une zone légale (ZEA de la couche cadastre, "
                                          "Autorisation de carrière de la couche carrieres) : choisissez Des sites si "
                                          "les deux existent, ou cochez Forcer")


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_coordinator_imports_a_register_with_history_on_the_web(web, tmp_path, lang):
    prefix = f"REG-{uuid.uuid4().hex[:5].upper()}"
    path = tmp_path / "registre.csv"
    path.write_bytes(register_csv(prefix))
    page = web.sign_in("coord", lang=lang)
    page.goto(web.url("/sites/import"))
    page.set_input_files("#f-file", str(path))
    page.click("form[action='/sites/import'] button[type=submit]")
    expect(page.locator("ul.file-remarks")).to_contain_text({"en": "several date columns",
                                                             "fr": "plusieurs colonnes de date"}[lang])
    expect(page.locator("table.problems")).to_contain_text({"en": "duplicate code", "fr": "code en double"}[lang])
    web.check(page, "register-two-dates")

    page.goto(web.url("/sites/import"))
    page.set_input_files("#f-file", str(path))
    page.fill("#f-latest_by", "date_visite")
    page.check("input[name=history]")
    web.check(page, "register-form")
    page.click("form[action='/sites/import'] button[type=submit]")
    expect(page.locator("ul.file-remarks")).to_contain_text(
        {"en": "4 rows → 2 sites: 2 older rows", "fr": "4 lignes → 2 sites : 2 lignes plus anciennes"}[lang])
    expect(page.locator("table.problems")).to_have_count(0)
    web.check(page, "register-dry-run")
    page.click("form.confirm button[type=submit]")
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("main")).to_contain_text({"en": "2 older rows kept as observations of their sites.",
                                                  "fr": "2 lignes plus anciennes gardées comme observations"}[lang])
    web.check(page, "register-done")
    page.click(f"a[href='/sites/{prefix}-1']")
    expect(page.locator("h1")).to_contain_text(f"{prefix}-1")

