"""Accounts, sessions, health and audit routes (thin: parse, authorise, call ``app.accounts``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import select

from app import accounts, audit
from app.auth import SESSION_COOKIE, AdminActor, ApiActor, StaffActor
from app.collect import collect_settings, device_server_url, encode_settings
from app.csrf import check_csrf
from app.deps import SessionDep, SettingsDep, client_addr
from app.errors import Forbidden, NotFound, Unauthorized
from app.identity import Actor, Role
from app.lockout import check_lockout, record_failed_login
from app.models import ApiToken, AuditLog, Device, User, WebSession
from app.schemas import (
    AuditEntryPublic,
    DeviceCreate,
    DeviceCreated,
    DevicePublic,
    HealthStatus,
    LoginBody,
    LoginResult,
    LogoutResult,
    Me,
    OrganisationCreate,
    OrganisationPublic,
    ReadyStatus,
    SignedOutEverywhere,
    SignOutEverywhere,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    TokenRevoked,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from app.security import token_hash
from app.timeutil import utcnow

router = APIRouter()


def public_base_url(request: Request, settings) -> str:  # noqa: ANN001
    return (settings.base_url or str(request.base_url)).rstrip("/")


# -- health ------------------------------------------------------------------------------


@router.get("/healthz", tags=["health"])
def healthz() -> HealthStatus:
    """The process is up."""
    return HealthStatus(status="ok")


@router.get("/readyz", tags=["health"], response_model=ReadyStatus,
            responses={503: {"model": ReadyStatus, "description": "The database does not answer."}})
def readyz(request: Request) -> Response:
    """The database answers."""
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 -- any driver error means "not ready"
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


# -- sessions ----------------------------------------------------------------------------


def start_web_session(session, settings, request: Request, response: Response, user: User) -> None:  # noqa: ANN001
    """Log ``user`` in: a new server-side session and its cookie."""
    token = accounts.start_session(session, user, days=settings.session_days, client_addr=client_addr(request))
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_days * 86400, httponly=True,
                        samesite="strict", secure=settings.secure_cookies, path="/")


def end_web_session(session, request: Request, response: Response) -> None:  # noqa: ANN001
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        row = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(cookie))).first()
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()
            session.add(row)
            audit.record(session, "auth.logout", actor=None, object_type="user", object_id=row.user_id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.post("/api/v1/login", tags=["accounts"])
def login(body: LoginBody, request: Request, response: Response, session: SessionDep,
          settings: SettingsDep) -> LoginResult:
    """Log in with username and password; sets the session cookie."""
    check_csrf(request, strict=False)
    check_lockout(session, request, body.username)
    user = accounts.authenticate(session, body.username, body.password)
    if user is None:
        record_failed_login(request, body.username, "password")
        raise Unauthorized("wrong username or password", code="auth.login_failed")
    start_web_session(session, settings, request, response, user)
    return LoginResult(username=user.username, role=user.role)


@router.post("/api/v1/logout", tags=["accounts"])
def logout(request: Request, response: Response, session: SessionDep) -> LogoutResult:
    """End the current web session."""
    check_csrf(request, strict=False)
    end_web_session(session, request, response)
    return LogoutResult(status="logged out")


@router.post("/api/v1/me/sign-out-everywhere", tags=["accounts"])
def sign_out_everywhere(actor: ApiActor, response: Response, session: SessionDep,
                        body: SignOutEverywhere | None = None) -> SignedOutEverywhere:
    """End all your web sessions and revoke all your API tokens (a lost laptop, a leaked script).
    Your tablets keep syncing unless ``devices`` is true. Says what was revoked; audited."""
    result = accounts.sign_out_everywhere(session, actor, devices=bool(body and body.devices))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return SignedOutEverywhere(**result)


@router.get("/api/v1/me", tags=["accounts"])
def me(actor: ApiActor, session: SessionDep) -> Me:
    """Who am I, with my organisation."""
    org = session.get(accounts.Organisation, actor.organisation_id)
    return Me(id=actor.user.id, username=actor.user.username, role=actor.role,
              organisation=OrganisationPublic(id=org.id, name=org.name, kind=org.kind), via=actor.via)


# -- organisations -----------------------------------------------------------------------


@router.get("/api/v1/organisations", tags=["accounts"])
def list_organisations(actor: StaffActor, session: SessionDep) -> list[OrganisationPublic]:
    """All organisations (admin, coordinator)."""
    return [OrganisationPublic(id=o.id, name=o.name, kind=o.kind) for o in accounts.list_organisations(session)]


@router.post("/api/v1/organisations", tags=["accounts"], status_code=201)
def create_organisation(body: OrganisationCreate, actor: AdminActor, session: SessionDep) -> OrganisationPublic:
    """Create an organisation (admin)."""
    org = accounts.create_organisation(session, name=body.name, kind=body.kind, actor=actor)
    return OrganisationPublic(id=org.id, name=org.name, kind=org.kind)


# -- users -------------------------------------------------------------------------------


def _user_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("/api/v1/users", tags=["accounts"])
def list_users(actor: StaffActor, session: SessionDep) -> list[UserPublic]:
    """All users (admin, coordinator)."""
    return [_user_public(u) for u in session.exec(select(User).order_by(User.username))]


@router.post("/api/v1/users", tags=["accounts"], status_code=201)
def create_user(body: UserCreate, actor: AdminActor, session: SessionDep) -> UserPublic:
    """Create a user (admin)."""
    user = accounts.create_user(session, username=body.username, password=body.password, role=body.role,
                                organisation=body.organisation, full_name=body.full_name, actor=actor)
    return _user_public(user)


@router.patch("/api/v1/users/{username}", tags=["accounts"])
def update_user(username: str, body: UserUpdate, actor: AdminActor, session: SessionDep) -> UserPublic:
    """Activate/deactivate a user or reset their password (admin)."""
    user = accounts.get_user(session, username)
    if body.password is not None:
        accounts.set_password(session, user, body.password, actor=actor)
    if body.active is not None and body.active != user.active:
        accounts.set_active(session, user, body.active, actor=actor)
    return _user_public(user)


@router.get("/api/v1/users/{username}/tokens", tags=["accounts"])
def list_user_tokens(username: str, actor: AdminActor, session: SessionDep) -> list[TokenPublic]:
    """A user's API tokens, live and revoked, never their secret (admin)."""
    user = accounts.get_user(session, username)
    return [TokenPublic.from_row(r) for r in session.exec(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))]


@router.delete("/api/v1/users/{username}/tokens/{token_id}", tags=["accounts"])
def revoke_user_token(username: str, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], actor: AdminActor,
                      session: SessionDep) -> TokenRevoked:
    """Revoke one of a user's API tokens (admin; audited)."""
    user = accounts.get_user(session, username)
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"token {token_id} of {user.username!r} not found", code="token.not_found")
    accounts.revoke_api_token(session, row, actor=actor)
    return TokenRevoked(id=row.id, revoked=True)


@router.get("/api/v1/users/{username}/devices", tags=["devices"])
def list_user_devices(username: str, actor: AdminActor, session: SessionDep) -> list[DevicePublic]:
    """A user's devices, live and revoked (admin)."""
    user = accounts.get_user(session, username)
    return [_device_public(d) for d in session.exec(select(Device).where(Device.user_id == user.id).order_by(Device.name))]


@router.delete("/api/v1/users/{username}/devices/{name}", tags=["devices"])
def revoke_user_device(username: str, name: str, actor: AdminActor, session: SessionDep) -> DevicePublic:
    """Revoke one of a user's devices at once (admin; audited)."""
    user = accounts.get_user(session, username)
    device = accounts.get_device(session, name)
    if device.user_id != user.id:
        raise NotFound(f"device {name!r} of {user.username!r} not found", code="device.not_found")
    return _device_public(accounts.revoke_device(session, device, actor=actor))


# -- devices -----------------------------------------------------------------------------


def _require_sign_in(actor: Actor, what: str) -> None:
    """A device needs the person's password or web session, never an API token: a stolen token must not
    mint a device token, which would outlive the password reset that revokes the stolen one. (A token may
    create tokens: a reset revokes them all.)"""
    if actor.via == "token":
        raise Forbidden(f"to {what}, sign in with your password (web session or Basic), not an API token",
                        code="auth.password_required")


def _device_public(device: Device) -> DevicePublic:
    return DevicePublic.model_validate(device, from_attributes=True)


def _may_manage_device(actor: Actor, device: Device) -> bool:
    return actor.role == Role.admin or device.user_id == actor.user.id


@router.get("/api/v1/devices", tags=["devices"])
def list_devices(actor: ApiActor, session: SessionDep) -> list[DevicePublic]:
    """Devices: all for an admin, your own otherwise."""
    query = select(Device).order_by(Device.name)
    if actor.role != Role.admin:
        query = query.where(Device.user_id == actor.user.id)
    return [_device_public(d) for d in session.exec(query)]


@router.post("/api/v1/devices", tags=["devices"], status_code=201)
def create_device(body: DeviceCreate, request: Request, actor: ApiActor, session: SessionDep,
                  settings: SettingsDep) -> DeviceCreated:
    """Register a tablet for yourself (nobody, not even an admin, registers one for somebody else:
    403 ``device.owner_only``). The token is shown once."""
    if body.user not in (None, actor.user.username):  # refused before any lookup: no user enumeration
        raise Forbidden(accounts.DEVICE_OWNER_ONLY, code="device.owner_only")
    _require_sign_in(actor, "register a device")
    device, token = accounts.create_device(session, name=body.name, user=actor.user.id, actor=actor)
    url = device_server_url(public_base_url(request, settings), token)
    return DeviceCreated(**_device_public(device).model_dump(), token=token, server_url=url,
                         collect_settings=encode_settings(collect_settings(url, f"asmfield {device.name}")))


@router.delete("/api/v1/devices/{name}", tags=["devices"])
def revoke_device(name: str, actor: ApiActor, session: SessionDep) -> DevicePublic:
    """Revoke a device token at once (admin, or the device's owner)."""
    device = accounts.get_device(session, name)
    if not _may_manage_device(actor, device):
        raise NotFound(f"device {name!r} not found", code="device.not_found")
    return _device_public(accounts.revoke_device(session, device, actor=actor))


# -- API tokens --------------------------------------------------------------------------


@router.post("/api/v1/tokens", tags=["accounts"], status_code=201)
def create_token(body: TokenCreate, actor: ApiActor, session: SessionDep) -> TokenCreated:
    """Create a Bearer API token for yourself. The token is shown once."""
    row, token = accounts.create_api_token(session, user=actor.user, name=body.name, actor=actor)
    return TokenCreated(id=row.id, name=row.name, token=token)


@router.get("/api/v1/tokens", tags=["accounts"])
def list_tokens(actor: ApiActor, session: SessionDep) -> list[TokenPublic]:
    """Your API tokens (never their secret)."""
    rows = session.exec(select(ApiToken).where(ApiToken.user_id == actor.user.id).order_by(ApiToken.id))
    return [TokenPublic.from_row(r) for r in rows]


@router.delete("/api/v1/tokens/{token_id}", tags=["accounts"])
def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], actor: ApiActor,
                 session: SessionDep) -> TokenRevoked:
    """Revoke one of your API tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != actor.user.id:
        raise NotFound(f"token {token_id} not found", code="token.not_found")
    accounts.revoke_api_token(session, row, actor=actor)
    return TokenRevoked(id=row.id, revoked=True)


# -- audit -------------------------------------------------------------------------------


@router.get("/api/v1/audit", tags=["audit"])
def list_audit(actor: AdminActor, session: SessionDep, action: Annotated[str | None, Query(max_length=80)] = None,
               limit: int = 100, before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> list[AuditEntryPublic]:
    """Audit log, newest first (admin). Filter by ``action``; page with ``before_id``. Failed
    authentications are aggregated: ``count`` failures between ``at`` and ``last_at``."""
    limit = max(1, min(limit, 1000))
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if action:
        query = query.where(AuditLog.action == action)
    if before_id:
        query = query.where(AuditLog.id < before_id)
    return [AuditEntryPublic.from_row(e) for e in session.exec(query)]


def install(app: FastAPI) -> None:
    app.include_router(router)
