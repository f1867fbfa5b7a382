"""gzip for what browsers load on slow links (pages, scripts, styles, map GeoJSON), and only that.

OpenRosa and sync requests, media and blobs pass untouched: tablets send and fetch mostly
compressed images, and the sync hot path should not pay for compression of a 201.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

#: path prefixes never compressed (sync, OpenRosa, media and blob transfers, exports already zipped)
PASS_THROUGH = ("/submission", "/key/", "/formList", "/forms/", "/api/v1/sync", "/api/v1/blobs", "/api/v1/media",
                "/media/", "/tiles/")
#: static files are cached for a year when their URL carries the content hash (``static_url``)
IMMUTABLE = "public, max-age=31536000, immutable"
#: exports that are already compressed containers (zip, xlsx, GeoPackage) and background export files
#: pass untouched too: gzip would only spend CPU and hold back the first bytes of a streamed download
PACKED_SUFFIXES = (".zip", ".xlsx", ".gpkg")
EXPORT_FILES = "/api/v1/exports/"


class CompressPages:
    def __init__(self, app: ASGIApp, minimum_size: int = 1024) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith("/static/"):
            send = _cache_static(scope, send)
        if (path.startswith(PASS_THROUGH) or "/photos/" in path or path.endswith(PACKED_SUFFIXES)
                or (path.startswith(EXPORT_FILES) and path.endswith("/file"))):
            await self.app(scope, receive, send)
        else:
            await self.gzip(scope, receive, send)


def _cache_static(scope: Scope, send: Send) -> Send:
    versioned = b"v=" in scope.get("query_string", b"") or scope.get("path", "").startswith("/static/vendor/")

    async def sender(message: dict) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 200:
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            headers.append((b"cache-control", IMMUTABLE.encode() if versioned else b"no-cache"))
            message = {**message, "headers": headers}
        await send(message)

    return sender
