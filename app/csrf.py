"""Cross-site request forgery: an unsafe request a browser sent on behalf of another site is
refused (the second lock after SameSite=Strict session cookies)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from app.errors import Forbidden

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def same_origin(request: Request) -> bool | None:
    """Whether the request comes from one of our own pages: True, False, or None when the
    browser sent neither ``Origin`` nor ``Referer`` (old browsers, privacy settings)."""
    origin = request.headers.get("origin")
    source = origin if origin and origin != "null" else request.headers.get("referer")
    if not source:
        return False if origin == "null" else None
    netloc = urlsplit(source).netloc.lower()
    allowed = {(request.headers.get("host") or "").lower()}
    base_url = request.app.state.settings.base_url
    if base_url:
        allowed.add(urlsplit(base_url).netloc.lower())
    return netloc in allowed


def check_csrf(request: Request, *, strict: bool) -> None:
    """Refuse an unsafe request that a browser sent on behalf of another site.

    Session cookies are SameSite=Strict already; this is the second lock. With ``strict``
    (JSON API calls authenticated by cookie), a request without Origin/Referer must carry
    ``X-Requested-With`` (a header no other site can make a browser send without CORS,
    which this server never grants).
    """
    if request.method in SAFE_METHODS:
        return
    verdict = same_origin(request)
    if verdict is False or (verdict is None and strict and "x-requested-with" not in request.headers):
        raise Forbidden(
            "cross-site request refused: send it from this server's pages, or add an X-Requested-With header",
            code="auth.csrf",
        )
