"""Database engine, sessions and migrations.

One engine per app (built by ``create_app`` from settings, never at import time), so each
test gets its own database. SQLite runs in WAL mode with foreign keys and a busy timeout, and
the writers of one process queue for the write lock in Python (``_WriterGate``) instead of in
SQLite's busy handler; PostgreSQL gets a connection pool. The schema is owned by Alembic: each capability package
keeps its own migration branch (``<package>/migrations/versions``) and ``migrate`` upgrades
all heads, so field servers are upgraded in place with their data kept.
"""

from __future__ import annotations

import collections
import importlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool
from sqlmodel import Session

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
#: The kernel and the capability packages — every top-level package with a ``capability.py`` — each with
#: models.py and migrations/. Found on disk, not imported: the kernel imports no capability, and a new
#: capability needs no line here (a test keeps this equal to ``app.composition.CAPABILITIES``).
PACKAGES = ("app", *sorted(p.name for p in ROOT.iterdir() if p.name != "app" and (p / "capability.py").is_file()))


def import_all_models() -> None:
    """Import every ``<package>/models.py`` so SQLModel.metadata knows all tables."""
    for package in PACKAGES:
        importlib.import_module(f"{package}.models")


def table_packages() -> dict[str, str]:
    """Which package owns each table (by the module of its SQLModel class)."""
    from sqlmodel import SQLModel

    import_all_models()
    owners: dict[str, str] = {}
    for mapper in SQLModel._sa_registry.mappers:  # noqa: SLF001
        table = getattr(mapper.class_, "__table__", None)
        if table is not None:
            owners[table.name] = mapper.class_.__module__.split(".")[0]
    return owners


#: Statements before which pysqlite (Python < 3.12, legacy transaction control) opens a transaction
#: itself (its ``is_dml`` test), plus an explicit BEGIN (``_savepoint_inside_a_transaction``).
_OPENS_WRITE = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


class _WriterGate:
    """One SQLite write transaction at a time per engine, queued first come first served in this process.

    Why (issue 13): SQLite lets one writer in at a time. Without this, every other thread that
    wants to write waits in SQLite's busy handler, which sleeps in growing steps (1, 2, 5 … 100 ms)
    and polls: at 8 concurrent uploads most wall time was spent asleep while the lock was free,
    and the p99 passed a second. Here a thread takes the gate just before the statement with
    which pysqlite opens the write transaction, and hands it on the moment that transaction
    commits or rolls back, so the next writer starts at once. The gate covers exactly the span
    in which SQLite holds its write lock anyway: it adds no waiting and changes no transaction
    or commit, so durability is what SQLite gives. Writers in other processes (several workers)
    still meet in the busy handler; reads never touch the gate (WAL readers do not block).
    """

    def __init__(self, timeout: float) -> None:
        self._mutex = threading.Lock()
        self._holder: object | None = None
        #: Writers waiting, first come first served: (their ticket, their connection).
        self._waiters: collections.deque[tuple[threading.Lock, object]] = collections.deque()
        self.timeout = timeout

    def enter(self, dbapi_connection: object) -> None:
        with self._mutex:
            if self._holder is dbapi_connection:
                return
            if self._holder is None:
                self._holder = dbapi_connection
                return
            ticket = threading.Lock()
            ticket.acquire()
            entry = (ticket, dbapi_connection)
            self._waiters.append(entry)
        if ticket.acquire(timeout=self.timeout):
            return  # handed over by ``leave``: this connection holds the gate now
        with self._mutex:
            if self._holder is dbapi_connection:  # handed over just as the wait ended
                return
            self._waiters.remove(entry)
        # What SQLite's busy handler would have said after the same wait.
        raise sqlite3.OperationalError("database is locked (waited for this process's writer)")

    def held(self) -> bool:
        return self._holder is not None

    def leave(self, dbapi_connection: object) -> None:
        """Hand the gate to the writer that has waited longest (a plain lock lets a newcomer barge in
        and can keep one waiter out for seconds: the tail at 32 concurrent uploads, issue 13)."""
        with self._mutex:
            if self._holder is None or self._holder is not dbapi_connection:
                return
            if self._waiters:
                ticket, self._holder = self._waiters.popleft()
                ticket.release()
            else:
                self._holder = None


def _raw(connection: object) -> object:
    """The sqlite3 connection behind a pool's proxy (the dialect gets either)."""
    return getattr(connection, "dbapi_connection", connection)


def _install_writer_gate(engine: Engine, timeout: float) -> _WriterGate:
    """Take the gate before a statement that opens a write transaction; leave it when the
    connection commits, rolls back (also the pool's reset on return) or is closed."""
    gate = _WriterGate(timeout)

    @event.listens_for(engine, "before_cursor_execute")
    def _take_gate(conn, _cursor, statement, _parameters, _context, _executemany):  # noqa: ANN001
        raw = conn.connection.dbapi_connection
        if not raw.in_transaction and statement.lstrip()[:7].upper().startswith(_OPENS_WRITE):
            gate.enter(raw)

    @event.listens_for(engine, "handle_error")
    def _gate_after_error(context):  # noqa: ANN001
        # A failed opening statement (e.g. another process held the lock) leaves no transaction.
        conn = context.connection
        if conn is not None and not conn.invalidated:
            raw = conn.connection.dbapi_connection
            if raw is not None and not raw.in_transaction:
                gate.leave(raw)

    dialect = engine.dialect
    commit, rollback, close = dialect.do_commit, dialect.do_rollback, dialect.do_close

    def do_commit(dbapi_connection):  # noqa: ANN001, ANN202
        try:
            commit(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    def do_rollback(dbapi_connection):  # noqa: ANN001, ANN202
        try:
            rollback(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    def do_close(dbapi_connection):  # noqa: ANN001, ANN202
        try:
            close(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    dialect.do_commit, dialect.do_rollback, dialect.do_close = do_commit, do_rollback, do_close
    return gate


def make_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings.db_url`` with the pragmas/pool each backend needs."""
    url = settings.db_url
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # A pool, not NullPool: opening a SQLite connection (pragmas) and closing the last one (WAL
        # checkpoint) cost 7-20 ms, most of an ingest request.
        pool = {} if ":memory:" in url else {"poolclass": QueuePool, "pool_size": settings.pool_size,
                                             "max_overflow": settings.pool_size}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # FULL, not NORMAL: in WAL mode NORMAL does not sync the WAL at commit, so a power cut can
            # lose transactions that were already answered 201. FULL costs one fsync per commit
            # (~2.8 ms on the build machine, measured for issue 13).
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "savepoint")
        def _savepoint_inside_a_transaction(conn, _name):  # noqa: ANN001
            # pysqlite (Python < 3.12) only opens a transaction before DML. A SAVEPOINT sent
            # first would open one itself, and releasing it would COMMIT: per-item savepoints of
            # a batch would then commit early. Open the real transaction first.
            if not conn.connection.dbapi_connection.in_transaction:
                conn.exec_driver_sql("BEGIN")

        engine.sqlite_writer_gate = _install_writer_gate(engine, timeout=30)
        return engine
    return create_engine(url, pool_size=settings.pool_size, max_overflow=settings.pool_size, pool_pre_ping=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.

    Service functions never commit; the HTTP request dependency and the CLI use this.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine):  # noqa: ANN201
    """An Alembic config that finds every package's migration branch."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "app" / "alembic"))
    locations = [str(ROOT / p / "migrations" / "versions") for p in PACKAGES if (ROOT / p / "migrations" / "versions").is_dir()]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision of every branch, keeping data."""
    from alembic import command

    import_all_models()
    command.upgrade(alembic_config(engine), "heads")


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a fresh database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


class RowIds:
    """Row ids remembered per process and per engine across requests ({key: id}), bounded (cleared
    when full). Only steers a lookup to a primary-key read: callers still read and check the row in
    their own session, so a change committed by any process counts at once and nothing needs
    invalidating. Per engine, so two apps (or tests) over two databases never share ids."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._maps: weakref.WeakKeyDictionary[Engine, dict] = weakref.WeakKeyDictionary()
        self._max = max_entries

    def __getitem__(self, engine: Engine) -> dict:
        return self._maps[engine]

    def __contains__(self, engine: object) -> bool:
        return engine in self._maps

    def of(self, session: Session) -> dict:
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        ids = self._maps.get(engine)
        if ids is None or len(ids) >= self._max:
            ids = self._maps[engine] = {}
        return ids
