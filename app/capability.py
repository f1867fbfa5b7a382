"""The shape of a capability: what one package brings to the server, declared in one object.

Each capability package (``forms``, ``sync``, ``geodata``, ``cases``, later ``reports``) exposes
``capability = Capability(...)`` in its ``capability.py``. The composition root
(``app.composition.CAPABILITIES``, one ordered list) is the only code that iterates them: it
mounts their routes, adds their CLI groups, seeds their demo data and registers their reactions,
record policies and generated form media in a ``Hooks`` object (``app.events``). No package
imports the composition root, and a capability never names one that comes after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.blobs import BlobStore
from app.events import (
    EditPolicy,
    GeneratedMedia,
    Hooks,
    RestrictedDataPolicy,
    SubmissionFields,
    SubmissionFilter,
)

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI
    from sqlmodel import Session

    from app.settings import Settings


@dataclass(frozen=True)
class Capability:
    """What a package brings; every field but ``name`` is optional.

    :param name: the package name; also its Alembic branch label (``<name>/migrations/versions``).
    :param install: ``install(app)`` mounts the package's routers on the FastAPI app.
    :param cli: its typer group, added as ``asmfield <cli_name> ...``.
    :param seed_demo: ``seed_demo(session, settings, hooks, blobs) -> summary`` for ``init --demo`` (idempotent).
    :param subscriptions: ``(event type, handler)`` pairs; handlers get the event (``app.events``).
    :param edit_policies / restricted_data_policies: record policies the package answers.
    :param form_media: form media files the package generates.
    :param submission_filters: ``(name, condition)`` list filters of the submission read API it answers.
    :param submission_fields: what it adds to each submission the read API describes.
    :param install_web: ``install_web(app)`` mounts its web pages (after every capability's API and
        OpenRosa routes, so a page path never shadows a protocol path such as ``/forms/{id}.xml``).
    :param nav: its entries in the web app's navigation (``app.web.render.NavLink``).
    """

    name: str
    install: Callable[[FastAPI], None] | None = None
    cli: typer.Typer | None = None
    cli_name: str | None = None
    seed_demo: Callable[[Session, Settings, Hooks, BlobStore], dict[str, Any]] | None = None
    subscriptions: tuple[tuple[type, Callable[[Any], None]], ...] = ()
    edit_policies: tuple[EditPolicy, ...] = ()
    restricted_data_policies: tuple[RestrictedDataPolicy, ...] = ()
    form_media: tuple[GeneratedMedia, ...] = ()
    submission_filters: tuple[tuple[str, SubmissionFilter], ...] = ()
    submission_fields: tuple[SubmissionFields, ...] = ()
    install_web: Callable[[FastAPI], None] | None = None
    nav: tuple[Any, ...] = ()

    @property
    def models_module(self) -> str:
        return f"{self.name}.models"

    @property
    def migrations(self) -> str:
        return f"{self.name}/migrations/versions"

    def register(self, hooks: Hooks) -> None:
        """Add this capability's subscriptions, policies and generated media to ``hooks``."""
        for event_type, handler in self.subscriptions:
            hooks.subscribe(event_type, handler)
        hooks.edit_policies.extend(self.edit_policies)
        hooks.restricted_data_policies.extend(self.restricted_data_policies)
        for media in self.form_media:
            hooks.add_media(media)
        for name, condition in self.submission_filters:
            hooks.add_submission_filter(name, condition)
        hooks.submission_fields.extend(self.submission_fields)
