"""Shared fixtures: a real app over a real database (SQLite file, or PostgreSQL when
``ASMFIELD_TEST_POSTGRES_URL`` is set), seeded through the services.

The schema is migrated once per test session into a template (a SQLite file that is copied,
or a PostgreSQL template database that is cloned), so every test still gets a fresh database.
On PostgreSQL the clones are made ahead and dropped behind the tests in background threads
(``PgClones``): a DROP DATABASE waits ~0.8 s for a checkpoint, longer than most tests run.

Apps built here run neither the webhook delivery worker nor the export runner (their threads
cost ~140 ms at every app start-up and write to the test's database behind its back); the tests
of those threads switch them on with ``ASMFIELD_WEBHOOK_WORKER`` / ``ASMFIELD_EXPORT_RUNNER``.
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from app import accounts
from app.db import make_engine, migrate, session_scope
from app.main import create_app
from app.models import Organisation, User
from app.settings import Settings

#: the real-Chromium fixtures (``web``, ``demo_server``) for the page tests
pytest_plugins = ["tests.browser"]

PG_URL = os.environ.get("ASMFIELD_TEST_POSTGRES_URL")
SECRET = "test-secret-key-0123456789abcdef"
STORAGE_FIXTURES = {"settings", "engine", "session", "app", "client", "live_server", "world"}

# A developer's own ASMFIELD_* settings (Makefile exports ASMFIELD_DATA_DIR) must not leak into tests.
for _name in [n for n in os.environ if n.startswith("ASMFIELD_") and n != "ASMFIELD_TEST_POSTGRES_URL"]:
    del os.environ[_name]
# Background threads off in the apps of this process (live servers get their own environment: on there).
os.environ["ASMFIELD_WEBHOOK_WORKER"] = "false"
os.environ["ASMFIELD_EXPORT_RUNNER"] = "false"


def pytest_configure(config: pytest.Config) -> None:
    """Cheap argon2 parameters in tests: every fixture user costs ~0.2 ms instead of ~150 ms.

    Hashes carry their parameters, so verification (also in a live server process) is unchanged;
    tests/app/test_security.py checks the production parameters separately.
    """
    from argon2 import PasswordHasher

    from app import security

    security._hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)  # noqa: SLF001


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that touches storage is marked ``storage`` (run again on PostgreSQL by CI)."""
    for item in items:
        if STORAGE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.storage)


def _pg_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


_pg_admin_engine = None


def _pg_execute(*statements: str) -> None:
    """Run statements on the server's ``postgres`` database (autocommit; safe from several threads)."""
    global _pg_admin_engine  # noqa: PLW0603 -- one small pool per test process
    if _pg_admin_engine is None:
        _pg_admin_engine = create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT", pool_size=10,
                                         max_overflow=0)
    with _pg_admin_engine.connect() as conn:
        for sql in statements:
            conn.execute(text(sql))


class PgClones:
    """Fresh PostgreSQL databases cloned from the migrated template, two made ahead of need and each
    dropped after its test in the background, so neither wait is in a test's setup or teardown.

    A clone is taken once and dropped once (never reused). Commits on clones skip the WAL flush
    (``synchronous_commit = off``: a crash of the test server may lose them, nothing else changes).
    """

    AHEAD = 2

    def __init__(self, template: str) -> None:
        self.template = template
        self._makers = ThreadPoolExecutor(1, thread_name_prefix="pg-clone")
        self._droppers = ThreadPoolExecutor(8, thread_name_prefix="pg-drop")
        self._ready: deque[Future[str]] = deque()
        self._dropped: list[Future[None]] = []
        self._lock = threading.Lock()

    def _make(self) -> str:
        name = f"asmfield_t_{uuid.uuid4().hex[:12]}"
        _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"',
                    f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return name

    def take(self) -> str:
        with self._lock:
            while len(self._ready) < self.AHEAD + 1:
                self._ready.append(self._makers.submit(self._make))
            made = self._ready.popleft()
        return made.result()

    def drop(self, name: str) -> None:
        self._dropped.append(self._droppers.submit(_pg_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        """Drop the clones made ahead and wait for every drop (a failed one is raised: no database is left behind
        unnoticed)."""
        self._makers.shutdown(wait=True)
        for made in self._ready:
            if made.exception() is None:
                self.drop(made.result())
        self._droppers.shutdown(wait=True)
        for dropped in self._dropped:
            dropped.result()


#: The clone makers of this process's templates (``fresh_database`` is also called outside fixtures).
_pg_clones: dict[str, PgClones] = {}


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    """A migrated database to copy from: a SQLite file path or a PostgreSQL database name."""
    if PG_URL:
        name = f"asmfield_tmpl_{worker_id}_{uuid.uuid4().hex[:8]}"
        _pg_execute(f'CREATE DATABASE "{name}"')
        settings = Settings(data_dir=tmp_path_factory.mktemp("tmpl"), secret_key=SECRET, database_url=_pg_url(name))
        engine = make_engine(settings)
        migrate(engine)
        engine.dispose()
        _pg_clones[name] = clones = PgClones(name)
        yield name
        del _pg_clones[name]
        clones.close()
        _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    settings = Settings(data_dir=path.parent, secret_key=SECRET, database_url=f"sqlite:///{path}")
    engine = make_engine(settings)
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    yield str(path)


@contextmanager
def fresh_database(data_dir: Path, db_template: str) -> Iterator[Settings]:
    """Settings over ``data_dir`` and a new database cloned from the migrated template (dropped after)."""
    data_dir.mkdir()
    if PG_URL:
        clones = _pg_clones[db_template]
        name = clones.take()
        try:
            yield Settings(data_dir=data_dir, secret_key=SECRET, database_url=_pg_url(name))
        finally:
            clones.drop(name)
        return
    shutil.copyfile(db_template, data_dir / "asmfield.db")
    yield Settings(data_dir=data_dir, secret_key=SECRET)


@pytest.fixture
def settings(tmp_path: Path, db_template: str, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for one test: its own data dir and its own freshly migrated database (a copy of the
    world template when the test uses ``world``)."""
    template = request.getfixturevalue("world_template").database if "world" in request.fixturenames else db_template
    with fresh_database(tmp_path / "data", template) as fresh:
        yield fresh


@pytest.fixture
def engine(settings: Settings):
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """A session for calling services directly; committed at the end of the test's block."""
    with session_scope(engine) as s:
        yield s


@pytest.fixture
def app(settings: Settings, engine):
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


# -- people ------------------------------------------------------------------------------

PASSWORD = "field-Work-2026!"


@dataclass
class Person:
    """A seeded user with the credentials a client would send."""

    user: User
    password: str
    token: str

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def basic(self) -> dict[str, str]:
        raw = base64.b64encode(f"{self.user.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """A coordinator organisation, two partner NGOs and one user per role."""

    engine: object
    coord_org: Organisation
    ngo_a: Organisation
    ngo_b: Organisation
    admin: Person
    coordinator: Person
    monitor: Person
    monitor2: Person
    caseworker_a: Person
    caseworker_b: Person

    def person(self, role: str) -> Person:
        return {"admin": self.admin, "coordinator": self.coordinator, "monitor": self.monitor,
                "caseworker": self.caseworker_a}[role]


def make_person(session: Session, username: str, role: str, org: Organisation) -> Person:
    user = accounts.create_user(session, username=username, password=PASSWORD, role=role, organisation=org.id)
    _, token = accounts.create_api_token(session, user=user, name="tests")
    return Person(user=user, password=PASSWORD, token=token)


#: The world's people: World field, username, role, organisation (World field).
WORLD_PEOPLE = (("admin", "admin", "admin", "coord_org"), ("coordinator", "coord", "coordinator", "coord_org"),
                ("monitor", "monitor", "monitor", "coord_org"), ("monitor2", "monitor2", "monitor", "coord_org"),
                ("caseworker_a", "cw_a", "caseworker", "ngo_a"), ("caseworker_b", "cw_b", "caseworker", "ngo_b"))
WORLD_ORGANISATIONS = (("coord_org", "Coordination", "coordinator"), ("ngo_a", "NGO A", "ngo"), ("ngo_b", "NGO B", "ngo"))


def seed_world(engine) -> World:
    """Organisations and one user per role, created through the services and committed."""
    with session_scope(engine) as s:
        orgs = {field: accounts.create_organisation(s, name=name, kind=kind) for field, name, kind in WORLD_ORGANISATIONS}
        people = {field: make_person(s, username, role, orgs[org]) for field, username, role, org in WORLD_PEOPLE}
    return World(engine=engine, **orgs, **people)


def load_world(engine, tokens: dict[str, str]) -> World:
    """The world of a database copied from the world template (its rows, and the clear API tokens kept from seeding)."""
    with session_scope(engine) as s:
        orgs = {o.name: o for o in s.exec(select(Organisation))}
        users = {u.username: u for u in s.exec(select(User))}
    return World(engine=engine, **{field: orgs[name] for field, name, _ in WORLD_ORGANISATIONS},
                 **{field: Person(user=users[username], password=PASSWORD, token=tokens[field])
                    for field, username, _, _ in WORLD_PEOPLE})


@dataclass
class WorldTemplate:
    """A migrated database with the world seeded (what ``fresh_database`` copies) and the people's clear tokens."""

    database: str
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory, db_template: str) -> Iterator[WorldTemplate]:
    """The world seeded once per test process: a test that uses it gets a copy (seeding cost ~50 ms a test on
    SQLite, more on PostgreSQL). Timestamps of its rows are those of the seeding, earlier in the session."""
    if PG_URL:
        name = f"{db_template}_world"
        _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{db_template}"')
        settings = Settings(data_dir=tmp_path_factory.mktemp("world"), secret_key=SECRET, database_url=_pg_url(name))
    else:
        path = tmp_path_factory.mktemp("world") / "world.db"
        shutil.copyfile(db_template, path)
        name = str(path)
        settings = Settings(data_dir=path.parent, secret_key=SECRET, database_url=f"sqlite:///{path}")
    engine = make_engine(settings)
    seeded = seed_world(engine)
    tokens = {field: getattr(seeded, field).token for field, _, _, _ in WORLD_PEOPLE}
    if not PG_URL:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    if not PG_URL:
        yield WorldTemplate(name, tokens)
        return
    _pg_clones[name] = clones = PgClones(name)
    yield WorldTemplate(name, tokens)
    del _pg_clones[name]
    clones.close()
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def world(engine, world_template: WorldTemplate) -> World:
    """Organisations and one user per role, committed, ready for API calls (the test's database is a copy
    of the world template; see ``settings``)."""
    return load_world(engine, world_template.tokens)
