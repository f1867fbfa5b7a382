"""Shared pieces of every ``asmfield`` sub-command: settings, a committing session, output, errors.

Each capability's ``cli.py`` imports these at module level; ``app.cli`` only composes the groups.
Domain errors become a one-line message and exit code 1, never a traceback. Commands that
create something accept ``--json`` and then print one JSON object for scripts.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlmodel import Session

from app.blobs import BlobStore
from app.db import make_engine, session_scope
from app.errors import DomainError
from app.events import Hooks
from app.settings import Settings

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


@dataclass
class CliRoot:
    """What the entry point (``app.cli``) puts on the root context object: the composition's hooks
    and how to build the blob store (once per run, from the settings the command runs with). It is
    shared by every run in a process: nothing built from one run's settings may be kept on it."""

    hooks: Hooks
    make_blobs: Callable[[Settings], BlobStore]


def _root(ctx: typer.Context) -> CliRoot:
    root = ctx.find_root().obj
    if not isinstance(root, CliRoot):  # pragma: no cover -- a sub-app invoked without the entry point
        raise RuntimeError("this command runs under the asmfield entry point (app.cli), which provides the hooks")
    return root


def current_hooks(ctx: typer.Context) -> Hooks:
    """The composition's hooks (``app.events``) for this command (declare a ``ctx: typer.Context``
    parameter): the entry point puts them on the root context object (``app.cli``), so a command
    never imports the composition."""
    return _root(ctx).hooks


def current_blobs(ctx: typer.Context, settings: Settings | None = None) -> BlobStore:
    """The blob store for this command, built by the entry point's factory on first use (from
    ``settings``, default: the environment's). Kept in the root context's ``meta``, which is new
    for every invocation: the ``CliRoot`` object itself is shared by every run of the CLI in one
    process (tests run many, each with its own data directory)."""
    meta = ctx.find_root().meta
    if _BLOBS not in meta:
        meta[_BLOBS] = _root(ctx).make_blobs(settings or load_settings())
    return meta[_BLOBS]


_BLOBS = "asmfield.blobs"


@contextmanager
def service_session(settings: Settings | None = None) -> Iterator[tuple[Settings, Session]]:
    """Settings + a committing session for one command; domain errors become exit 1."""
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
