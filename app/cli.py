"""The ``asmfield`` command line (entry point): accounts and server commands, plus each capability's
typer group from the capability list. Shared helpers (settings, session, output, errors) are in
``app.cliutil``; the composition's hooks travel on the root context object (``cliutil.current_hooks``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from app import accounts
from app.backup import create_backup, restore_backup, verify_backup
from app.cliutil import (
    CliRoot,
    JsonOpt,
    current_blobs,
    current_hooks,
    database_problem,
    emit,
    fail,
    load_settings,
    operator_label,
    service_session,
)
from app.collect import collect_settings, device_server_url, encode_settings, write_qr_png
from app.composition import CAPABILITIES, build_hooks, make_blob_store
from app.db import make_engine, migrate
from app.demo import describe_demo, seed_demo
from app.errors import DomainError
from app.models import Device, User
from app.schemas import DevicePublic, OrganisationPublic, UserPublic

cli = typer.Typer(help="asmfield: offline-first field data for artisanal mining sites.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"obj": CliRoot(hooks=build_hooks(), make_blobs=make_blob_store)})
users_cli = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
orgs_cli = typer.Typer(help="Manage organisations (coordinator organisation, partner NGOs).", no_args_is_help=True)
devices_cli = typer.Typer(help="Manage tablets (device tokens and ODK Collect QR codes).", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(orgs_cli, name="orgs")
cli.add_typer(devices_cli, name="devices")

# -- init / serve ------------------------------------------------------------------------


@cli.command()
def init(
    ctx: typer.Context,
    demo: Annotated[bool, typer.Option("--demo", help="Also load demo organisations, users, forms, sites and cases.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or upgrade the data directory and database schema in place (data is kept)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    settings.ensure_secret()
    engine = make_engine(settings)
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    finally:
        engine.dispose()
    result: dict[str, Any] = {"data_dir": str(settings.data_dir), "database": settings.db_url.split("@")[-1]}
    if demo:
        with service_session(settings) as (_, session):
            result["demo"] = seed_demo(session, settings, current_hooks(ctx), current_blobs(ctx, settings))
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(f"Data directory: {result['data_dir']}\nDatabase: {result['database']} (schema up to date)")
    if demo:
        typer.echo(describe_demo(result["demo"]))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes. Default by database: SQLite 1 (one process queues its writers in memory and "
        "hands the write lock on at once; writers of several processes wait for each other in SQLite's busy "
        "handler, which sleeps, so a second process adds little throughput and seconds of tail latency); "
        "PostgreSQL one per CPU (the database serialises nothing, so each process adds a core of Python).",
        show_default=False)] = None,
) -> None:
    """Serve the web, JSON and OpenRosa APIs with uvicorn."""
    import uvicorn

    settings = load_settings()
    try:
        settings.secret  # noqa: B018
    except RuntimeError as exc:
        fail(str(exc))
    if workers is None:
        workers = 1 if settings.is_sqlite else max(1, os.cpu_count() or 1)
    # X-Forwarded-For names the client only when the operator lists the proxies that set it (uvicorn's
    # FORWARDED_ALLOW_IPS); else a local process, or a proxy passing the header on, picks the address
    # the auth throttle and the audit log see.
    uvicorn.run("app.main:asgi_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level, proxy_headers=bool(os.environ.get("FORWARDED_ALLOW_IPS")))


def _public(model: type[BaseModel], row: Any) -> dict[str, Any]:
    """A row as the API's read model prints it (``--json`` and the API answer alike)."""
    return model.model_validate(row, from_attributes=True).model_dump(mode="json")


# -- organisations -----------------------------------------------------------------------


@orgs_cli.command("add")
def orgs_add(
    name: Annotated[str, typer.Argument(help="Organisation name.")],
    kind: Annotated[str, typer.Option(help="coordinator or ngo.")] = "ngo",
    as_json: JsonOpt = False,
) -> None:
    """Add an organisation."""
    with service_session() as (_, session):
        org = accounts.create_organisation(session, name=name, kind=kind, operator=operator_label())
        emit(as_json, _public(OrganisationPublic, org), f"Organisation {org.name!r} ({org.kind}) created, id {org.id}")


@orgs_cli.command("list")
def orgs_list(as_json: JsonOpt = False) -> None:
    """List organisations."""
    with service_session() as (_, session):
        orgs = accounts.list_organisations(session)
        if as_json:
            typer.echo(json.dumps([_public(OrganisationPublic, o) for o in orgs]))
        for o in [] if as_json else orgs:
            typer.echo(f"{o.id}\t{o.kind}\t{o.name}")


# -- users -------------------------------------------------------------------------------


@users_cli.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[str, typer.Option(help="admin, coordinator, monitor or caseworker.")],
    org: Annotated[str, typer.Option(help="Organisation name or id.")],
    password: Annotated[str | None, typer.Option(help="Password (prompted when omitted).")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user to an organisation."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    with service_session() as (_, session):
        user = accounts.create_user(session, username=name, password=password, role=role, organisation=org,
                                    full_name=full_name, operator=operator_label())
        emit(as_json, _public(UserPublic, user),
             f"User {user.username!r} ({user.role}) created, id {user.id}")


@users_cli.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users."""
    with service_session() as (_, session):
        users = list(session.exec(select(User).order_by(User.username)))
        if as_json:
            typer.echo(json.dumps([_public(UserPublic, u) for u in users]))
            return
        for u in users:
            typer.echo(f"{u.id}\t{u.role}\t{u.username}{'' if u.active else ' (inactive)'}")


@users_cli.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="Username.")],
    password: Annotated[str | None, typer.Option(help="New password (prompted when omitted).")] = None,
) -> None:
    """Set a user's password (their web sessions end and their API tokens are revoked)."""
    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    with service_session() as (_, session):
        ended = accounts.set_password(session, accounts.get_user(session, name), password, operator=operator_label())
        typer.echo(f"Password of {name!r} changed; {ended['sessions_ended']} web session(s) ended, "
                   f"{ended['tokens_revoked']} API token(s) revoked")


@users_cli.command("deactivate")
def users_deactivate(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Deactivate a user: their logins stop, their web sessions end, their API tokens and devices
    are revoked for good (reactivating the user later revives none of them)."""
    with service_session() as (_, session):
        ended = accounts.set_active(session, accounts.get_user(session, name), False, operator=operator_label())
        typer.echo(f"User {name!r} deactivated; {ended['sessions_ended']} web session(s) ended, "
                   f"{ended['tokens_revoked']} API token(s) and {ended['devices_revoked']} device(s) revoked")


# -- devices -----------------------------------------------------------------------------


@devices_cli.command("add")
def devices_add(
    name: Annotated[str, typer.Argument(help="Device name, e.g. tablet-kolwezi-03.")],
    user: Annotated[str, typer.Option(help="Username the tablet acts for.")],
    base_url: Annotated[str | None, typer.Option(help="Server URL the tablet reaches (default: ASMFIELD_BASE_URL or http://127.0.0.1:8000).")] = None,
    qr: Annotated[Path | None, typer.Option(help="Where to write the QR code PNG (default: DATA_DIR/devices/NAME.png).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a tablet; print its token and write an ODK Collect configuration QR code (PNG).

    The operator on the server box may register a tablet for any active user (the API lets only
    the owner do it); the audit log names the operator (``cli:<login>``).
    """
    with service_session() as (settings, session):
        device, token = accounts.create_device(session, name=name, user=user, operator=operator_label())
        url = device_server_url(base_url or settings.base_url or "http://127.0.0.1:8000", token)
        payload = encode_settings(collect_settings(url, f"asmfield {device.name}"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device.name)
        path = write_qr_png(payload, qr or settings.data_dir / "devices" / f"{safe}.png")
        emit(as_json, {"id": device.id, "name": device.name, "token": token, "server_url": url, "qr_png": str(path),
                       "collect_settings": payload},
             f"Device {device.name!r} created for {user!r}.\nToken (shown once): {token}\nServer URL: {url}\n"
             f"ODK Collect QR code: {path}")


@devices_cli.command("revoke")
def devices_revoke(name: Annotated[str, typer.Argument(help="Device name.")], as_json: JsonOpt = False) -> None:
    """Revoke a tablet's token (lost or stolen tablet); it stops working at once."""
    with service_session() as (_, session):
        device = accounts.revoke_device(session, accounts.get_device(session, name), operator=operator_label())
        emit(as_json, _public(DevicePublic, device), f"Device {device.name!r} revoked")


@devices_cli.command("list")
def devices_list(as_json: JsonOpt = False) -> None:
    """List devices."""
    with service_session() as (_, session):
        devices = list(session.exec(select(Device).order_by(Device.name)))
        if as_json:
            typer.echo(json.dumps([_public(DevicePublic, d) for d in devices]))
            return
        for d in devices:
            typer.echo(f"{d.id}\t{d.name}\t{'revoked' if d.revoked_at else 'active'}")


# -- backup / restore (issue 15) ---------------------------------------------------------------


def _stderr(message: str) -> None:
    typer.echo(message, err=True)


@cli.command()
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A new directory, or a new .tar / .tar.gz file (by its suffix).")],
    verify: Annotated[bool, typer.Option("--verify", help="Check an existing backup against its manifest "
                                         "instead of making one; exit 1 and list every problem.")] = False,
    exclude_secret: Annotated[bool, typer.Option("--exclude-secret", help="Leave DATA_DIR/secret_key out "
                                                 "(keep it elsewhere: a restored server needs it).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up the database, its media and the secret key to PATH while the server runs (or --verify one)."""
    if verify:
        check = verify_backup(path, progress=_stderr)
        manifest = check.manifest or {}
        result = {"path": str(path), "ok": check.ok, "problems": check.problems, "files": check.files,
                  "bytes": check.bytes, "created_at": manifest.get("created_at"), "database": manifest.get("database")}
        if as_json:
            typer.echo(json.dumps(result))
        else:
            for problem in check.problems:
                typer.echo(f"PROBLEM {problem}")
            typer.echo(f"{path}: {'OK' if check.ok else f'{len(check.problems)} problem(s)'}; {check.files} files, "
                       f"{check.bytes / 1e6:.1f} MB; made {result['created_at']} ({result['database']})")
        if not check.ok:
            raise typer.Exit(1)
        return
    settings = load_settings()
    try:
        manifest = create_backup(settings, current_blobs(ctx, settings), path, include_secret=not exclude_secret,
                                 operator=operator_label(), progress=_stderr)
    except DomainError as exc:
        fail(exc.message)
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    emit(as_json, {"path": str(path), **{k: manifest[k] for k in ("created_at", "database", "alembic_revisions",
                                                                   "secret_included", "media")},
                   "files": len(manifest["files"])},
         f"Backup {path}: {len(manifest['files'])} files ({manifest['media']['blobs']} media), "
         f"secret key {'included' if manifest['secret_included'] else 'NOT included'}")


@cli.command()
def restore(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A backup directory or .tar / .tar.gz file made by `asmfield backup`.")],
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into an empty data directory and empty database, checking every file; then migrate."""
    settings = load_settings()
    settings.media_path.mkdir(parents=True, exist_ok=True)
    try:
        manifest = restore_backup(settings, current_blobs(ctx, settings), path, operator=operator_label(),
                                  progress=_stderr)
    except DomainError as exc:
        fail(exc.message)
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    emit(as_json, {"path": str(path), "created_at": manifest["created_at"], "database": manifest["database"],
                   "files": len(manifest["files"]), "secret_included": manifest["secret_included"]},
         f"Restored {path} (made {manifest['created_at']}): {len(manifest['files'])} files; schema up to date"
         + ("" if manifest["secret_included"] else
            "; the backup held no secret key: put it back (DATA_DIR/secret_key or ASMFIELD_SECRET_KEY)"))


for _capability in CAPABILITIES:
    if _capability.cli is not None:
        cli.add_typer(_capability.cli, name=_capability.cli_name or _capability.name)


def main() -> None:
    cli()
