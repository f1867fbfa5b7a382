"""FastAPI dependencies shared by every router: settings, session, client address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from app.blobs import BlobStore
from app.db import session_scope
from app.events import Hooks
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on error.

    ``SessionDep`` declares it with ``scope="function"``: FastAPI's default for yield dependencies
    would commit only *after* the response went out, so a client could be told 201 for a
    transaction that then failed to commit.
    """
    with session_scope(request.app.state.engine) as session:
        yield session


def get_blobs(request: Request) -> BlobStore:
    """The blob store the composition root built (``create_app``)."""
    return request.app.state.blobs


def get_hooks(request: Request) -> Hooks:
    """The capabilities' reactions, record policies and generated media (``app.events``)."""
    return request.app.state.hooks


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
HooksDep = Annotated[Hooks, Depends(get_hooks)]
