"""Rendering web pages: one Jinja2 environment for every package, the signed-in user, the language.

A capability brings its pages as a router made by ``web_router()`` with templates in
``<package>/templates/<package>/`` and scripts/styles in ``<package>/static/`` (served under
``/static/<package>/``). Page handlers take ``WebActorDep`` (the signed-in person; anonymous
visitors are sent to ``/login?next=…``) and return ``render(request, "pkg/page.html", {...})``.

Refusals raised by services (``DomainError``) on these routes become an HTML error page with the
same status, in the user's language; a handler that wants to show the refusal next to a form field
catches it, calls ``session.rollback()`` and renders the form again with the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from app.assets import vendor_url
from app.auth import session_user
from app.db import PACKAGES, ROOT
from app.deps import SessionDep, client_addr
from app.errors import DomainError
from app.identity import Actor
from app.models import Organisation
from app.web import charts, i18n
from app.web.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, LANGUAGES, N_, gettext, ngettext

HERE = Path(__file__).resolve().parent
#: role -> its name on pages (message ids; README's roles table)
ROLE_NAMES = {"admin": N_("Administrator"), "coordinator": N_("Coordinator"), "monitor": N_("Field monitor"),
              "caseworker": N_("Caseworker")}


def template_dirs() -> list[str]:
    dirs = [HERE / "templates"] + [ROOT / p / "templates" for p in PACKAGES if p != "app"]
    return [str(d) for d in dirs if d.is_dir()]


def static_dirs() -> dict[str, Path]:
    """``/static/<package>/`` -> ``<package>/static`` for every capability package that has one."""
    return {p: ROOT / p / "static" for p in PACKAGES if p != "app" and (ROOT / p / "static").is_dir()}


@lru_cache(maxsize=2048)
def _file_version(path: str) -> str:
    file = HERE / "static" / path
    parts = path.split("/", 1)
    if not file.is_file() and len(parts) == 2 and parts[0] in static_dirs():
        file = static_dirs()[parts[0]] / parts[1]
    return hashlib.sha256(file.read_bytes()).hexdigest()[:10] if file.is_file() else "0"


def static_url(path: str) -> str:
    """A long-cacheable URL for one of our static files: its content hash is in the query string."""
    return f"/static/{path}?v={_file_version(path)}"


def _environment() -> Environment:
    env = Environment(loader=ChoiceLoader([FileSystemLoader(template_dirs())]),
                      autoescape=select_autoescape(["html", "xml", "svg"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: i18n.translations(i18n.current_language()).gettext(message),
        lambda singular, plural, n: i18n.translations(i18n.current_language()).ngettext(singular, plural, n),
        newstyle=True)
    env.globals.update(static_url=static_url, vendor_url=vendor_url, LANGUAGES=LANGUAGES, charts=charts)
    env.filters["role_name"] = lambda role: gettext(ROLE_NAMES.get(role, role))
    return env


templates = Jinja2Templates(env=_environment())


# -- who and which language ------------------------------------------------------------


class SignInRequired(Exception):
    """Raised by ``web_actor`` for an anonymous visitor; web routes answer with a redirect to /login."""


def request_language(request: Request, actor: Actor | None = None) -> str:
    """The user's saved choice, else the language cookie, else the browser's first supported, else French.

    Signing in copies the user's choice into the cookie, so requests that know only the cookie agree.
    """
    if actor is not None and i18n.normalise(getattr(actor.user, "language", None)):
        return i18n.normalise(actor.user.language) or DEFAULT_LANGUAGE
    cookie = i18n.normalise(request.cookies.get(LANGUAGE_COOKIE))
    if cookie:
        return cookie
    for part in request.headers.get("accept-language", "").split(","):
        code = i18n.normalise(part.split(";")[0])
        if code:
            return code
    return DEFAULT_LANGUAGE


def web_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in person of a web page (session cookie only: pages are for people, not tokens)."""
    user = session_user(session, request)
    if user is None:
        raise SignInRequired()
    actor = Actor(user=user, via="session", client_addr=client_addr(request))
    request.state.actor = actor
    request.state.db = session
    i18n.set_language(request_language(request, actor))
    return actor


WebActorDep = Annotated[Actor, Depends(web_actor)]


def require(actor: Actor, *roles: str) -> None:
    """Refuse a page to roles that may not see it (an HTML 403 page through ``WebRoute``)."""
    if not actor.has_role(*roles):
        raise DomainError(gettext("This page is not available to your role."), code="auth.forbidden",
                          status_code=403)


# -- navigation ------------------------------------------------------------------------


@dataclass(frozen=True)
class NavLink:
    """An entry of the top navigation; ``label`` is an English message id (translated when shown)."""

    path: str
    label: str
    roles: tuple[str, ...] = ("admin", "coordinator", "monitor", "caseworker")
    order: int = 50


def nav_for(request: Request, actor: Actor) -> list[dict[str, Any]]:
    links: list[NavLink] = getattr(request.app.state, "nav", [])
    here = request.url.path
    shown = []
    for link in sorted(links, key=lambda item: item.order):
        if actor.role not in link.roles:
            continue
        current = here == link.path or (link.path != "/" and here.startswith(link.path + "/"))
        shown.append({"path": link.path, "label": gettext(link.label), "current": current})
    return shown


# -- rendering -------------------------------------------------------------------------


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render ``template`` for this request: the user, navigation and language are in every page."""
    actor: Actor | None = getattr(request.state, "actor", None)
    i18n.set_language(request_language(request, actor))
    session = getattr(request.state, "db", None)
    organisation = None
    if actor is not None and session is not None:
        organisation = session.get(Organisation, actor.organisation_id)
    base = {
        "actor": actor,
        "user": actor.user if actor else None,
        "organisation": organisation,
        "lang": i18n.current_language(),
        "nav": nav_for(request, actor) if actor else [],
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "_n": ngettext,
    }
    base.update(context or {})
    response = templates.TemplateResponse(request, template, base, status_code=status_code, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")  # pages can hold personal data
    return response


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see the result with a GET (303), so reloading does not send it again."""
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {400: gettext("This request cannot be processed"), 403: gettext("Not allowed"),
              404: gettext("Not found"), 409: gettext("Conflict"), 413: gettext("Too large"),
              429: gettext("Too many attempts")}
    return render(request, "error.html", {"status": status, "title": titles.get(status, gettext("Refused")),
                                          "message": message}, status_code=status)


class WebRoute(APIRoute):
    """A page route: anonymous visitors are sent to sign in, refusals are an HTML page, not JSON."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            # Set here, on the event loop, so the threads that run the dependencies and the handler
            # inherit it (a context variable set inside one of those threads would not come back).
            i18n.set_language(request_language(request))
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            except DomainError as exc:
                return error_page(request, exc.status_code, exc.message)

        return page_handler


def web_router(**kwargs: Any) -> APIRouter:
    """The router for a package's pages (not in the OpenAPI schema; HTML errors; sign-in redirects)."""
    return APIRouter(include_in_schema=False, route_class=WebRoute, **kwargs)


def field_errors(exc: DomainError, default_field: str) -> dict[str, str]:
    """A refusal as ``{field: message}`` for re-rendering a form (the details' field if the service named one)."""
    field = (exc.details or {}).get("field") or default_field
    return {str(field): exc.message}
