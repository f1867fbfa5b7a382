"""HTTP hardening shared by every route: security headers on every response, and JSON-only request bodies.

Headers (issue 9, finding 6): every response carries a Content-Security-Policy without inline script,
``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff`` and a ``Referrer-Policy``. A route that sets
one of these itself (media with ``Content-Security-Policy: sandbox``) keeps its own value.

Bodies (finding 13): a browser may send ``text/plain``, ``multipart/form-data`` or form-encoded bodies
cross-site without asking, with cached Basic credentials. So an unsafe request with a body is refused with
415 unless its Content-Type is one the route declares; a route that declares nothing takes JSON only. Routes
that take another body say so with ``openapi_extra=takes(...)`` (which also documents it in OpenAPI), or by
having ``Form``/``File`` parameters. A body of a type another site's page can send without asking (forms,
text/plain) must moreover not come from another site's page (``app.csrf.check_csrf``), whatever the
credentials: tablets and scripts send no Origin. The check is an app-wide dependency, so a new route cannot
forget it.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi import params as fastapi_params
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.csrf import check_csrf
from app.errors import UnsupportedMedia

#: Scripts, styles, fonts and fetches from our own origin only; no plugins, no <base>, no framing, forms post
#: to us. Images may also be data:/blob: URLs (Swagger UI's icons, Leaflet, photo previews). Map tiles, when
#: a tile server is configured (ASMFIELD_TILE_URL), are allowed by ``content_security_policy``.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])

#: Added to every response that does not set the header itself. ``same-origin`` (not ``no-referrer``):
#: browsers then still send our Origin on our own form posts, which the CSRF check needs.
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


@cache
def content_security_policy(tile_url: str | None = None) -> str:
    """The policy, with the origin of the online tile server (``Settings.tile_url``) added to img-src."""
    if not tile_url:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(tile_url)
    origin = f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"  # {s}.tile.example.org: any subdomain
    return CONTENT_SECURITY_POLICY.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {origin}")


def add_security_headers(headers: MutableHeaders, policy: str = CONTENT_SECURITY_POLICY) -> None:
    """Set every security header the response does not set itself."""
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = policy if name == "content-security-policy" else value


class SecurityHeaders:
    """ASGI middleware: ``add_security_headers`` on every HTTP response (pages, API, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        policy = content_security_policy(getattr(settings, "tile_url", None))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- request bodies ----------------------------------------------------------------------

JSON = "application/json"
FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
ANY = "*/*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Body types a browser sends cross-site without a CORS preflight.
CROSS_SITE_TYPES = frozenset({FORM_URLENCODED, MULTIPART, "text/plain"})


def takes(*media_types: str, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is not JSON, e.g. ``takes("multipart/form-data")``;
    ``takes("*/*")`` for raw bytes of any type. Documents the body and lets these types through."""
    content = {t: {"schema": {"type": "object"} if t == MULTIPART else {"type": "string", "format": "binary"}}
               for t in media_types}
    return {"requestBody": {"required": required, "content": content}}


def declared_body_types(route: Any) -> tuple[str, ...]:
    """The request body types ``route`` takes: its ``takes(...)`` declaration, form types for routes with
    ``Form``/``File`` parameters, otherwise JSON."""
    extra = getattr(route, "openapi_extra", None) or {}
    content = (extra.get("requestBody") or {}).get("content")
    if content:
        return tuple(content)
    body_field = getattr(route, "body_field", None)
    if body_field is not None and isinstance(body_field.field_info, fastapi_params.Form):
        return (FORM_URLENCODED, MULTIPART)
    return (JSON,)


def media_type_matches(content_type: str, accepted: tuple[str, ...]) -> bool:
    """Whether a Content-Type header (parameters such as charset ignored) is one of ``accepted``;
    ``application/json`` also accepts ``application/*+json``."""
    mime = content_type.split(";", 1)[0].strip().lower()
    for expected in accepted:
        if expected == ANY or mime == expected:
            return True
        if expected == JSON and mime.startswith("application/") and mime.endswith("+json"):
            return True
        if expected.endswith("/*") and mime.startswith(expected[:-1]):
            return True
    return False


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


async def require_declared_body_type(request: Request) -> None:
    """App-wide dependency: 415 for an unsafe request whose body is not of a type the route declares, 403
    for a form or text body sent by another site's page.

    Bodyless requests (close, open, logout) need no Content-Type. Runs before the route's own
    dependencies and handler, so nothing is authenticated, read or stored.
    """
    check_body_type(request, declared_body_types(request.scope.get("route")))


def check_body_type(request: Request, accepted: tuple[str, ...]) -> None:
    """``require_declared_body_type`` for a route that takes ``accepted`` (plain routes outside FastAPI's
    table call it themselves)."""
    if request.method in SAFE_METHODS or not _has_body(request):
        return
    content_type = request.headers.get("content-type", "")
    if media_type_matches(content_type, accepted):
        if content_type.split(";", 1)[0].strip().lower() in CROSS_SITE_TYPES:
            check_csrf(request, strict=False)
        return
    received = content_type[:100] or "a body without Content-Type"
    raise UnsupportedMedia(f"this endpoint takes {' or '.join(accepted)}, not {received}",
                           code="request.unsupported_media_type",
                           details={"expected": list(accepted), "received": content_type[:100] or None})
