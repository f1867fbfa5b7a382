"""Web pages: login/logout, the coordinator's home page and the API docs. Assets are served by us (offline
users), and no page has inline script or style (app.http_security's Content-Security-Policy forbids them)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import accounts
from app.assets import vendor_url
from app.auth import session_user
from app.csrf import check_csrf
from app.deps import SessionDep, SettingsDep
from app.errors import DomainError
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.lockout import check_lockout, record_failed_login
from app.models import Organisation
from app.routes import end_web_session, start_web_session

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
def login_submit(request: Request, session: SessionDep, settings: SettingsDep,
                 username: str = Form(""), password: str = Form("")) -> Response:
    check_csrf(request, strict=False)
    try:
        check_lockout(session, request, username)
    except DomainError as exc:
        return templates.TemplateResponse(request, "login.html", {"error": exc.message}, status_code=429)
    user = accounts.authenticate(session, username, password) if username and password else None
    if user is None:
        record_failed_login(request, username, "password")
        return templates.TemplateResponse(request, "login.html", {"error": "Wrong username or password."},
                                          status_code=401)
    response = RedirectResponse("/", status_code=303)
    start_web_session(session, settings, request, response, user)
    return response


@router.post("/logout", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def logout_submit(request: Request, session: SessionDep) -> Response:
    check_csrf(request, strict=False)
    response = RedirectResponse("/login", status_code=303)
    end_web_session(session, request, response)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    user = session_user(session, request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    org = session.get(Organisation, user.organisation_id)
    return templates.TemplateResponse(request, "home.html", {"user": user, "org": org})


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """Swagger UI from our own copy of swagger-ui-dist, started by /static/docs.js (FastAPI's default page
    loads it from a CDN and starts it with an inline script)."""
    return templates.TemplateResponse(request, "docs.html", {"swagger": vendor_url("swagger-ui-dist"),
                                                             "openapi_url": request.app.openapi_url})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
