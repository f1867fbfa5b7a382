"""Issue 9, finding 6 (media part): attachments never run as active content on our origin. Every
media response carries ``nosniff`` and ``Content-Security-Policy: default-src 'none'; sandbox``;
only images Pillow checked (JPEG, PNG, WebP, GIF) are inline, typed by their checked format;
anything else (HTML, SVG...) is ``Content-Disposition: attachment``."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import select

from app.db import session_scope
from forms import service as forms_service
from forms.service import IncomingMedia
from sync.models import SubmissionAttachment
from sync.submission_xml import build_instance_xml
from tests.factories import CASE_MD, add_form, case_data, new_instance_id, photo, sha256, visit_data
from tests.sync.factories import multipart_typed

HTML = b"<html><body><script>fetch('/api/v1/cases').then(r => r.text()).then(alert)</script></body></html>"
SVG = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(document.cookie)</script></svg>"


def assert_sandboxed(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy


def assert_downloaded(response) -> None:
    assert_sandboxed(response)
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert not response.headers["content-type"].startswith(("text/html", "image/svg"))


def post_visit(client, person, version, files: dict[str, tuple[bytes, str]]) -> None:
    """A site visit whose photo questions name ``files`` (name -> content, declared type)."""
    names = list(files)
    xml = build_instance_xml(version, visit_data(photo_name=names[0], pit_photos=names[1:]), new_instance_id())
    body, headers = multipart_typed(xml, [(name, content, declared) for name, (content, declared) in files.items()])
    response = client.post("/submission", content=body, headers=headers | person.basic)
    assert response.status_code == 201, response.text


def test_html_and_svg_attachments_are_downloads_never_pages(client, world, visit_version):
    post_visit(client, world.monitor, visit_version, {"page.html": (HTML, "text/html"),
                                                      "icon.svg": (SVG, "image/svg+xml")})
    for content in (HTML, SVG):
        response = client.get(f"/api/v1/media/{sha256(content)}", headers=world.monitor.bearer)
        assert response.status_code == 200 and response.content == content
        assert_downloaded(response)
        assert f'filename="{sha256(content)}"' in response.headers["content-disposition"]
        assert response.headers["content-type"] == "application/octet-stream"


def test_checked_images_are_inline_typed_by_their_format_not_their_declared_type(client, world, visit_version):
    png = io.BytesIO()
    Image.new("RGB", (50, 40), "purple").save(png, format="PNG")
    jpeg = photo(51)
    post_visit(client, world.monitor, visit_version, {"site.jpg": (png.getvalue(), "image/jpeg"),
                                                      "pit.html": (jpeg, "text/html")})
    for content, served in ((png.getvalue(), "image/png"), (jpeg, "image/jpeg")):
        response = client.get(f"/api/v1/media/{sha256(content)}", headers=world.monitor.bearer)
        assert response.status_code == 200 and response.headers["content-type"] == served
        assert_sandboxed(response)
        assert response.headers["content-disposition"].startswith("inline")
        thumb = client.get(f"/api/v1/media/{sha256(content)}", params={"size": "thumb"}, headers=world.monitor.bearer)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert_sandboxed(thumb)
        etag = response.headers["etag"]
        cached = client.get(f"/api/v1/media/{sha256(content)}", headers=world.monitor.bearer | {"If-None-Match": etag})
        assert cached.status_code == 304
        assert_sandboxed(cached)


#: A form whose notes show media files (so it has a manifest naming them).
MEDIA_MD = """
| survey |
| | type | name | label | image |
| | note | n1 | Hello | evil.html |
| | note | n2 | Hi | logo.svg |
| | note | n3 | Hey | logo.png |
| settings |
| | form_id | version | name |
| | with_media | 1 | with_media |
"""


def test_form_attachments_are_served_the_same_way(client, world, app, engine, settings):
    png = io.BytesIO()
    Image.new("RGB", (20, 20), "green").save(png, format="PNG")
    with session_scope(engine) as s:
        form, _ = add_form(s, blobs=app.state.blobs, settings=settings, md=MEDIA_MD, kind="general")
        for name, content in (("evil.html", HTML), ("logo.svg", SVG), ("logo.png", png.getvalue())):
            forms_service.add_media(s, blobs=app.state.blobs, settings=settings, actor=None, form=form,
                                    upload=IncomingMedia(filename=name, content=content))
    for name in ("evil.html", "logo.svg"):
        response = client.get(f"/forms/with_media/attachments/{name}", headers=world.monitor.basic)
        assert response.status_code == 200
        assert_downloaded(response)
        assert f'filename="{name}"' in response.headers["content-disposition"]
    image = client.get("/forms/with_media/attachments/logo.png", headers=world.monitor.basic)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert_sandboxed(image)


def test_case_photos_carry_the_same_headers(client, world, app, engine, settings):
    with session_scope(engine) as s:
        _, version = add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
        xml = build_instance_xml(version, case_data(child_photo="child.jpg"), new_instance_id())
    body, headers = multipart_typed(xml, [("child.jpg", photo(52), "image/jpeg")])
    assert client.post("/submission", content=body, headers=headers | world.caseworker_a.basic).status_code == 201
    cases = client.get("/api/v1/cases", headers=world.caseworker_a.bearer).json()["cases"]
    response = client.get(f"/api/v1/cases/{cases[0]['code']}/photos/child.jpg", headers=world.caseworker_a.bearer)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert_sandboxed(response)
    assert response.headers["cache-control"] == "private, no-store"
    with session_scope(engine) as s:
        assert s.exec(select(SubmissionAttachment)).one().received
