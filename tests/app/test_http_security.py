"""Security headers on every response (issue 9, finding 6) and JSON-only request bodies (finding 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from sqlmodel import select

from app.assets import vendor_url
from app.db import session_scope
from app.http_security import CONTENT_SECURITY_POLICY, JSON, declared_body_types, media_type_matches
from app.web.render import WebRoute
from sync.models import Submission
from tests.app.factories import SAME_ORIGIN, login
from tests.factories import VISIT_MD, add_form, batch_item, new_instance_id, visit_data

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "web" / "templates"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def assert_security_headers(response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


# -- finding 6: headers and pages -----------------------------------------------------------


def test_the_policy_allows_no_inline_script_no_framing_and_no_foreign_origin():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["img-src"] == "'self' data: blob:"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


def test_every_kind_of_response_carries_the_security_headers(client, world):
    """Finding 6: pages, JSON, OpenRosa XML, static files and refusals alike."""
    responses = [
        client.get("/login"),
        client.get("/docs"),
        client.get("/openapi.json"),
        client.get("/static/app.css"),
        client.get("/api/v1/me", headers=world.monitor.bearer),
        client.get("/api/v1/me"),  # 401
        client.get("/nowhere"),  # 404
        client.get("/formList", headers=world.monitor.basic | {"X-OpenRosa-Version": "1.0"}),
        client.get("/", headers={"X-Big": "x" * 40_000}),  # 431, answered before routing
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 401, 404, 200, 431]
    for response in responses:
        assert_security_headers(response)


def test_a_route_that_sets_its_own_policy_keeps_it(app, client):
    """Media routes answer with ``Content-Security-Policy: sandbox``; the app-wide policy must not replace it."""
    app.add_api_route("/own-policy", lambda: Response("x", headers={"Content-Security-Policy": "sandbox"}))
    response = client.get("/own-policy")
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_unexpected_error_also_carries_the_headers(app, world):
    from fastapi.testclient import TestClient

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    assert_security_headers(response)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_no_inline_script_style_or_handlers(template):
    html = (TEMPLATES / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"<style\b", html), "inline <style>"
    assert not re.search(r"\sstyle\s*=", html), "style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "on*= event handler"
    assert "javascript:" not in html


def test_pages_as_served_have_no_inline_script(client, world):
    login(client)
    for path in ("/login", "/", "/docs"):
        html = client.get(path).text
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all("src=" in tag for tag in scripts), (path, scripts)
        assert not re.search(r"\s(on[a-z]+|style)\s*=", html), path


def test_docs_serve_swagger_ui_from_our_own_static_files(client):
    """Finding 6: /docs loads Swagger UI from /static/vendor (installed from npm), never from a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    base = vendor_url("swagger-ui-dist")
    assert sorted(assets) == sorted([f"{base}/swagger-ui.css", f"{base}/favicon-32x32.png",
                                     f"{base}/swagger-ui-bundle.js", "/static/docs.js"])
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert 'data-openapi-url="/openapi.json"' in page.text
    assert "validatorUrl: null" in client.get("/static/docs.js").text  # no call to the online validator


def test_redoc_is_not_served(client):
    """FastAPI's /redoc page would load its script from a CDN."""
    assert client.get("/redoc").status_code == 404


# -- finding 13: JSON bodies only --------------------------------------------------------------


def unsafe_routes(app) -> list[tuple[str, str, APIRoute]]:
    """(method, path as served, route) of every unsafe operation, including routes of included routers."""
    return sorted(((method, c.path, c.original_route) for c in iter_route_contexts(app.routes)
                   if isinstance(c.original_route, APIRoute) for method in (c.methods or set()) & UNSAFE),
                  key=lambda r: (r[1], r[0]))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def json_routes(app) -> list[tuple[str, str]]:
    return [(m, p) for m, p, r in unsafe_routes(app) if declared_body_types(r) == (JSON,)]


def test_only_these_routes_take_a_body_other_than_json(app):
    """Finding 13: a new API route takes JSON only unless it declares another type (this list is a review
    point). Web pages post HTML forms: they are ``WebRoute``s (sign-in required, same-origin forms only)
    and are listed by the next test instead."""
    others = {(m, p): declared_body_types(r) for m, p, r in unsafe_routes(app)
              if declared_body_types(r) != (JSON,) and not isinstance(r, WebRoute)}
    assert others == {
        ("POST", "/api/v1/forms"): ("multipart/form-data",),
        ("POST", "/api/v1/forms/{xml_form_id}/media"): ("multipart/form-data",),
        ("PUT", "/api/v1/blobs/{sha256}"): ("*/*",),
        ("POST", "/api/v1/sites/import"): ("application/x-www-form-urlencoded", "multipart/form-data"),
        ("POST", "/submission"): ("multipart/form-data",),
        ("POST", "/key/{device_token}/submission"): ("multipart/form-data",),
    }
    assert ("POST", "/api/v1/sync/batches") in json_routes(app)


def test_web_pages_that_take_forms_are_page_routes_outside_the_api(app):
    """Every unsafe route that takes an HTML form and is not in the list above is a web page route:
    not under /api/, not in the OpenAPI schema, and answering refusals as HTML."""
    pages = [(m, p, r) for m, p, r in unsafe_routes(app) if isinstance(r, WebRoute)]
    assert {("POST", "/login"), ("POST", "/logout"), ("POST", "/language")} <= {(m, p) for m, p, _ in pages}
    for method, path, route in pages:
        assert not path.startswith("/api/") and route.include_in_schema is False, (method, path)


@pytest.mark.parametrize(("content_type", "ok"), [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    ("Application/JSON;charset=UTF-8", True),
    ("application/merge-patch+json", True),
    ("text/plain", False),
    ("text/plain; charset=utf-8", False),
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False),
    ("application/jsonp", False),
    ("text/json", False),
    ("", False),
])
def test_which_content_types_count_as_json(content_type, ok):
    assert media_type_matches(content_type, (JSON,)) is ok


def test_every_json_route_refuses_other_bodies_with_415_and_takes_json(app, client, world):
    """Finding 13: each JSON route answers 415 to text/plain, form-encoded or untyped bodies, and
    gets past that check with application/json (whatever it then answers)."""
    routes = json_routes(app)
    assert len(routes) >= 15
    body = json.dumps({}).encode()
    for method, path in routes:
        url = concrete(path)
        for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None):
            headers = world.admin.bearer | ({"Content-Type": content_type} if content_type else {})
            response = client.request(method, url, content=body, headers=headers)
            assert response.status_code == 415, (method, path, content_type, response.text)
            error = response.json()["error"]
            assert error["code"] == "request.unsupported_media_type"
            assert "application/json" in error["message"] and error["details"]["expected"] == ["application/json"]
        for content_type in ("application/json", "application/json; charset=utf-8"):
            response = client.request(method, url, content=body, headers=world.admin.bearer | {"Content-Type": content_type})
            assert response.status_code != 415, (method, path, content_type, response.text)


def test_bodyless_posts_need_no_content_type(client, world, engine, app, settings):
    """Close/open, logout and the like carry no body, so no Content-Type is asked for."""
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings)
    assert client.post("/api/v1/forms/field_visit/close", headers=world.admin.bearer).status_code == 200
    assert client.post("/api/v1/forms/field_visit/open", headers=world.admin.bearer).status_code == 200
    login(client)
    assert client.post("/logout", headers=SAME_ORIGIN, follow_redirects=False).status_code == 303
    assert client.post("/api/v1/logout", headers=world.admin.bearer).status_code == 200


def test_cross_site_text_plain_batch_with_basic_credentials_stores_nothing(client, world, engine, app, settings):
    """Finding 13: what a cross-site form or no-cors fetch can send (text/plain, browser-cached Basic)
    is refused; the same batch as application/json is stored."""
    with session_scope(engine) as s:
        add_form(s, blobs=app.state.blobs, settings=settings)
    body = json.dumps({"items": [batch_item(new_instance_id(), data=visit_data())]})
    forged = client.post("/api/v1/sync/batches", content=body,
                         headers=world.monitor.basic | {"Content-Type": "text/plain;charset=UTF-8",
                                                        "Origin": "https://evil.example"})
    assert forged.status_code == 415
    assert forged.json()["error"]["code"] == "request.unsupported_media_type"
    with session_scope(engine) as s:
        assert s.exec(select(Submission)).all() == []
    sent = client.post("/api/v1/sync/batches", content=body,
                       headers=world.monitor.basic | {"Content-Type": "application/json"})
    assert [r["status"] for r in sent.json()["results"]] == ["created"]


def test_other_body_routes_keep_working(client, world):
    """Multipart form upload, raw blob PUT (any type) and the web login form are not JSON and still work;
    a JSON body where multipart is declared is refused by the same rule."""
    upload = client.post("/api/v1/forms", files={"file": ("visit.md", VISIT_MD.encode(), "text/markdown")},
                         headers=world.admin.bearer)
    assert upload.status_code == 201, upload.text
    refused = client.post("/api/v1/forms", json={"file": "x"}, headers=world.admin.bearer)
    assert refused.status_code == 415 and "multipart/form-data" in refused.json()["error"]["message"]
    assert login(client).status_code == 303


def test_cross_site_form_uploads_with_basic_credentials_are_refused(client, world, engine):
    """Finding 13, the other types a browser sends cross-site without asking: a page elsewhere posting a
    multipart form (form upload, OpenRosa submission) with browser-cached Basic credentials gets 403 and
    stores nothing; tablets and scripts send no Origin and are unaffected (test above)."""
    evil = {"Origin": "https://evil.example"}
    upload = client.post("/api/v1/forms", files={"file": ("visit.md", VISIT_MD.encode(), "text/markdown")},
                         headers=world.admin.basic | evil)
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "auth.csrf"
    assert client.get("/api/v1/forms", headers=world.admin.basic).json()["forms"] == []
    submission = client.post("/submission", files={"xml_submission_file": ("s.xml", b"<data/>", "text/xml")},
                             headers=world.monitor.basic | evil | {"X-OpenRosa-Version": "1.0"})
    assert submission.status_code == 403 and submission.headers["content-type"].startswith("text/xml")
    with session_scope(engine) as s:
        assert s.exec(select(Submission)).all() == []


def test_openrosa_submission_with_a_wrong_type_is_an_openrosa_415(client, world):
    """The type check runs before the OpenRosa route marks the request; its answer is still OpenRosa XML."""
    response = client.post("/submission", content=b"<data/>",
                           headers=world.monitor.basic | {"Content-Type": "text/plain", "X-OpenRosa-Version": "1.0"})
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("text/xml")
    assert "multipart/form-data" in response.text and "X-OpenRosa-Version" in response.headers
