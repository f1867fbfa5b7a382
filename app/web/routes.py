"""The web app's shell: sign in and out, the language switch, the account page, the API docs.

Each capability brings its own pages (``app.web.render``); this module holds what every user has.
Assets are served by us (offline users), and no page has inline script or style
(``app.http_security``'s Content-Security-Policy forbids them).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app import accounts
from app.assets import vendor_url
from app.auth import session_user
from app.csrf import check_csrf
from app.deps import SessionDep, SettingsDep
from app.errors import DomainError
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.lockout import check_lockout, record_failed_login
from app.routes import end_web_session, start_web_session
from app.web import i18n, people
from app.web.i18n import LANGUAGE_COOKIE, gettext
from app.web.render import WebActorDep, redirect, render, static_dirs, web_router

HERE = Path(__file__).resolve().parent
router = web_router()
#: the shell's own navigation entries (capabilities add theirs through ``Capability.nav``)
NAV = people.NAV  # "My account" is the person's name in the header


def safe_next(target: str | None) -> str:
    """Only a path on this server (no open redirect to another site after sign-in)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 -- the URL's own name
    return render(request, "login.html", {"error": None, "next": safe_next(next), "username": ""})


@router.post("/login", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def login_submit(request: Request, session: SessionDep, settings: SettingsDep, username: str = Form(""),
                 password: str = Form(""), next: str = Form("/")) -> Response:  # noqa: A002
    check_csrf(request, strict=False)
    context = {"next": safe_next(next), "username": username[:150]}
    try:
        check_lockout(session, request, username)
    except DomainError as exc:
        return render(request, "login.html", {**context, "error": exc.message}, status_code=429)
    user = accounts.authenticate(session, username, password) if username and password else None
    if user is None:
        record_failed_login(request, username, "password")
        return render(request, "login.html", {**context, "error": gettext("Wrong username or password.")},
                      status_code=401)
    response = redirect(safe_next(next))
    start_web_session(session, settings, request, response, user)
    if i18n.normalise(user.language):
        _remember_language(response, settings, user.language)
    return response


def _remember_language(response: Response, settings, language: str) -> None:  # noqa: ANN001
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax",
                        secure=settings.secure_cookies, path="/")


@router.post("/logout", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def logout_submit(request: Request, session: SessionDep) -> Response:
    check_csrf(request, strict=False)
    response = RedirectResponse("/login", status_code=303)
    end_web_session(session, request, response)
    return response


@router.post("/language", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def switch_language(request: Request, session: SessionDep, settings: SettingsDep, lang: str = Form(...),
                    next: str = Form("/")) -> Response:  # noqa: A002
    """Choose the pages' language: saved on the user when signed in, in a cookie otherwise."""
    check_csrf(request, strict=False)
    language = i18n.normalise(lang) or i18n.DEFAULT_LANGUAGE
    user = session_user(session, request)
    if user is not None and user.language != language:
        user.language = language
        session.add(user)
    response = redirect(safe_next(next))
    _remember_language(response, settings, language)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, actor: WebActorDep) -> Response:
    """The welcome page, when no capability serves a dashboard at ``/``."""
    return render(request, "home.html")


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, actor: WebActorDep) -> Response:
    return render(request, "account.html", {"errors": {}, "done": request.query_params.get("done")})


@router.post("/account/password", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def change_password(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                    current: str = Form(""), new: str = Form(""), confirm: str = Form("")) -> Response:
    """Change my password: every other session and API token ends (``accounts.set_password``); this
    browser gets a fresh session so the person stays signed in here."""
    errors: dict[str, str] = {}
    if accounts.authenticate(session, actor.user.username, current) is None:
        errors["current"] = gettext("This is not your current password.")
    elif new != confirm:
        errors["confirm"] = gettext("The two new passwords differ.")
    else:
        try:
            accounts.set_password(session, actor.user, new, actor=actor)
        except DomainError as exc:
            session.rollback()
            errors["new"] = exc.message
    if errors:
        return render(request, "account.html", {"errors": errors, "done": None}, status_code=400)
    response = redirect("/account?done=password")
    start_web_session(session, settings, request, response, actor.user)
    return response


@router.post("/account/sign-out-everywhere", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def sign_out_everywhere(request: Request, actor: WebActorDep, session: SessionDep,
                        devices: str | None = Form(None)) -> Response:
    accounts.sign_out_everywhere(session, actor, devices=devices == "on")
    response = RedirectResponse("/login", status_code=303)
    end_web_session(session, request, response)
    return response


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """Swagger UI from our own copy of swagger-ui-dist, started by /static/docs.js (FastAPI's default page
    loads it from a CDN and starts it with an inline script)."""
    return render(request, "docs.html", {"swagger": vendor_url("swagger-ui-dist"),
                                         "openapi_url": request.app.openapi_url})


def install(app: FastAPI) -> None:
    app.include_router(people.router)
    app.include_router(router)
    for package, directory in static_dirs().items():
        app.mount(f"/static/{package}", StaticFiles(directory=str(directory)), name=f"static-{package}")
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
