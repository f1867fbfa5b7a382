"""Which responses the web shell gzips: text for browsers yes; packed exports, sync and media no."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.web.compression import CompressPages

BODY = b"site_code,stage\n" + b"KOL-0001,3\n" * 500


def _body(request):  # noqa: ANN001, ANN202 (a Starlette endpoint)
    return Response(BODY, media_type="application/octet-stream")


@pytest.fixture
def client():
    app = Starlette(routes=[Route("/{path:path}", _body)])
    return TestClient(CompressPages(app))


@pytest.mark.parametrize("path", ["/api/v1/forms/asm_site_visit/export.csv", "/api/v1/forms/asm_site_visit/export.geojson",
                                  "/sites", "/api/v1/map/sites"])
def test_text_for_browsers_and_analysts_is_gzipped(client, path):
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip" and response.content == BODY


@pytest.mark.parametrize("path", ["/api/v1/forms/asm_site_visit/export.zip", "/api/v1/forms/asm_site_visit/export.xlsx",
                                  "/api/v1/forms/asm_site_visit/export.gpkg", "/api/v1/exports/7/file",
                                  "/key/abc/submission", "/api/v1/sync/batches", "/media/x.jpg"])
def test_packed_exports_sync_and_media_pass_untouched(client, path):
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers and response.content == BODY
