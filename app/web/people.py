"""Web pages: organisations, users and devices (admins manage; coordinators read; everyone their own devices).

The pages call what the JSON API routes of ``app.routes`` call, with the same checks: organisations and
users are read by staff and changed by admins (``accounts.create_*``, ``set_active``, ``set_password``, all
audited); a tablet is registered only by its owner, for themselves (``accounts.create_device``), and
revoked by its owner or an admin. The tablet's token is shown once, inside its ODK Collect QR code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import and_, or_
from sqlmodel import Session, select

from app import accounts
from app.collect import collect_settings, device_server_url, encode_settings
from app.deps import SessionDep, SettingsDep
from app.errors import DomainError, Invalid, NotFound
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.identity import Actor, Role
from app.models import AuditLog, Device, Organisation, OrgKind, User
from app.routes import _may_manage_device, public_base_url, start_web_session
from app.timeutil import as_utc, utcnow
from app.web.i18n import N_, gettext, ngettext
from app.web.qr import qr_svg
from app.web.render import ROLE_NAMES, NavLink, WebActorDep, redirect, render, require, web_router

router = web_router()
NAV: tuple[NavLink, ...] = (
    NavLink("/people", N_("People"), roles=("admin", "coordinator"), order=70),
    NavLink("/devices", N_("Devices"), order=75),
)
STAFF = (Role.admin, Role.coordinator)
#: a tablet that has not synced for this long is shown with a warning
STALE_DAYS = 14
KIND_NAMES = {OrgKind.coordinator: N_("Coordinating organisation"), OrgKind.ngo: N_("Partner NGO")}
#: service refusals shown often on these pages -> the message in the user's language
MESSAGES = {
    "user.invalid_username": N_("2 to 150 characters: letters, digits, '.', '_', '@', '-'."),
    "user.duplicate": N_("This username is already taken."),
    "user.invalid_role": N_("Choose a role; caseworkers belong to a partner NGO."),
    "user.password_empty": N_("Type a password."),
    "user.password_too_long": N_("This password is too long."),
    "user.self_deactivate": N_("You cannot deactivate yourself."),
    "organisation.not_found": N_("Choose an organisation."),
    "organisation.invalid_name": N_("Type a name (no slashes or control characters)."),
    "organisation.invalid_kind": N_("Choose the kind of organisation."),
    "organisation.duplicate": N_("An organisation with this name already exists."),
    "device.invalid_name": N_("Type a name (no slashes or control characters)."),
    "device.duplicate": N_("A tablet with this name already exists: choose another name."),
    "device.user_inactive": N_("Your account is deactivated."),
}
#: audit actions shown on a user's page -> what happened, in words
ACTIONS = {
    "user.create": N_("Account created"), "user.password_change": N_("Password changed"),
    "user.deactivate": N_("Deactivated"), "user.activate": N_("Reactivated"),
    "device.create": N_("Tablet added"), "device.revoke": N_("Tablet revoked"),
    "token.create": N_("API token created"), "token.revoke": N_("API token revoked"),
    "auth.login": N_("Signed in"), "auth.logout": N_("Signed out"),
    "auth.sign_out_everywhere": N_("Signed out everywhere"),
}

#: facts of an audit entry shown on a user's page -> their name (others, like ids, are left out)
DETAILS = {
    "username": N_("user"), "role": N_("role"), "name": N_("tablet"), "sessions_ended": N_("sessions ended"),
    "tokens_revoked": N_("API tokens revoked"), "devices_revoked": N_("tablets revoked"),
    "devices_kept": N_("tablets kept"), "method": N_("method"), "via": N_("via"), "reason": N_("reason"),
}

REASONS = {"password_change": N_("password change"), "deactivation": N_("deactivation"),
           "sign_out_everywhere": N_("signed out everywhere")}


def _detail_value(key: str, value: object) -> object:
    if key == "role" and value in ROLE_NAMES:
        return gettext(ROLE_NAMES[str(value)])
    if key == "reason" and value in REASONS:
        return gettext(REASONS[str(value)])
    return value


def message_for(exc: DomainError) -> str:
    """A service refusal in the user's language (the English message when we have no better words)."""
    if exc.code == "user.password_weak":
        return gettext("This password is too easy to guess: use at least 10 characters, several unrelated "
                       "words, not the username, name or organisation.")
    return gettext(MESSAGES[exc.code]) if exc.code in MESSAGES else exc.message


def password_error(exc: DomainError) -> bool:
    return exc.code.startswith("user.password")


# -- presenting rows -------------------------------------------------------------------


def when(value: datetime | None) -> str:
    """A timestamp as people read it (UTC, to the minute), or a dash."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return gettext("never")
    delta = now - as_utc(value)
    days = delta.days
    if days >= 1:
        return ngettext("%(num)d day ago", "%(num)d days ago", days)
    hours = max(0, int(delta.total_seconds() // 3600))
    if hours >= 1:
        return ngettext("%(num)d hour ago", "%(num)d hours ago", hours)
    return gettext("less than an hour ago")


def is_stale(device: Device, now: datetime) -> bool:
    """A live tablet with no sync in ``STALE_DAYS`` days, or never (the dashboard counts the same ones)."""
    return device.revoked_at is None and (
        device.last_seen_at is None or as_utc(device.last_seen_at) < now - timedelta(days=STALE_DAYS))


def device_row(device: Device, owner: User | None, now: datetime) -> dict[str, Any]:
    """What a device's line shows: last sync, and whether it is revoked, stale or fine."""
    stale = is_stale(device, now)
    if device.revoked_at is not None:
        status, badge = gettext("Revoked"), "bad"
    elif device.last_seen_at is None:
        status, badge = gettext("Never synced"), "warn"
    elif stale:
        status, badge = gettext("Over %(days)s days without sync", days=STALE_DAYS), "warn"
    else:
        status, badge = gettext("In service"), "ok"
    return {"name": device.name, "path": quote(device.name, safe=""), "owner": owner.username if owner else "—",
            "owner_path": quote(owner.username, safe="") if owner else "",
            "created": when(device.created_at), "last_sync": when(device.last_seen_at),
            "last_sync_ago": ago(device.last_seen_at, now), "status": status, "badge": badge,
            "live": device.revoked_at is None, "revoked": when(device.revoked_at), "stale": stale}


def user_row(user: User, orgs: dict[int, Organisation]) -> dict[str, Any]:
    org = orgs.get(user.organisation_id)
    return {"username": user.username, "path": quote(user.username, safe=""), "full_name": user.full_name or "",
            "role": user.role, "organisation": org.name if org else "—", "active": user.active,
            "last_login": when(user.last_login_at), "created": when(user.created_at)}


def role_options() -> list[tuple[str, str]]:
    return [(role.value, gettext(ROLE_NAMES[role.value])) for role in Role]


def kind_options() -> list[tuple[str, str]]:
    return [(kind.value, gettext(KIND_NAMES[kind])) for kind in OrgKind]


def get_user(session: Session, username: str) -> User:
    """``accounts.get_user``, refusing in the user's language."""
    try:
        return accounts.get_user(session, username)
    except NotFound as exc:
        raise NotFound(gettext("This user was not found."), code=exc.code) from exc


def get_device(session: Session, name: str) -> Device:
    try:
        return accounts.get_device(session, name)
    except NotFound as exc:
        raise NotFound(gettext("This tablet was not found."), code=exc.code) from exc


# -- /people ---------------------------------------------------------------------------


def _filters(session: Session, organisation: str | None, role: str | None) -> dict[str, Any]:
    """The users list's filters from the URL; a value that cannot be one is refused (400 page)."""
    chosen: dict[str, Any] = {"organisation": "", "role": ""}
    if organisation:
        if not organisation.isdigit() or not 0 < int(organisation) < 2**31:
            raise Invalid(gettext("Unknown organisation."), code="organisation.not_found")
        if session.get(Organisation, int(organisation)) is None:
            raise NotFound(gettext("Unknown organisation."), code="organisation.not_found")
        chosen["organisation"] = int(organisation)
    if role:
        if role not in Role.__members__:
            raise Invalid(gettext("Unknown role."), code="user.invalid_role")
        chosen["role"] = role
    return chosen


def people_page(request: Request, session: Session, actor: Actor, *, organisation: str | None = None,
                role: str | None = None, user_form: dict | None = None, user_errors: dict | None = None,
                org_form: dict | None = None, org_errors: dict | None = None, status_code: int = 200) -> Response:
    require(actor, *STAFF)
    chosen = _filters(session, organisation, role)
    orgs = {o.id: o for o in accounts.list_organisations(session)}
    query = select(User).order_by(User.username)
    if chosen["organisation"]:
        query = query.where(User.organisation_id == chosen["organisation"])
    if chosen["role"]:
        query = query.where(User.role == chosen["role"])
    users = [user_row(u, orgs) for u in session.exec(query)]
    counts: dict[int, int] = {}
    for org_id in session.exec(select(User.organisation_id)):
        counts[org_id] = counts.get(org_id, 0) + 1
    organisations = [{"id": o.id, "name": o.name, "kind": gettext(KIND_NAMES.get(o.kind, o.kind)),
                      "users": counts.get(o.id, 0)} for o in orgs.values()]
    return render(request, "people/index.html", {
        "users": users, "organisations": organisations, "chosen": chosen,
        "org_options": [(o.id, o.name) for o in orgs.values()], "role_options": role_options(),
        "kind_options": kind_options(), "can_manage": actor.role == Role.admin,
        "user_form": user_form or {}, "user_errors": user_errors or {},
        "org_form": org_form or {}, "org_errors": org_errors or {},
        "done": request.query_params.get("done"), "done_name": request.query_params.get("name", "")[:150],
    }, status_code=status_code)


@router.get("/people", response_class=HTMLResponse)
def people_index(request: Request, actor: WebActorDep, session: SessionDep, organisation: str | None = None,
                 role: str | None = None) -> Response:
    return people_page(request, session, actor, organisation=organisation, role=role)


@router.post("/people/organisations", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def create_organisation(request: Request, actor: WebActorDep, session: SessionDep, name: str = Form(""),
                        kind: str = Form("")) -> Response:
    require(actor, Role.admin)
    try:
        org = accounts.create_organisation(session, name=name, kind=kind, actor=actor)
    except DomainError as exc:
        session.rollback()
        field = "kind" if exc.code == "organisation.invalid_kind" else "name"
        return people_page(request, session, actor, org_form={"name": name[:200], "kind": kind[:20]},
                           org_errors={field: message_for(exc)}, status_code=exc.status_code)
    return redirect("/people?" + urlencode({"done": "organisation", "name": org.name}))


USER_FIELDS = {"user.invalid_username": "username", "user.duplicate": "username", "user.invalid_role": "role",
               "organisation.not_found": "organisation"}


@router.post("/people/users", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def create_user(request: Request, actor: WebActorDep, session: SessionDep, username: str = Form(""),
                full_name: str = Form(""), role: str = Form(""), organisation: str = Form(""),
                password: str = Form("")) -> Response:
    require(actor, Role.admin)
    typed = {"username": username[:150], "full_name": full_name[:200], "role": role[:20],
             "organisation": organisation[:20]}
    try:
        if not organisation.isdigit():
            raise NotFound("organisation not chosen", code="organisation.not_found")
        user = accounts.create_user(session, username=username, password=password, role=role,
                                    organisation=int(organisation), full_name=full_name.strip()[:200] or None,
                                    actor=actor)
    except DomainError as exc:
        session.rollback()
        field = "password" if password_error(exc) else USER_FIELDS.get(exc.code, "username")
        status = 422 if exc.status_code == 404 else exc.status_code
        return people_page(request, session, actor, user_form=typed, user_errors={field: message_for(exc)},
                           status_code=status)
    return redirect(f"/people/users/{quote(user.username, safe='')}?done=created")


# -- /people/users/{username} ----------------------------------------------------------


def _user_audit(session: Session, user: User, device_ids: list[int]) -> list[dict[str, Any]]:
    """The latest audit entries about this user or their tablets, or done by them (admins read the audit)."""
    about = [and_(AuditLog.object_type == "user", AuditLog.object_id == str(user.id)),
             AuditLog.actor_user_id == user.id]
    if device_ids:
        about.append(and_(AuditLog.object_type == "device", AuditLog.object_id.in_([str(i) for i in device_ids])))
    rows = session.exec(select(AuditLog).where(or_(*about)).order_by(AuditLog.id.desc()).limit(20))
    out = []
    for entry in rows:
        details = [gettext("%(what)s: %(value)s", what=gettext(DETAILS[k]), value=_detail_value(k, v)) for k, v in (entry.details or {}).items()
                   if k in DETAILS and not (k == "username" and v == user.username)]
        out.append({"at": when(entry.at), "action": gettext(ACTIONS[entry.action]) if entry.action in ACTIONS
                    else entry.action, "code": entry.action, "by": entry.actor_label or "—",
                    "details": ", ".join(details)})
    return out


def user_page(request: Request, session: Session, actor: Actor, username: str, *,
              errors: dict | None = None, status_code: int = 200) -> Response:
    require(actor, *STAFF)
    person = get_user(session, username)
    orgs = {o.id: o for o in accounts.list_organisations(session)}
    is_admin = actor.role == Role.admin
    now = utcnow()
    devices: list[dict] = []
    audit_rows: list[dict] = []
    if is_admin:  # as GET /api/v1/users/{username}/devices and /api/v1/audit: admins only
        rows = list(session.exec(select(Device).where(Device.user_id == person.id).order_by(Device.name)))
        devices = [device_row(d, person, now) for d in rows]
        audit_rows = _user_audit(session, person, [d.id for d in rows])
    query = request.query_params
    counts = {key: query.get(key, "") for key in ("sessions", "tokens", "devices")}
    return render(request, "people/user.html", {
        "person": user_row(person, orgs), "is_self": person.id == actor.user.id, "can_manage": is_admin,
        "devices": devices, "audit": audit_rows, "errors": errors or {}, "done": query.get("done"),
        "counts": {k: int(v) if v.isdigit() else 0 for k, v in counts.items()},
    }, status_code=status_code)


@router.get("/people/users/{username}", response_class=HTMLResponse)
def user_detail(request: Request, username: str, actor: WebActorDep, session: SessionDep) -> Response:
    return user_page(request, session, actor, username)


def _consequences(done: str, username: str, ended: dict[str, int]) -> Response:
    return redirect(f"/people/users/{quote(username, safe='')}?" + urlencode({
        "done": done, "sessions": ended.get("sessions_ended", 0), "tokens": ended.get("tokens_revoked", 0),
        "devices": ended.get("devices_revoked", 0)}))


@router.post("/people/users/{username}/active", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def set_active(request: Request, username: str, actor: WebActorDep, session: SessionDep,
               active: str = Form("")) -> Response:
    """Deactivate (sessions end; API tokens and tablets revoked for good) or reactivate a user (admin)."""
    require(actor, Role.admin)
    person = get_user(session, username)
    if active not in ("0", "1"):
        raise Invalid(gettext("Choose to activate or deactivate."), code="user.invalid_active")
    wanted = active == "1"
    ended: dict[str, int] = {}
    if wanted != person.active:  # as PATCH /api/v1/users/{username}
        try:
            ended = accounts.set_active(session, person, wanted, actor=actor)
        except DomainError as exc:
            session.rollback()
            return user_page(request, session, actor, username, errors={"active": message_for(exc)},
                             status_code=exc.status_code)
    return _consequences("activated" if wanted else "deactivated", person.username, ended)


@router.post("/people/users/{username}/password", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def reset_password(request: Request, username: str, actor: WebActorDep, session: SessionDep,
                   settings: SettingsDep, password: str = Form("")) -> Response:
    """Reset a user's password (admin): their web sessions end and their API tokens are revoked."""
    require(actor, Role.admin)
    person = get_user(session, username)
    try:
        ended = accounts.set_password(session, person, password, actor=actor)
    except DomainError as exc:
        session.rollback()
        return user_page(request, session, actor, username, errors={"password": message_for(exc)},
                         status_code=exc.status_code)
    response = _consequences("password", person.username, ended)
    if person.id == actor.user.id:  # my own password: this browser stays signed in (as on /account)
        start_web_session(session, settings, request, response, person)
    return response


@router.post("/people/users/{username}/devices/{name}/revoke", openapi_extra=takes(FORM_URLENCODED, MULTIPART,
                                                                                  required=False))
def revoke_user_device(username: str, name: str, actor: WebActorDep, session: SessionDep) -> Response:
    """As DELETE /api/v1/users/{username}/devices/{name} (admin; audited)."""
    require(actor, Role.admin)
    person = get_user(session, username)
    device = get_device(session, name)
    if device.user_id != person.id:
        raise NotFound(gettext("This tablet was not found."), code="device.not_found")
    accounts.revoke_device(session, device, actor=actor)
    return redirect(f"/people/users/{quote(person.username, safe='')}?" + urlencode({"done": "device",
                                                                                     "name": device.name}))


# -- /devices --------------------------------------------------------------------------


def devices_page(request: Request, session: Session, actor: Actor, *, form: dict | None = None,
                 errors: dict | None = None, created: dict | None = None, status_code: int = 200) -> Response:
    """Devices as GET /api/v1/devices lists them: everybody's for an admin, your own otherwise."""
    query = select(Device).order_by(Device.revoked_at.is_not(None), Device.name)
    if actor.role != Role.admin:
        query = query.where(Device.user_id == actor.user.id)
    rows = list(session.exec(query))
    now = utcnow()
    only_stale = request.query_params.get("stale") == "1"
    if only_stale:
        rows = [d for d in rows if is_stale(d, now)]
    owners = {u.id: u for u in session.exec(select(User).where(User.id.in_({d.user_id for d in rows})))} if rows else {}
    devices = [device_row(d, owners.get(d.user_id), now) for d in rows]
    return render(request, "people/devices.html", {
        "devices": devices, "everybody": actor.role == Role.admin, "form": form or {}, "errors": errors or {},
        "created": created, "stale_days": STALE_DAYS, "only_stale": only_stale, "stale_count": sum(1 for d in devices if d["stale"]),
        "done": request.query_params.get("done"), "done_name": request.query_params.get("name", "")[:150],
    }, status_code=status_code)


@router.get("/devices", response_class=HTMLResponse)
def devices_index(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    return devices_page(request, session, actor)


@router.post("/devices", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def add_device(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
               name: str = Form("")) -> Response:
    """Register a tablet for myself, as POST /api/v1/devices does, and show its Collect QR code once.

    The answer is the page itself (not a redirect): the token must not travel in a URL or be shown twice.
    """
    try:
        device, token = accounts.create_device(session, name=name, user=actor.user.id, actor=actor)
    except DomainError as exc:
        session.rollback()
        return devices_page(request, session, actor, form={"name": name[:150]},
                            errors={"name": message_for(exc)}, status_code=exc.status_code)
    url = device_server_url(public_base_url(request, settings), token)
    payload = encode_settings(collect_settings(url, f"asmfield {device.name}"))
    created = {"name": device.name, "server_url": url,
               "qr": qr_svg(payload, label=gettext("ODK Collect QR code for %(name)s", name=device.name))}
    return devices_page(request, session, actor, created=created, status_code=201)


@router.post("/devices/{name}/revoke", openapi_extra=takes(FORM_URLENCODED, MULTIPART, required=False))
def revoke_device(name: str, actor: WebActorDep, session: SessionDep) -> Response:
    """As DELETE /api/v1/devices/{name}: the owner or an admin; somebody else's tablet is not found."""
    device = get_device(session, name)
    if not _may_manage_device(actor, device):
        raise NotFound(gettext("This tablet was not found."), code="device.not_found")
    accounts.revoke_device(session, device, actor=actor)
    return redirect("/devices?" + urlencode({"done": "revoked", "name": device.name}))
