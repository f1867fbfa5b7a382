"""Account services: organisations, users, devices and API tokens.

Plain functions over a session; callable from routes, the CLI and tests. They never commit.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app import audit
from app.db import RowIds
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.identity import Actor, Role
from app.models import ApiToken, Device, Organisation, OrgKind, User, WebSession
from app.security import (
    check_password_strength,
    digest_ha1,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from app.snapshots import RowPairSnapshots, RowSnapshots
from app.timeutil import utcnow

#: Realm of HTTP Digest/Basic challenges; part of each user's stored HA1, so never change it.
REALM = "asmfield"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,149}$")
NAME_RE = re.compile(r"^[^\x00-\x1f/\\]{1,150}$")
DEVICE_OWNER_ONLY = ("a device can only be registered by its owner (an admin may list and revoke devices, "
                     "not create them for somebody else)")


def _flush_unique(session: Session, what: str, value: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"{what} {value!r} already exists", code=f"{what}.duplicate") from exc


# -- organisations -----------------------------------------------------------------------


def create_organisation(session: Session, *, name: str, kind: str, actor: Actor | None = None,
                        operator: str | None = None) -> Organisation:
    name = (name or "").strip()
    if not name or not NAME_RE.match(name):
        raise Invalid("organisation name is empty or has forbidden characters", code="organisation.invalid_name")
    if kind not in OrgKind.__members__:
        raise Invalid(f"unknown organisation kind {kind!r}; use one of: {', '.join(OrgKind)}", code="organisation.invalid_kind")
    if session.exec(select(Organisation).where(Organisation.name == name)).first():
        raise Conflict(f"organisation {name!r} already exists", code="organisation.duplicate")
    org = Organisation(name=name, kind=kind)
    session.add(org)
    _flush_unique(session, "organisation", name)
    audit.record(session, "organisation.create", actor=actor, label=operator, object_type="organisation",
                 object_id=org.id, name=name, kind=kind)
    return org


def get_organisation(session: Session, name_or_id: str | int) -> Organisation:
    """An organisation by id, or by name (a name made of digits is tried as a name first)."""
    org = None
    if not isinstance(name_or_id, int):
        org = session.exec(select(Organisation).where(Organisation.name == str(name_or_id)[:200])).first()
    if org is None and str(name_or_id).isdigit() and 0 < int(name_or_id) < 2**31:
        org = session.get(Organisation, int(name_or_id))
    if org is None:
        raise NotFound(f"organisation {name_or_id!r} not found", code="organisation.not_found")
    return org


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.exec(select(Organisation).order_by(Organisation.name)))


# -- users -------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str | None,
    role: str,
    organisation: str | int,
    full_name: str | None = None,
    actor: Actor | None = None,
    operator: str | None = None,
) -> User:
    """Create a user; refuse unknown roles, duplicate usernames and weak passwords."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise Invalid(
            "username must be 2-150 characters: letters, digits, '.', '_', '@', '-'", code="user.invalid_username"
        )
    if role not in Role.__members__:
        raise Invalid(f"unknown role {role!r}; use one of: {', '.join(Role)}", code="user.invalid_role")
    org = get_organisation(session, organisation)
    if role == Role.caseworker and org.kind != OrgKind.ngo:
        raise Invalid("caseworkers belong to a partner NGO organisation", code="user.invalid_role")
    check_password_strength(password, username, [org.name, full_name or ""])
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists", code="user.duplicate")
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hash_password(password),
        digest_ha1=digest_ha1(username, REALM, password),
        role=role,
        organisation_id=org.id,
    )
    session.add(user)
    _flush_unique(session, "user", username)
    audit.record(session, "user.create", actor=actor, label=operator, object_type="user", object_id=user.id,
                 username=username, role=role)
    return user


def get_user(session: Session, username_or_id: str | int) -> User:
    if isinstance(username_or_id, int):
        user = session.get(User, username_or_id) if 0 < username_or_id < 2**31 else None
    else:
        user = session.exec(select(User).where(User.username == username_or_id[:150])).first()
    if user is None:
        raise NotFound(f"user {username_or_id!r} not found", code="user.not_found")
    return user


def set_password(session: Session, user: User, password: str, *, actor: Actor | None = None, operator: str | None = None) -> dict:
    """Change or reset a password. The user's web sessions end and their API tokens are revoked
    (whoever knew the old password may have made one); devices keep syncing. Returns the counts."""
    org = session.get(Organisation, user.organisation_id)
    check_password_strength(password, user.username, [org.name if org else "", user.full_name or ""])
    user.password_hash = hash_password(password)
    user.digest_ha1 = digest_ha1(user.username, REALM, password)
    session.add(user)
    ended = revoke_credentials(session, user, devices=False, reason="password_change", actor=actor, operator=operator)
    audit.record(session, "user.password_change", actor=actor, label=operator, object_type="user", object_id=user.id,
                 username=user.username, **ended)
    return ended


def set_active(session: Session, user: User, active: bool, *, actor: Actor | None = None, operator: str | None = None) -> dict:
    """(De)activate a user. Deactivation ends their web sessions and revokes their API tokens and
    devices for good: reactivating the user revives none of them. Returns the counts."""
    if not active and actor is not None and actor.user.id == user.id:
        raise Invalid("you cannot deactivate yourself", code="user.self_deactivate")
    user.active = active
    session.add(user)
    ended = {} if active else revoke_credentials(session, user, devices=True, reason="deactivation", actor=actor,
                                                 operator=operator)
    audit.record(session, "user.activate" if active else "user.deactivate", actor=actor, label=operator,
                 object_type="user", object_id=user.id, username=user.username, **ended)
    return ended


def end_sessions(session: Session, user: User) -> int:
    """End every live web session of ``user``; returns how many."""
    rows = session.exec(select(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))).all()
    for row in rows:
        row.ended_at = utcnow()
        session.add(row)
    return len(rows)


def revoke_credentials(session: Session, user: User, *, devices: bool, reason: str, actor: Actor | None = None,
                       operator: str | None = None) -> dict[str, int]:
    """End all web sessions of ``user`` and revoke their live API tokens (and devices when
    ``devices``); each revocation is audited with ``reason``. Rows are marked revoked, never
    deleted, so nothing comes back later. Returns how many of each."""
    tokens = session.exec(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))).all()
    for row in tokens:
        revoke_api_token(session, row, actor=actor, operator=operator, reason=reason)
    revoked_devices = []
    if devices:
        revoked_devices = session.exec(select(Device).where(Device.user_id == user.id, Device.revoked_at.is_(None))).all()
        for device in revoked_devices:
            revoke_device(session, device, actor=actor, operator=operator, reason=reason)
    return {"sessions_ended": end_sessions(session, user), "tokens_revoked": len(tokens),
            "devices_revoked": len(revoked_devices)}


def sign_out_everywhere(session: Session, actor: Actor, *, devices: bool = False) -> dict[str, int]:
    """The caller ends every web session and revokes every API token of theirs (and their
    devices when asked; by default tablets keep syncing). Audited with the counts."""
    ended = revoke_credentials(session, actor.user, devices=devices, reason="sign_out_everywhere", actor=actor)
    kept = 0 if devices else len(session.exec(
        select(Device.id).where(Device.user_id == actor.user.id, Device.revoked_at.is_(None))).all())
    result = {**ended, "devices_kept": kept}
    audit.record(session, "auth.sign_out_everywhere", actor=actor, object_type="user", object_id=actor.user.id, **result)
    return result


def start_session(session: Session, user: User, *, days: int, client_addr: str | None = None) -> str:
    """A new web session for ``user`` (audited as a login); returns the clear cookie value.

    Sessions that expired more than a day ago are deleted on the way, so the table stays small.
    """
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now - timedelta(days=1)))
    token = new_token()
    session.add(WebSession(token_hash=token_hash(token), user_id=user.id, expires_at=now + timedelta(days=days)))
    user.last_login_at = now
    session.add(user)
    audit.record(session, "auth.login", label=user.username, client_addr=client_addr, method="password",
                 user_id=user.id)
    return token


#: Verified when the username is unknown, so that answer takes as long as a wrong password.
_dummy_hash: str | None = None


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, else None (in constant-ish time)."""
    if not username or len(username) > 150 or len(password) > 1024:
        return None
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        global _dummy_hash
        _dummy_hash = _dummy_hash or hash_password("unknown-user-dummy-password")
        verify_password(_dummy_hash, password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    return user


# -- devices -----------------------------------------------------------------------------


def create_device(session: Session, *, name: str, user: str | int, actor: Actor | None = None,
                  operator: str | None = None) -> tuple[Device, str]:
    """Register a tablet for ``user``; returns the device and its clear token (shown once).

    Through the API (``actor``) only for yourself: a device acts as its owner, so an admin who
    could make one for somebody else could act as them. ``operator`` names who ran the CLI.
    """
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise Invalid("device name is empty or has forbidden characters", code="device.invalid_name")
    owner = get_user(session, user)
    if actor is not None and actor.user.id != owner.id:
        raise Forbidden(DEVICE_OWNER_ONLY, code="device.owner_only")
    if not owner.active:
        raise Invalid(f"user {owner.username!r} is deactivated", code="device.user_inactive")
    if session.exec(select(Device).where(Device.name == name)).first():
        raise Conflict(f"device {name!r} already exists", code="device.duplicate")
    token = new_token()
    device = Device(name=name, token_hash=token_hash(token), user_id=owner.id)
    session.add(device)
    _flush_unique(session, "device", name)
    audit.record(session, "device.create", actor=actor, label=operator, object_type="device", object_id=device.id,
                 name=name, user=owner.username, **({"via": "cli"} if operator else {}))
    return device, token


def get_device(session: Session, name_or_id: str | int) -> Device:
    if isinstance(name_or_id, int):
        device = session.get(Device, name_or_id) if 0 < name_or_id < 2**31 else None
    else:
        device = session.exec(select(Device).where(Device.name == name_or_id[:150])).first()
    if device is None:
        raise NotFound(f"device {name_or_id!r} not found", code="device.not_found")
    return device


def revoke_device(session: Session, device: Device, *, actor: Actor | None = None, operator: str | None = None,
                  reason: str | None = None) -> Device:
    """Revoke a tablet's token at once (lost or stolen tablet). Idempotent."""
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        session.add(device)
        extra = {k: v for k, v in (("reason", reason), ("via", "cli" if operator else None)) if v}
        audit.record(session, "device.revoke", actor=actor, label=operator, object_type="device", object_id=device.id,
                     name=device.name, user_id=device.user_id, **extra)
    return device


#: {token hash: device id} per process and engine; the device and user rows are still read and checked
#: (hash, ``revoked_at``, ``active``), so a revocation committed by any process is refused at once.
_DEVICE_IDS = RowIds()


def device_and_owner_for_token(session: Session, token: str) -> tuple[Device, User] | None:
    """The live (not revoked) device holding ``token`` and its user, if active (a tablet's credential:
    OpenRosa ``/key/{token}/``, or a Bearer token for the sync API).

    Both are read-only copies (``app.snapshots``), checked against their rows with one raw read (a
    join): callers never change them (``session.get`` the row to change it)."""
    hashed = token_hash(token)
    ids = _DEVICE_IDS.of(session)
    device_id = ids.get(hashed)
    found = _DEVICE_AND_USER.get(session, device_id) if device_id is not None else None
    if found is None or found[0].token_hash != hashed:
        device_id = session.exec(select(Device.id).where(Device.token_hash == hashed)).first()
        found = _DEVICE_AND_USER.get(session, device_id) if device_id is not None else None
        if found is None:
            ids.pop(hashed, None)
            return None
        ids[hashed] = device_id
    device, owner = found
    if device.revoked_at is not None or not owner.active:
        return None
    return device, owner


#: Read-only copies of device and user rows (``app.snapshots``): the upload path's reads, one raw statement
#: (a join) while both rows are unchanged.
_DEVICE_AND_USER = RowPairSnapshots(RowSnapshots(Device), "user_id", RowSnapshots(User))


# -- API tokens --------------------------------------------------------------------------


def create_api_token(session: Session, *, user: User, name: str, actor: Actor | None = None) -> tuple[ApiToken, str]:
    """A Bearer token for ``user``; through the API (``actor``) only for yourself."""
    if actor is not None and actor.user.id != user.id:
        raise Forbidden("an API token can only be created by its owner", code="token.owner_only")
    name = (name or "").strip() or "token"
    if not NAME_RE.match(name):
        raise Invalid("token name has forbidden characters", code="token.invalid_name")
    token = new_token()
    row = ApiToken(name=name, token_hash=token_hash(token), user_id=user.id)
    session.add(row)
    session.flush()
    audit.record(session, "token.create", actor=actor, object_type="api_token", object_id=row.id, name=name)
    return row, token


def revoke_api_token(session: Session, row: ApiToken, *, actor: Actor | None = None, operator: str | None = None,
                     reason: str | None = None) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, "token.revoke", actor=actor, label=operator, object_type="api_token", object_id=row.id,
                     user_id=row.user_id, **({"reason": reason} if reason else {}))


def api_token_for(session: Session, token: str) -> ApiToken | None:
    """The live API token row for a clear ``token`` whose user is active, else None."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    return row if user is not None and user.active else None
