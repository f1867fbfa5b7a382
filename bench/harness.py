"""What every sync benchmark needs: a fresh data directory and database (SQLite file, or a new
PostgreSQL database when ``--pg`` is given), migrated and seeded through the services, and the
real server started as a child uvicorn process over it (tests/e2e/server.py).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from app import accounts
from app.blobs import FilesystemBlobStore
from app.db import make_engine, migrate, session_scope
from app.settings import Settings
from tests.e2e.server import LiveServer, live_server, settings_env
from tests.factories import add_form

SECRET = "bench-secret-key-0123456789abcdef"
PASSWORD = "bench-Password-2026!"


@dataclass
class BenchEnv:
    settings: Settings
    server: LiveServer
    device_token: str
    api_token: str
    version: object  # FormVersion of the sample visit form
    db_label: str

    @property
    def url(self) -> str:
        return self.server.url


def _pg_admin(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def _pg(url: str, sql: str) -> None:
    engine = create_engine(_pg_admin(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@contextmanager
def bench_env(*, pg_url: str | None = None, workers: int | None = 2, **overrides: object) -> Iterator[BenchEnv]:
    """A migrated, seeded database and a running server; everything removed afterwards.

    :param workers: uvicorn worker processes; None starts ``asmfield serve`` as operators do, with
        the worker count it picks for the database.
    """
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-bench-"))
    db_name = None
    try:
        database_url = None
        if pg_url:
            db_name = f"asmfield_bench_{uuid.uuid4().hex[:10]}"
            _pg(pg_url, f'CREATE DATABASE "{db_name}"')
            database_url = pg_url.rsplit("/", 1)[0] + f"/{db_name}"
        settings = Settings(data_dir=tmp, secret_key=SECRET, database_url=database_url, **overrides)
        engine = make_engine(settings)
        migrate(engine)
        with session_scope(engine) as s:
            org = accounts.create_organisation(s, name="Bench", kind="coordinator")
            user = accounts.create_user(s, username="bench", password=PASSWORD, role="monitor", organisation=org.id)
            admin = accounts.create_user(s, username="bench_admin", password=PASSWORD, role="admin",
                                         organisation=org.id)
            _, device_token = accounts.create_device(s, name="bench-tablet", user=user.id)
            _, api_token = accounts.create_api_token(s, user=admin, name="bench")
            _, version = add_form(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings)
        engine.dispose()
        with live_server(settings_env(settings, **overrides), workers=workers or 1, cli=workers is None) as server:
            try:
                yield BenchEnv(settings=settings, server=server, device_token=device_token, api_token=api_token,
                               version=version, db_label="PostgreSQL" if pg_url else "SQLite")
            except BaseException:
                print(f"--- server log (last 4000 characters) ---\n{server.log()[-4000:]}")
                raise
    finally:
        if db_name:
            _pg(pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def count_submissions(env: BenchEnv) -> int:
    engine = make_engine(env.settings)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM submission")).scalar_one()
    finally:
        engine.dispose()


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews every number (noted per row)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def machine() -> str:
    """One line about the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} CPU ({cpu}){mem}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
