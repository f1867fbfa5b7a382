"""The forms pages: who sees and changes what, refusals beside the file field (never a 500), and in
real Chromium a coordinator uploading a broken then a valid XLSForm, closing, reopening, downloading."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from app.db import session_scope
from forms import queries
from tests.app.factories import SAME_ORIGIN, login
from tests.browser import api_json
from tests.factories import VISIT_MD, multipart, new_instance_id, visit_xml
from tests.forms.factories import simple_form

BILINGUAL = """
| survey |
| | type | name | label::English (en) | label::Français (fr) |
| | text | remark | Remark | Remarque |
| | select_one yn | ok | All good? | Tout va bien ? |
| | image | photo | Photo | Photo |
| choices |
| | list_name | name | label::English (en) | label::Français (fr) |
| | yn | yes | Yes | Oui |
| | yn | no | No | Non |
| settings |
| | form_id | version |
| | {form_id} | {version} |
"""


def upload_page(client, content: bytes, filename: str = "form.md", kind: str = ""):  # noqa: ANN001, ANN201
    return client.post("/forms", files={"file": (filename, content, "application/octet-stream")},
                       data={"kind": kind}, headers=SAME_ORIGIN, follow_redirects=False)


def signed_in(client, person):  # noqa: ANN001, ANN201
    assert login(client, person.username).status_code == 303
    return client


# -- who sees what -------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/forms", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fforms"


def test_a_coordinator_uploads_through_the_page_and_lands_on_the_new_version(client, world):
    signed_in(client, world.coordinator)
    response = upload_page(client, simple_form("web_simple", "3"))
    assert response.status_code == 303
    assert response.headers["location"] == "/forms/web_simple?uploaded=3&outcome=created"
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "La version 3 est publiée." in page.text
    again = upload_page(client, simple_form("web_simple", "3"))
    assert again.headers["location"].endswith("outcome=same")
    listing = client.get("/forms")
    assert "web_simple" in listing.text and 'action="/forms"' in listing.text


@pytest.mark.parametrize("role", ["monitor", "caseworker"])
def test_other_roles_see_no_upload_and_may_not_upload_close_or_attach(client, world, role):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("for_monitors", "1"), kind="site_visit")
    client.post("/logout", headers=SAME_ORIGIN)
    signed_in(client, world.person(role))
    listing = client.get("/forms")
    assert listing.status_code == 200 and 'action="/forms"' not in listing.text
    assert upload_page(client, simple_form("sneaky", "1")).status_code == 403
    assert client.post("/forms/for_monitors/close", headers=SAME_ORIGIN).status_code == 403
    media = client.post("/forms/for_monitors/media", files={"file": ("x.csv", b"a", "text/csv")},
                        data={"name": "x.csv"}, headers=SAME_ORIGIN)
    assert media.status_code == 403
    with session_scope(world.engine) as s:
        assert queries.get_form(s, "sneaky") is None
        assert queries.get_form(s, "for_monitors").state == "open"


def test_a_monitor_lists_site_forms_but_a_caseworker_gets_403_on_them(client, world):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("visit_form", "1"), kind="site_visit")
    client.post("/logout", headers=SAME_ORIGIN)
    signed_in(client, world.monitor)
    assert "visit_form" in client.get("/forms").text
    assert client.get("/forms/visit_form").status_code == 200
    client.post("/logout", headers=SAME_ORIGIN)
    signed_in(client, world.caseworker_a)
    assert "visit_form" not in client.get("/forms").text
    assert client.get("/forms/visit_form").status_code == 403  # as GET /api/v1/forms/visit_form
    assert client.get("/forms/visit_form/versions/1/xform").status_code == 403


def test_coordinators_count_every_submission_monitors_their_own_caseworkers_none(app, client, world):
    signed_in(client, world.coordinator)
    upload_page(client, VISIT_MD.encode(), kind="site_visit")
    with session_scope(world.engine) as s:
        version = queries.get_version(s, queries.get_form(s, "field_visit"), "1")
        s.expunge(version)
    with TestClient(app) as tablet:
        for person in (world.monitor, world.monitor2, world.monitor2):
            body, headers = multipart(visit_xml(version, new_instance_id()))
            assert tablet.post("/submission", content=body, headers=headers | person.basic).status_code == 201
    count = '<a href="/submissions?form=field_visit">{}</a>'
    assert count.format(3) in client.get("/forms").text
    assert count.format(3) in client.get("/forms/field_visit").text
    client.post("/logout", headers=SAME_ORIGIN)
    signed_in(client, world.monitor2)
    listing = client.get("/forms").text
    assert count.format(2) in listing and "Mes soumissions" in listing
    client.post("/logout", headers=SAME_ORIGIN)
    signed_in(client, world.caseworker_a)
    assert "Soumissions" not in client.get("/forms").text


def test_unknown_forms_and_versions_are_404_pages(client, world):
    signed_in(client, world.coordinator)
    assert client.get("/forms/nope").status_code == 404
    assert "text/html" in client.get("/forms/nope").headers["content-type"]
    assert client.post("/forms/nope/close", headers=SAME_ORIGIN).status_code == 404
    upload_page(client, simple_form("known", "1"))
    assert client.get("/forms/known/versions/9/xform").status_code == 404
    assert client.get("/forms/known/versions/9/xlsform").status_code == 404


# -- refusals beside the file field --------------------------------------------------------


def test_a_broken_xlsform_is_shown_with_its_row_and_nothing_is_stored(client, world):
    signed_in(client, world.coordinator)
    broken = BILINGUAL.format(form_id="broken", version="1").replace("| | yn | no | No | Non |",
                                                                     "| | yn | yes | Yes | Oui |")
    page = upload_page(client, broken.encode())
    assert page.status_code == 422
    assert "Ligne 3" in page.text and "Feuille choices" in page.text and 'id="e-file"' in page.text and 'aria-invalid="true"' in page.text
    with session_scope(world.engine) as s:
        assert queries.get_form(s, "broken") is None


@pytest.mark.parametrize(("filename", "content", "status", "message"), [
    ("notes.txt", b"hello", 415, "pas un fichier de formulaire"),
    ("old.xls", b"\xd0\xcf\x11\xe0 old workbook", 415, "enregistrez le classeur en .xlsx"),
    ("form.xml", b"<html>not an xform</html>", 422, "XForm illisible"),
])
def test_wrong_files_are_refused_beside_the_field(client, world, filename, content, status, message):
    signed_in(client, world.coordinator)
    page = upload_page(client, content, filename)
    assert page.status_code == status and message in page.text and 'id="e-file"' in page.text


def test_an_unknown_kind_is_refused_beside_the_kind_and_kept(client, world):
    signed_in(client, world.coordinator)
    page = upload_page(client, simple_form("kinded", "1"), kind="gossip")
    assert page.status_code == 422 and 'id="e-kind"' in page.text and 'id="e-file"' not in page.text


def test_same_version_with_other_content_is_a_409_beside_the_field(client, world):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("conflicted", "1"))
    page = upload_page(client, simple_form("conflicted", "1", extra="| | integer | n | N |"))
    assert page.status_code == 409 and "a déjà une version 1" in page.text


def test_a_file_over_the_limit_and_a_missing_file_are_4xx(client, world, settings):
    signed_in(client, world.coordinator)
    big = upload_page(client, b"|" + b" " * (settings.max_form_bytes + 1), "big.md")
    assert big.status_code == 413 and 'id="e-file"' in big.text
    empty = client.post("/forms", files={"other": ("x.md", b"x", "text/plain")}, headers=SAME_ORIGIN)
    assert empty.status_code == 400 and "Choisissez un fichier" in empty.text


# -- one form -------------------------------------------------------------------------------


def test_close_and_reopen_as_the_api(client, world):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("closable", "1"))
    closed = client.post("/forms/closable/close", headers=SAME_ORIGIN, follow_redirects=False)
    assert closed.status_code == 303 and closed.headers["location"] == "/forms/closable?done=closed"
    assert client.get("/api/v1/forms/closable").json()["state"] == "closed"
    client.post("/forms/closable/open", headers=SAME_ORIGIN)
    assert client.get("/api/v1/forms/closable").json()["state"] == "open"


def test_labels_follow_the_users_language_and_media_are_listed(client, world):
    signed_in(client, world.coordinator)
    with_media = BILINGUAL.format(form_id="bilingual", version="1").replace(
        "| | image | photo | Photo | Photo |", "| | select_one_from_file places.csv | place | Place | Lieu |")
    upload_page(client, with_media.encode())
    page = client.get("/forms/bilingual")
    assert "Tout va bien ?" in page.text and "places.csv" in page.text and "Manquant" in page.text
    client.post("/language", data={"lang": "en", "next": "/"}, headers=SAME_ORIGIN)
    page = client.get("/forms/bilingual")
    assert "All good?" in page.text and "Missing" in page.text
    stored = client.post("/forms/bilingual/media", files={"file": ("local-name.csv", b"name,label\na,A\n", "text/csv")},
                         data={"name": "places.csv"}, headers=SAME_ORIGIN, follow_redirects=False)
    assert stored.status_code == 303
    media = client.get("/api/v1/forms/bilingual").json()["media"]
    assert [(m["filename"], m["size"]) for m in media] == [("places.csv", 15)]
    wrong = client.post("/forms/bilingual/media", files={"file": ("x.csv", b"a", "text/csv")},
                        data={"name": "other.csv"}, headers=SAME_ORIGIN)
    assert wrong.status_code == 422 and 'id="e-name"' in wrong.text


def test_pyxform_warnings_are_shown_with_their_rows_after_upload_and_per_version(client, world):
    signed_in(client, world.coordinator)
    warned = simple_form("warned", "1", extra="| | begin_repeat | pits | |\n| | integer | depth | Depth |\n| | end_repeat | | |")
    landing = upload_page(client, warned).headers["location"]
    page = client.get(landing).text
    assert '<span class="badge warn">Ligne 4</span> Repeat has no label' in page
    assert 'class="version-warnings"' in client.get("/forms/warned").text


def test_the_xform_download_is_the_apis_xform(client, world):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("downloadable", "2"))
    download = client.get("/forms/downloadable/versions/2/xform")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert download.content == client.get("/api/v1/forms/downloadable/versions/2.xml").content


def test_an_xlsx_workbook_uploads_like_the_markdown_form_and_downloads_again(client, world):
    signed_in(client, world.coordinator)
    workbook = xlsx_form("from_excel", "5")
    page = upload_page(client, workbook, "from_excel.xlsx")
    assert page.status_code == 303
    assert "Remarque" in client.get("/forms/from_excel").text
    download = client.get("/forms/from_excel/versions/5/xlsform")
    assert download.status_code == 200 and download.content == workbook
    assert 'filename*=UTF-8\'\'from_excel-5.xlsx' in download.headers["content-disposition"]


def test_an_xform_upload_has_no_xlsform_to_download(client, world):
    signed_in(client, world.coordinator)
    upload_page(client, simple_form("as_xml", "1"))
    xform = client.get("/forms/as_xml/versions/1/xform").content.replace(b'version="1"', b'version="2"')
    assert upload_page(client, xform, "as_xml.xml").status_code == 303
    assert client.get("/forms/as_xml/versions/2/xlsform").status_code == 404
    assert "/versions/2/xlsform" not in client.get("/forms/as_xml").text
    assert client.get("/forms/as_xml/versions/1/xlsform").status_code == 200  # the markdown form, as a workbook


def xlsx_form(form_id: str, version: str, *, broken: bool = False) -> bytes:
    """A small XLSForm workbook made with openpyxl (as a person saves one from a spreadsheet)."""
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label::English (en)", "label::Français (fr)"])
    survey.append(["text", "remark", "Remark", "Remarque"])
    survey.append(["select_one yn", "ok", "All good?", "Tout va bien ?"])
    survey.append(["begin_repeat", "pits", "", ""])  # no label: pyxform warns about row 4
    survey.append(["integer", "depth", "Depth", "Profondeur"])
    survey.append(["end_repeat", "", "", ""])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label::English (en)", "label::Français (fr)"])
    choices.append(["yn", "yes", "Yes", "Oui"])
    choices.append(["yn", "yes" if broken else "no", "No", "Non"])
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version"])
    settings.append([form_id, version])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- in the browser ------------------------------------------------------------------------


@pytest.mark.browser
def test_a_coordinator_uploads_a_broken_then_a_valid_xlsform_closes_reopens_and_downloads(web, tmp_path):
    form_id = f"essai_{uuid.uuid4().hex[:8]}"
    broken, valid = tmp_path / "broken.xlsx", tmp_path / "valid.xlsx"
    broken.write_bytes(xlsx_form(form_id, "1", broken=True))
    valid.write_bytes(xlsx_form(form_id, "1"))
    page = web.sign_in("coord")
    page.goto(web.url("/forms"))
    assert page.locator("h1").inner_text() == "Formulaires"
    web.check(page, "forms")

    page.set_input_files("#f-file", str(broken))
    page.click("form#upload button[type=submit]")
    assert page.locator("#e-file .badge.bad").inner_text() == "Ligne 3"
    assert "pyxform a refusé le XLSForm" in page.locator("#e-file").inner_text()
    assert page.locator("#f-file").get_attribute("aria-invalid") == "true"
    web.check(page, "upload-refused")

    page.set_input_files("#f-file", str(valid))
    page.select_option("#f-kind", "general")
    page.click("form#upload button[type=submit]")
    page.wait_for_url(f"**/forms/{form_id}?uploaded=1&outcome=created")
    assert page.locator("#result-title").inner_text() == "La version 1 est publiée."
    assert "Ligne 4" in page.locator("ul.warnings").inner_text()  # pyxform's warning with its row
    assert "Tout va bien ?" in page.locator("table.fields").inner_text()  # the form's own French labels
    web.check(page, "uploaded")

    page.goto(web.url("/forms"))
    assert page.locator(f"a[href='/forms/{form_id}']").count() == 1
    page.click(f"a[href='/forms/{form_id}']")
    page.click("text=Fermer le formulaire")
    assert page.locator("#state").inner_text() == "Fermé"
    assert api_json(page, f"/api/v1/forms/{form_id}")["state"] == "closed"
    web.check(page, "closed")
    page.click("text=Rouvrir le formulaire")
    assert page.locator("#state").inner_text() == "Ouvert"
    assert api_json(page, f"/api/v1/forms/{form_id}")["state"] == "open"

    with page.expect_download() as download:
        page.click("text=XForm (.xml)")
    xform = download.value.path().read_text("utf-8")
    assert xform == page.evaluate(f"fetch('/api/v1/forms/{form_id}/versions/1.xml').then(r => r.text())")


@pytest.mark.browser
def test_the_bundled_site_visit_form_in_english_with_its_generated_media(web):
    page = web.sign_in("admin", lang="en")
    page.goto(web.url("/forms"))
    assert page.locator("h1").inner_text() == "Forms"
    assert page.locator("text=Upload an XLSForm").count() == 1
    web.check(page, "forms-en")
    page.goto(web.url("/forms/asm_site_visit"))
    assert "Date of visit" in page.locator("table.fields").inner_text()
    media = page.locator("#media").inner_text()
    assert "sites.geojson" in media and "Generated by the server" in media
    with page.expect_download() as download:
        page.locator("a[href$='/xlsform']").first.click()
    assert download.value.path().read_bytes()[:2] == b"PK"  # the bundled XLSForm as a workbook
    web.check(page, "site-visit-en")


@pytest.mark.browser
def test_a_monitor_reads_site_forms_and_a_caseworker_case_forms_without_upload(web):
    page = web.sign_in("monitor1")
    page.goto(web.url("/forms"))
    listing = page.locator("main").inner_text()
    assert "asm_site_visit" in listing and "child_case_intake" not in listing
    assert page.locator("form#upload").count() == 0 and "Mes soumissions" in listing
    web.check(page, "forms-monitor")
    page.goto(web.url("/forms/asm_site_visit"))
    assert page.locator("text=Fermer le formulaire").count() == 0 and page.locator("form.media-upload").count() == 0
    web.check(page, "site-visit-monitor")

    other = web.sign_in("cw_kipaji", lang="en")
    other.goto(web.url("/forms"))
    listing = other.locator("main").inner_text()
    assert "child_case_intake" in listing and "asm_site_visit" not in listing and "Submissions" not in listing
    web.check(other, "forms-caseworker")
    other.click("a[href='/forms/child_case_intake']")
    assert other.locator("form.media-upload").count() == 0 and "Submissions" not in other.locator("main").inner_text()
    web.check(other, "case-intake-caseworker")
    response = other.goto(web.url("/forms/asm_site_visit"))
    assert response.status == 403
