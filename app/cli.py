"""The ``asmfield`` command line: a thin typer layer over the service functions.

Domain errors become a one-line message and exit code 1, never a traceback. Commands that
create something accept ``--json`` and then print one JSON object for scripts.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlmodel import Session

from app.errors import DomainError
from app.settings import Settings

cli = typer.Typer(help="asmfield: offline-first field data for artisanal mining sites.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
users_cli = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
orgs_cli = typer.Typer(help="Manage organisations (coordinator organisation, partner NGOs).", no_args_is_help=True)
devices_cli = typer.Typer(help="Manage tablets (device tokens and ODK Collect QR codes).", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(orgs_cli, name="orgs")
cli.add_typer(devices_cli, name="devices")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting ASMFIELD_{str(first['loc'][0]).upper()}: {first['msg']}")
        raise  # unreachable


def fail(message: str) -> None:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


@contextmanager
def service_session(settings: Settings | None = None) -> Iterator[tuple[Settings, Session]]:
    """Settings + a committing session for one command; domain errors become exit 1."""
    from app.db import make_engine, session_scope

    settings = settings or load_settings()
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            yield settings, session
    except DomainError as exc:
        fail(exc.message)
    except RuntimeError as exc:  # e.g. no secret key yet
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    finally:
        engine.dispose()


def database_problem(exc: Exception) -> str:
    """One line saying what is wrong with the database, and what to do."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    if isinstance(exc, (OperationalError, ProgrammingError)) and ("no such table" in detail or "does not exist" in detail):
        return f"the database has no asmfield schema yet ({detail}); run `asmfield init` first"
    return f"database error: {detail}"


def operator_label() -> str:
    """Who runs this command on the server box, for the audit log ("cli:<login name>").

    The CLI is the operator's tool (it reads the database directly): what it does is audited
    under this label, with ``via: cli`` where it acts on somebody's credentials.
    """
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        login = "unknown"
    return f"cli:{login}"[:150]


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(data, default=str) if as_json else text)


# -- init / serve ------------------------------------------------------------------------


@cli.command()
def init(
    demo: Annotated[bool, typer.Option("--demo", help="Also load demo organisations, users, forms, sites and cases.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or upgrade the data directory and database schema in place (data is kept)."""
    from app.db import make_engine, migrate

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
        from app.demo import seed_demo

        with service_session(settings) as (_, session):
            result["demo"] = seed_demo(session, settings)
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(f"Data directory: {result['data_dir']}\nDatabase: {result['database']} (schema up to date)")
    if demo:
        from app.demo import describe_demo

        typer.echo(describe_demo(result["demo"]))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use several with PostgreSQL).")] = 1,
) -> None:
    """Serve the web, JSON and OpenRosa APIs with uvicorn."""
    import uvicorn

    settings = load_settings()
    try:
        settings.secret  # noqa: B018
    except RuntimeError as exc:
        fail(str(exc))
    # X-Forwarded-For names the client only when the operator lists the proxies that set it (uvicorn's
    # FORWARDED_ALLOW_IPS); else a local process, or a proxy passing the header on, picks the address
    # the auth throttle and the audit log see.
    uvicorn.run("app.main:asgi_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level, proxy_headers=bool(os.environ.get("FORWARDED_ALLOW_IPS")))


# -- organisations -----------------------------------------------------------------------


@orgs_cli.command("add")
def orgs_add(
    name: Annotated[str, typer.Argument(help="Organisation name.")],
    kind: Annotated[str, typer.Option(help="coordinator or ngo.")] = "ngo",
    as_json: JsonOpt = False,
) -> None:
    """Add an organisation."""
    from app import accounts

    with service_session() as (_, session):
        org = accounts.create_organisation(session, name=name, kind=kind, operator=operator_label())
        emit(as_json, {"id": org.id, "name": org.name, "kind": org.kind}, f"Organisation {org.name!r} ({org.kind}) created, id {org.id}")


@orgs_cli.command("list")
def orgs_list(as_json: JsonOpt = False) -> None:
    """List organisations."""
    from app import accounts

    with service_session() as (_, session):
        orgs = accounts.list_organisations(session)
        if as_json:
            typer.echo(json.dumps([{"id": o.id, "name": o.name, "kind": o.kind} for o in orgs]))
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
    from app import accounts

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    with service_session() as (_, session):
        user = accounts.create_user(session, username=name, password=password, role=role, organisation=org,
                                    full_name=full_name, operator=operator_label())
        emit(as_json, {"id": user.id, "username": user.username, "role": user.role, "organisation_id": user.organisation_id},
             f"User {user.username!r} ({user.role}) created, id {user.id}")


@users_cli.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users."""
    from sqlmodel import select

    from app.models import User

    with service_session() as (_, session):
        users = list(session.exec(select(User).order_by(User.username)))
        if as_json:
            typer.echo(json.dumps([{"id": u.id, "username": u.username, "role": u.role, "organisation_id": u.organisation_id,
                                    "active": u.active} for u in users]))
            return
        for u in users:
            typer.echo(f"{u.id}\t{u.role}\t{u.username}{'' if u.active else ' (inactive)'}")


@users_cli.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="Username.")],
    password: Annotated[str | None, typer.Option(help="New password (prompted when omitted).")] = None,
) -> None:
    """Set a user's password (their web sessions end and their API tokens are revoked)."""
    from app import accounts

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
    from app import accounts

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
    from app import accounts
    from app.collect import collect_settings, device_server_url, encode_settings, write_qr_png

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
    from app import accounts

    with service_session() as (_, session):
        device = accounts.revoke_device(session, accounts.get_device(session, name), operator=operator_label())
        emit(as_json, {"id": device.id, "name": device.name, "revoked_at": device.revoked_at}, f"Device {device.name!r} revoked")


@devices_cli.command("list")
def devices_list(as_json: JsonOpt = False) -> None:
    """List devices."""
    from sqlmodel import select

    from app.models import Device

    with service_session() as (_, session):
        devices = list(session.exec(select(Device).order_by(Device.name)))
        if as_json:
            typer.echo(json.dumps([{"id": d.id, "name": d.name, "user_id": d.user_id, "revoked_at": d.revoked_at,
                                    "last_seen_at": d.last_seen_at} for d in devices], default=str))
            return
        for d in devices:
            typer.echo(f"{d.id}\t{d.name}\t{'revoked' if d.revoked_at else 'active'}")


def _register_capabilities() -> None:
    """Sub-commands of the capability packages (forms, sites, cases)."""
    from cases.cli import cli as cases_cli
    from forms.cli import cli as forms_cli
    from geodata.cli import cli as sites_cli

    cli.add_typer(forms_cli, name="forms")
    cli.add_typer(sites_cli, name="sites")
    cli.add_typer(cases_cli, name="cases")


_register_capabilities()


def main() -> None:
    cli()
