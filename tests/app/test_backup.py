"""Backups that restore (issue 15): a backup taken while a real server takes submissions with photos
comes back, row for row and byte for byte, into an empty data directory and database; ``--verify``
finds a changed byte and a missing file; restore refuses a target that holds anything.

Runs on SQLite and, with ``ASMFIELD_TEST_POSTGRES_URL``, on PostgreSQL (the restore goes into a
new, empty database this module creates).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from app.backup import BackupInvalid, BackupRefused, create_backup, restore_backup, verify_backup
from app.blobs import FilesystemBlobStore
from app.cli import cli
from app.db import alembic_config, current_revisions, import_all_models, make_engine, session_scope
from app.settings import SECRET_FILE_NAME, Settings
from tests.e2e.server import live_server, settings_env
from tests.factories import add_form, multipart, new_instance_id, photo, visit_xml

PG_URL = os.environ.get("ASMFIELD_TEST_POSTGRES_URL")


@pytest.fixture
def empty_database_url() -> Iterator[str | None]:
    """A new, empty PostgreSQL database to restore into (dropped after); None on SQLite."""
    if not PG_URL:
        yield None
        return
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"asmfield_restore_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def restore_target(tmp_path: Path, name: str, database_url: str | None) -> Settings:
    """Settings of a new server: an empty data dir, the empty database (SQLite: a file in the dir)."""
    return Settings(data_dir=tmp_path / name, database_url=database_url)


def source_settings(settings: Settings) -> Settings:
    """The test's server with its secret key as a file in DATA_DIR (as ``asmfield init`` leaves it)."""
    (settings.data_dir / SECRET_FILE_NAME).write_text(settings.secret)
    return Settings(data_dir=settings.data_dir, database_url=settings.database_url)


def rows(engine) -> dict[str, dict[tuple, dict]]:  # noqa: ANN001
    """Every table's rows as dicts, keyed by primary key."""
    import_all_models()
    with engine.connect() as conn:
        return {table.name: {tuple(r[c.name] for c in table.primary_key.columns): dict(r)
                             for r in conn.execute(select(table)).mappings()}
                for table in SQLModel.metadata.sorted_tables}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Writer(threading.Thread):
    """Posts visits with a photo to the live server as a tablet would, until told to stop."""

    def __init__(self, url: str, auth: dict[str, str], version) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.url, self.auth, self.version = url, auth, version
        self.sent, self.errors = 0, []
        self.stop = threading.Event()
        self.reached = {n: threading.Event() for n in (3, 6)}

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                self.post(http, self.sent)

    def post(self, http: httpx.Client, seed: int) -> None:
        xml = visit_xml(self.version, new_instance_id(), photo_name="site.jpg", workers=seed)
        body, headers = multipart(xml, {"site.jpg": photo(seed)})
        response = http.post(f"{self.url}/submission", content=body, headers={**headers, **self.auth})
        if response.status_code != 201:
            self.errors.append(response.text)
        self.sent += 1
        for n, event in self.reached.items():
            if self.sent >= n:
                event.set()


@pytest.mark.e2e
def test_a_backup_taken_while_visits_arrive_restores_every_row_and_photo(settings, engine, world, tmp_path,
                                                                           empty_database_url):
    source = source_settings(settings)
    blobs = FilesystemBlobStore(settings.media_path)
    with session_scope(engine) as s:
        _, version = add_form(s, blobs=blobs, settings=settings)
        s.expunge(version)

    with live_server(settings_env(settings)) as server:
        writer = Writer(server.url, world.monitor.basic, version)
        writer.start()
        assert writer.reached[3].wait(120), writer.errors
        folder = create_backup(source, blobs, tmp_path / "backups" / "monday", operator="cli:test")
        assert writer.reached[6].wait(120), writer.errors
        archive = create_backup(source, blobs, tmp_path / "backups" / "monday.tar.gz", operator="cli:test")
        writer.stop.set()
        writer.join(60)
        # One more after both snapshots: it is in the source and in neither backup.
        with httpx.Client(timeout=30) as http:
            writer.post(http, 10_000)
    assert writer.errors == []
    assert folder["secret_included"] and archive["secret_included"]

    after = rows(engine)
    for backup, target_url in ((tmp_path / "backups" / "monday", empty_database_url),
                               (tmp_path / "backups" / "monday.tar.gz", None)):
        if target_url is None and PG_URL:
            continue  # one PostgreSQL restore is enough (each needs its own empty database)
        target = restore_target(tmp_path, f"restored-{backup.name}", target_url)
        restore_backup(target, FilesystemBlobStore(target.media_path), backup, operator="cli:test")
        restored_engine = make_engine(target)
        try:
            restored = rows(restored_engine)
        finally:
            restored_engine.dispose()
        assert target.secret == settings.secret

        # The snapshot is one moment: every restored row is the source's row, the submissions
        # are those received up to that moment (no gap), and some arrived later.
        kept = {table: {k: v for k, v in got.items() if not (table == "auditlog" and v["action"].startswith("backup."))}
                for table, got in restored.items()}
        for table, got in kept.items():
            assert got.items() <= after[table].items(), table
        snapshot_ids = sorted(k[0] for k in restored["submission"])
        assert 3 <= len(snapshot_ids) < len(after["submission"])
        assert snapshot_ids == sorted(k[0] for k in after["submission"] if k[0] <= snapshot_ids[-1])

        # Every blob row of the snapshot has its bytes, identical to the source's.
        store = FilesystemBlobStore(target.media_path)
        assert restored["blob"]
        for (sha,) in restored["blob"]:
            assert sha256_of(store.path(sha)) == sha == sha256_of(blobs.path(sha))
            for variant in ("thumb", "web"):  # thumbnails made by then come back too
                if store.derived_exists(sha, variant):
                    assert store.derived_path(sha, variant).read_bytes() == blobs.derived_path(sha, variant).read_bytes()
        for attachment in restored["submissionattachment"].values():
            assert attachment["received"] and store.exists(attachment["sha256"])
        # Audited: the restore in the restored database, both backups in the source.
        assert [r["action"] for r in restored["auditlog"].values() if r["action"].startswith("backup.")][-1] \
            == "backup.restore"
    assert [r["details"]["path"] for r in after["auditlog"].values() if r["action"] == "backup.create"] == \
        [str(tmp_path / "backups" / "monday"), str(tmp_path / "backups" / "monday.tar.gz")]


@pytest.fixture
def small_backup(settings, app, client, world, tmp_path) -> Path:  # noqa: ANN001
    """A directory backup of a server holding one visit with a photo."""
    with session_scope(app.state.engine) as s:
        _, version = add_form(s, blobs=app.state.blobs, settings=settings)
        xml = visit_xml(version, new_instance_id(), photo_name="site.jpg")
    body, headers = multipart(xml, {"site.jpg": photo(1)})
    assert client.post("/submission", content=body, headers={**headers, **world.monitor.basic}).status_code == 201
    path = tmp_path / "backup"
    create_backup(source_settings(settings), app.state.blobs, path)
    return path


def test_verify_finds_a_changed_byte_and_a_missing_file(small_backup, settings, tmp_path, empty_database_url):
    assert verify_backup(small_backup).ok
    changed = next(p for p in (small_backup / "media").rglob("*") if p.is_file() and "derived" not in p.parts)
    missing = small_backup / "secret_key"
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    missing.unlink()
    (small_backup / "notes.txt").write_text("not from asmfield")

    check = verify_backup(small_backup)
    changed_name, missing_name = (p.relative_to(small_backup).as_posix() for p in (changed, missing))
    assert [p.split(":")[0] for p in check.problems] == sorted([changed_name, missing_name]) + ["notes.txt"]
    assert f"{changed_name}: changed" in " ".join(check.problems)
    assert f"{missing_name}: missing" in check.problems

    result = CliRunner().invoke(cli, ["backup", "--verify", str(small_backup)])
    assert result.exit_code == 1
    assert f"PROBLEM {missing_name}: missing" in result.stdout

    # A tar file cut short (a copy to USB interrupted) is reported, not a traceback.
    cut = tmp_path / "cut.tar"
    create_backup(source_settings(settings), FilesystemBlobStore(settings.media_path), tmp_path / "whole.tar")
    cut.write_bytes((tmp_path / "whole.tar").read_bytes()[:30_000])
    result = CliRunner().invoke(cli, ["backup", "--verify", str(cut)])
    assert result.exit_code == 1 and "PROBLEM" in result.stdout and "Traceback" not in result.output
    assert verify_backup(tmp_path / "whole.tar").ok

    # A damaged backup is not restored, and nothing is written.
    target = restore_target(tmp_path, "new-server", empty_database_url)
    with pytest.raises(BackupInvalid, match="does not match its manifest"):
        restore_backup(target, FilesystemBlobStore(target.media_path), small_backup)
    assert not any(p.is_file() for p in target.data_dir.rglob("*"))


def test_restore_refuses_a_target_that_is_not_empty(small_backup, settings, engine):
    before = rows(engine)
    media_before = sorted(p for p in settings.media_path.rglob("*") if p.is_file())
    with pytest.raises(BackupRefused) as refused:
        restore_backup(settings, FilesystemBlobStore(settings.media_path), small_backup)
    assert "restore goes into an empty data directory and database only" in refused.value.message
    names = " ".join(refused.value.details["not_empty"])
    assert ("database file" if settings.is_sqlite else "table(s)") in names
    assert "media directory" in names and "secret key file" in names
    assert rows(engine) == before
    assert sorted(p for p in settings.media_path.rglob("*") if p.is_file()) == media_before

    # The CLI says the same in one line, exit 1; a backup never overwrites either.
    env = {"ASMFIELD_DATA_DIR": str(settings.data_dir), "ASMFIELD_DATABASE_URL": settings.db_url}
    result = CliRunner().invoke(cli, ["restore", str(small_backup)], env=env)
    assert result.exit_code == 1 and result.stderr.startswith("Error: restore goes into an empty")
    result = CliRunner().invoke(cli, ["backup", str(small_backup)], env=env)
    assert result.exit_code == 1 and "already exists" in result.stderr


def test_a_backup_from_a_newer_asmfield_is_refused_before_anything_is_written(small_backup, tmp_path,
                                                                               empty_database_url):
    manifest_path = small_backup / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["alembic_revisions"].append("app_9999")
    manifest_path.write_text(json.dumps(manifest))
    target = restore_target(tmp_path, "old-server", empty_database_url)
    with pytest.raises(BackupInvalid, match="newer asmfield .* app_9999 unknown here"):
        restore_backup(target, FilesystemBlobStore(target.media_path), small_backup)
    assert not any(p.is_file() for p in target.data_dir.rglob("*"))


def test_an_older_backup_is_upgraded_to_this_schema_on_restore(settings, engine, tmp_path, empty_database_url):
    newest = current_revisions(engine)
    command.downgrade(alembic_config(engine), "app@-1")  # the server as an older asmfield left it
    older = current_revisions(engine)
    manifest = create_backup(source_settings(settings), FilesystemBlobStore(settings.media_path), tmp_path / "old")
    assert set(manifest["alembic_revisions"]) == older

    target = restore_target(tmp_path, "new-server", empty_database_url)
    restore_backup(target, FilesystemBlobStore(target.media_path), tmp_path / "old")
    restored = make_engine(target)
    try:
        assert older != newest
        assert current_revisions(restored) == newest
    finally:
        restored.dispose()
