"""Backups that restore (issue 15): ``asmfield backup PATH``, ``backup --verify PATH``, ``restore PATH``.

A backup holds a consistent snapshot of the database, the media files its rows reference, the
secret key file when it lives in DATA_DIR, and ``manifest.json`` (format version, when, which
database, app version and Alembic revisions, and the sha256 and size of every other file)::

    manifest.json
    database.sqlite | database.pgdump
    secret_key                              (unless --exclude-secret, or the key is not a file in DATA_DIR)
    media/ab/cd/<sha256>                    the blob store's files, same layout
    media/derived/<variant>/ab/<sha256>.jpg thumbnails and web sizes of those blobs

PATH is a new directory (simplest, rsync-able) or a single ``.tar`` / ``.tar.gz`` / ``.tgz`` file
(friendlier to carry on a USB disk). Either is written under ``PATH.partial`` and renamed at the
end, so a half-written backup never carries the final name; a backup never overwrites anything.

Consistency while the server runs: the database snapshot is taken first (SQLite: the online backup
API in one step, under one read transaction; PostgreSQL: ``pg_dump`` over a snapshot exported
from a REPEATABLE READ transaction in which we also read the referenced hashes), then every blob
the snapshot references is copied. Blobs are immutable and written before the row that names them
commits, so every one of them is complete on disk; newer blobs are ignored. Which columns name
blobs is read from the snapshot itself (columns called ``sha256`` or ``*_sha256``), so this kernel
module knows no capability; a hash with no file in the store (the original of a stripped image, an
XForm's own hash) is counted in the manifest, not copied.

Restore goes only into an empty target (no database file or no tables, no media, no secret key
file): it refuses, naming what is not empty, and never deletes anything. Every file is checked
against the manifest before copying (a full verification pass) and again on disk after copying;
then the schema is migrated, so an older backup restored into newer code is upgraded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, make_url, text

from app import audit
from app.blobs import CHUNK, BlobStore, FilesystemBlobStore
from app.db import alembic_config, make_engine, migrate, session_scope
from app.errors import Conflict, Invalid
from app.settings import SECRET_FILE_NAME, Settings
from app.timeutil import utcnow

FORMAT = "asmfield-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
SECRET_FILE = "secret_key"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOB_NAME = re.compile(r"^media/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")
_DERIVED_NAME = re.compile(r"^media/derived/([A-Za-z0-9]+)/([0-9a-f]{2})/([0-9a-f]{64})\.jpg$")

#: Where progress lines go (the CLI prints them on stderr).
Progress = Callable[[str], None]


class BackupRefused(Conflict):
    """The target of a backup or a restore is not empty (a backup never overwrites, a restore never merges)."""

    code = "backup.target_not_empty"


class BackupInvalid(Invalid):
    """The backup is unreadable or does not match its manifest, or cannot go into this server."""

    code = "backup.invalid"


def _quiet(_message: str) -> None:
    return None


def is_archive(path: Path) -> bool:
    """True when PATH names a tar file (``.tar``, ``.tar.gz``, ``.tgz``) rather than a directory."""
    return Path(path).name.endswith(ARCHIVE_SUFFIXES)


def database_kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def sqlite_path(settings: Settings) -> Path:
    """The SQLite database file of these settings."""
    database = make_url(settings.db_url).database
    if not database or database == ":memory:":
        raise BackupInvalid("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def app_version() -> str:
    try:
        return metadata.version("asmfield")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- hashing and progress ----------------------------------------------------------------------


def _sha256_file(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return _sha256_stream(handle)


def _sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class _HashingReader:
    """Reads a file for tarfile while hashing what was read."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


class _Ticker:
    """A progress line at most every two seconds, and one at the end."""

    def __init__(self, progress: Progress, what: str, total: int) -> None:
        self.progress, self.what, self.total = progress, what, total
        self.done, self.bytes, self.last = 0, 0, time.monotonic()

    def step(self, size: int) -> None:
        self.done += 1
        self.bytes += size
        if time.monotonic() - self.last >= 2:
            self.last = time.monotonic()
            of = f"/{self.total}" if self.total else ""
            self.progress(f"{self.what}: {self.done}{of} files, {_mb(self.bytes)}")

    def end(self) -> None:
        self.progress(f"{self.what}: {self.done} files, {_mb(self.bytes)}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# -- writing a backup: a directory or a tar file ---------------------------------------------------


class _DirWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.root = final.with_name(final.name + ".partial")
        self.root.mkdir(parents=True)

    def add_file(self, name: str, source: Path) -> tuple[str, int]:
        target = self.root / name
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as src:  # opened first: a source that is gone leaves nothing behind
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        return digest.hexdigest(), size

    def add_bytes(self, name: str, data: bytes) -> tuple[str, int]:
        (self.root / name).write_bytes(data)
        return hashlib.sha256(data).hexdigest(), len(data)

    def finish(self) -> None:
        os.sync()  # every file on disk before the backup carries its final name
        os.rename(self.root, self.final)

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class _TarWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = final.with_name(final.name + ".partial")
        if self.partial.exists():
            raise FileExistsError(self.partial)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Level 1: photos do not compress anyway; the database shrinks almost as much as at level 6, 4x faster.
        options: dict[str, Any] = {} if final.name.endswith(".tar") else {"compresslevel": 1}
        self.tar = tarfile.open(self.partial, "w" if final.name.endswith(".tar") else "w:gz",  # noqa: SIM115
                                format=tarfile.PAX_FORMAT, **options)

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(time.time()), 0o600
        return info

    def add_file(self, name: str, source: Path) -> tuple[str, int]:
        with source.open("rb") as handle:
            reader = _HashingReader(handle)
            self.tar.addfile(self._info(name, os.fstat(handle.fileno()).st_size), reader)  # type: ignore[arg-type]
        return reader.digest.hexdigest(), reader.size

    def add_bytes(self, name: str, data: bytes) -> tuple[str, int]:
        reader = _HashingReader(_BytesReader(data))
        self.tar.addfile(self._info(name, len(data)), reader)  # type: ignore[arg-type]
        return reader.digest.hexdigest(), reader.size

    def finish(self) -> None:
        self.tar.close()
        with self.partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.rename(self.partial, self.final)

    def abort(self) -> None:
        self.tar.close()
        self.partial.unlink(missing_ok=True)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk


# -- the database snapshot -------------------------------------------------------------------------


def _blob_columns(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    """{table: [columns naming blobs]} from (table, column) pairs: columns ``sha256`` or ``*_sha256``."""
    found: dict[str, list[str]] = {}
    for table, column in rows:
        if column == "sha256" or column.endswith("_sha256"):
            found.setdefault(table, []).append(column)
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _hashes_query(columns: dict[str, list[str]]) -> str | None:
    parts = [f"SELECT {_quote(c)} FROM {_quote(t)} WHERE {_quote(c)} IS NOT NULL"
             for t, cs in sorted(columns.items()) for c in cs]
    return " UNION ".join(parts) if parts else None


def _valid_hashes(values: Iterator[str]) -> set[str]:
    return {v for v in values if isinstance(v, str) and len(v) == 64}


def _stored_hashes(store: FilesystemBlobStore) -> set[str]:
    """The sha256 of every blob file in the store (its ``ab/cd/<sha256>`` layout), listed once."""
    found: set[str] = set()
    for first in os.scandir(store.root):
        if len(first.name) != 2 or not first.is_dir():
            continue  # derived/, tmp/
        for second in os.scandir(first.path):
            if len(second.name) == 2 and second.is_dir():
                found.update(f.name for f in os.scandir(second.path) if _SHA256.fullmatch(f.name))
    return found


@dataclass
class _Snapshot:
    file_name: str
    path: Path
    hashes: set[str]
    revisions: list[str]


def _sqlite_snapshot(settings: Settings, work: Path, progress: Progress) -> _Snapshot:
    source = sqlite_path(settings)
    if not source.is_file():
        raise BackupInvalid(f"no SQLite database at {source}: nothing to back up (check ASMFIELD_DATA_DIR)")
    target = work / SQLITE_FILE
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # pages=-1 (the default): every page in one step, under one read transaction of the source,
        # so the copy is one consistent state; WAL writers go on meanwhile.
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        pairs = [(t, r[1]) for t in tables for r in dst.execute(f"PRAGMA table_info({_quote(t)})")]
        query = _hashes_query(_blob_columns(pairs))
        hashes = _valid_hashes(r[0] for r in dst.execute(query)) if query else set()
        revisions = sorted(r[0] for r in dst.execute("SELECT version_num FROM alembic_version")) \
            if "alembic_version" in tables else []
    finally:
        src.close()
        dst.close()
    progress(f"database: SQLite snapshot of {source}, {_mb(target.stat().st_size)}")
    return _Snapshot(SQLITE_FILE, target, hashes, revisions)


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """The URL for pg_dump/pg_restore (no driver suffix, no password) and the environment with PGPASSWORD."""
    url = make_url(settings.db_url).set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
        url = url.set(password=None)
    return url.render_as_string(hide_password=False), env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupInvalid(f"{name} not found: install the PostgreSQL client tools of the server's major version")
    return found


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupInvalid(f"{Path(command[0]).name} failed: {detail[-1] if detail else result.returncode}")


def _pg_snapshot(settings: Settings, engine: Engine, work: Path, progress: Progress) -> _Snapshot:
    target = work / PG_FILE
    url, env = _libpq(settings)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        # pg_dump reads the very snapshot this transaction reads the hashes in (kept open until it ends).
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        pairs = [tuple(r) for r in conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"))]
        query = _hashes_query(_blob_columns(pairs))
        hashes = _valid_hashes(r[0] for r in conn.execute(text(query))) if query else set()
        tables = {p[0] for p in pairs}
        revisions = sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))) \
            if "alembic_version" in tables else []
        _run([_pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={target}",
              f"--dbname={url}"], env)
    progress(f"database: pg_dump of {make_url(url).database}, {_mb(target.stat().st_size)}")
    return _Snapshot(PG_FILE, target, hashes, revisions)


# -- backup ------------------------------------------------------------------------------------------


def _filesystem_store(blobs: BlobStore) -> FilesystemBlobStore:
    if not isinstance(blobs, FilesystemBlobStore):
        raise BackupInvalid("backup and restore handle the filesystem media store only")
    return blobs


def create_backup(settings: Settings, blobs: BlobStore, target: Path, *, include_secret: bool = True,
                  operator: str | None = None, progress: Progress = _quiet) -> dict[str, Any]:
    """Write a backup of the database, its media and the secret key file to ``target``; return the manifest.

    :param target: a new directory, or a new ``.tar``/``.tar.gz``/``.tgz`` file; nothing existing is overwritten.
    :param include_secret: copy DATA_DIR/secret_key (whoever holds the backup then holds the key).
    :param operator: audit label of who ran it; the ``backup.create`` audit row goes into the live
        database after the snapshot (so it is not in the backup itself).
    """
    target = Path(target).expanduser().absolute()
    store = _filesystem_store(blobs)
    for path in (target, target.with_name(target.name + ".partial")):
        if path.exists() or path.is_symlink():
            raise BackupRefused(f"{path} already exists: a backup never overwrites; choose a new name")
    started = time.monotonic()
    engine = make_engine(settings)
    try:
        writer: _DirWriter | _TarWriter = _TarWriter(target) if is_archive(target) else _DirWriter(target)
        try:
            manifest = _write_backup(settings, engine, store, writer, include_secret, progress)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        manifest_summary = {"path": str(target), "files": len(manifest["files"]),
                            "bytes": sum(f["size"] for f in manifest["files"].values()),
                            "database": manifest["database"], "secret_included": manifest["secret_included"]}
        if operator is not None:
            with session_scope(engine) as session:
                audit.record(session, "backup.create", label=operator, **manifest_summary)
    finally:
        engine.dispose()
    progress(f"backup written to {target} in {time.monotonic() - started:.1f} s")
    return manifest


def _write_backup(settings: Settings, engine: Engine, store: FilesystemBlobStore, writer: _DirWriter | _TarWriter,
                  include_secret: bool, progress: Progress) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="asmfield-backup-", dir=store.tmp) as work:
        snap = (_sqlite_snapshot(settings, Path(work), progress) if settings.is_sqlite
                else _pg_snapshot(settings, engine, Path(work), progress))
        digest, size = writer.add_file(snap.file_name, snap.path)
        files[snap.file_name] = {"sha256": digest, "size": size}

    media = _copy_media(store, snap.hashes, writer, files, progress)

    secret_file = settings.data_dir / SECRET_FILE_NAME
    secret_included = include_secret and not settings.secret_key and secret_file.is_file()
    if secret_included:
        digest, size = writer.add_file(SECRET_FILE, secret_file)
        files[SECRET_FILE] = {"sha256": digest, "size": size}
    progress("secret key: " + ("included (whoever holds this backup holds the key)" if secret_included else
                               "NOT included: keep it separately, restored servers need it"))

    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": utcnow().isoformat(),
                "database": database_kind(settings), "app_version": app_version(),
                "alembic_revisions": snap.revisions, "secret_included": secret_included, "media": media,
                "files": files}
    writer.add_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _copy_media(store: FilesystemBlobStore, hashes: set[str], writer: _DirWriter | _TarWriter,
                files: dict[str, dict[str, Any]], progress: Progress) -> dict[str, Any]:
    derived_root = store.root / "derived"
    variants = sorted(d.name for d in derived_root.iterdir() if d.is_dir() and d.name.isascii() and d.name.isalnum()) \
        if derived_root.is_dir() else []
    # Listing the store once beats trying a path per hash: most hashes in a database name no file
    # (every submission's XML hash, the originals of stripped images).
    present = hashes & _stored_hashes(store)
    ticker = _Ticker(progress, "media", len(present))
    not_in_store, corrupt, derived = len(hashes) - len(present), [], 0
    for sha in sorted(present):
        name = f"media/{sha[:2]}/{sha[2:4]}/{sha}"
        try:
            # Read once to check (the copy then reads from the page cache): a damaged file in the
            # store must not go into a backup under a name its bytes do not have.
            digest, _ = _sha256_file(store.path(sha))
            if digest != sha:
                corrupt.append(sha)
                progress(f"media: {sha} in the store is damaged (its bytes hash to {digest}); left out")
                continue
            digest, size = writer.add_file(name, store.path(sha))
        except FileNotFoundError:  # deleted since the store was listed (its rows were deleted after the snapshot)
            not_in_store += 1
            continue
        files[name] = {"sha256": digest, "size": size}
        ticker.step(size)
        for variant in variants:
            vname = f"media/derived/{variant}/{sha[:2]}/{sha}.jpg"
            try:
                digest, size = writer.add_file(vname, store.derived_path(sha, variant))
            except FileNotFoundError:  # none made for this blob (not an image), or deleted with it
                continue
            files[vname] = {"sha256": digest, "size": size}
            derived += 1
    ticker.end()
    return {"blobs": ticker.done, "derived": derived, "referenced_not_in_store": not_in_store,
            "damaged_in_store": corrupt}


# -- reading a backup: verify ------------------------------------------------------------------------


def _members(path: Path) -> Iterator[tuple[str, BinaryIO]]:
    """(name, readable file) for every file of a backup, directory or tar, in storage order."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
            try:
                handle = file.open("rb")
            except OSError as exc:
                raise BackupInvalid(f"{file.relative_to(path).as_posix()}: cannot be read ({exc.strerror})") from exc
            with handle:
                yield file.relative_to(path).as_posix(), handle
        return
    if not path.is_file():
        raise BackupInvalid(f"no backup at {path}")
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name, handle  # type: ignore[misc]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupInvalid(f"{path} is not a readable tar file: {exc}") from exc


def _parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BackupInvalid(f"manifest.json is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupInvalid("manifest.json is not an asmfield backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupInvalid(f"backup format version {manifest.get('format_version')} is not supported "
                            f"(this asmfield reads version {FORMAT_VERSION})")
    if not isinstance(manifest.get("files"), dict):
        raise BackupInvalid("manifest.json lists no files")
    return manifest


@dataclass
class Verification:
    """What ``verify_backup`` found: the manifest (``None`` when unreadable) and every problem, one line each."""

    manifest: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.problems


def verify_backup(path: Path, *, progress: Progress = _quiet) -> Verification:
    """Check every file of a backup against its manifest (sha256 and size), without restoring anything.

    Problems: a file missing, changed (hash or size) or not in the manifest, an unreadable manifest.
    """
    path = Path(path).expanduser().absolute()
    seen: dict[str, tuple[str, int]] = {}
    manifest_bytes: bytes | None = None
    ticker = _Ticker(progress, "verify", 0)
    try:
        for name, handle in _members(path):
            if name == MANIFEST:
                manifest_bytes = handle.read()
                continue
            seen[name] = _sha256_stream(handle)
            ticker.step(seen[name][1])
    except BackupInvalid as exc:
        return Verification(None, [exc.message])
    except (tarfile.TarError, OSError, EOFError) as exc:  # a tar member cut short while being read
        return Verification(None, [f"{path} cannot be read to the end: {exc}"])
    ticker.end()
    if manifest_bytes is None:
        return Verification(None, ["manifest.json is missing"])
    try:
        manifest = _parse_manifest(manifest_bytes)
    except BackupInvalid as exc:
        return Verification(None, [exc.message])
    problems = []
    for name, meta in sorted(manifest["files"].items()):
        found = seen.get(name)
        if found is None:
            problems.append(f"{name}: missing")
        elif found != (meta.get("sha256"), meta.get("size")):
            problems.append(f"{name}: changed (manifest: sha256 {meta.get('sha256')}, {meta.get('size')} bytes; "
                            f"found: sha256 {found[0]}, {found[1]} bytes)")
    problems += [f"{name}: not in the manifest" for name in sorted(set(seen) - set(manifest["files"]))]
    problems += [f"{name}: the manifest's sha256 is not the one in its name" for name, meta in sorted(manifest["files"].items())
                 if (m := _BLOB_NAME.match(name)) and meta.get("sha256") != m.group(3)]
    problems += [f"{name}: not a file a backup holds" for name in sorted(manifest["files"])
                 if name not in (SQLITE_FILE, PG_FILE, SECRET_FILE)
                 and not _BLOB_NAME.match(name) and not _DERIVED_NAME.match(name)]
    if manifest.get("database") not in ("sqlite", "postgresql") or \
            {SQLITE_FILE: "sqlite", PG_FILE: "postgresql"}.get(_database_file(manifest) or "") != manifest["database"]:
        problems.append("manifest names no database file of its database kind")
    return Verification(manifest, problems, files=len(seen), bytes=sum(s for _, s in seen.values()))


def _database_file(manifest: dict[str, Any]) -> str | None:
    return next((n for n in (SQLITE_FILE, PG_FILE) if n in manifest["files"]), None)


# -- restore ---------------------------------------------------------------------------------------------


def _not_empty(settings: Settings, engine: Engine | None) -> list[str]:
    """What already holds data where a restore would write (empty list: go ahead)."""
    found = []
    if settings.is_sqlite:
        db = sqlite_path(settings)
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists() and path.stat().st_size > 0:
                found.append(f"database file {path} exists")
    elif engine is not None:
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"))]
        if tables:
            shown = ", ".join(tables[:3]) + (" …" if len(tables) > 3 else "")
            found.append(f"database {make_url(settings.db_url).database} has {len(tables)} table(s) ({shown})")
    media = settings.media_path
    if media.is_dir():
        first = next((p for p in media.rglob("*") if not p.is_dir()), None)
        if first is not None:
            found.append(f"media directory {media} holds files (e.g. {first.relative_to(media)})")
    secret = settings.data_dir / SECRET_FILE_NAME
    if secret.exists():
        found.append(f"secret key file {secret} exists")
    return found


def restore_backup(settings: Settings, blobs: BlobStore, source: Path, *, operator: str | None = None,
                   progress: Progress = _quiet) -> dict[str, Any]:
    """Restore a backup into the empty data directory and database of ``settings``, then migrate.

    Refuses (``BackupRefused``, nothing written) when the database, the media directory or the
    secret key file already hold something, and (``BackupInvalid``) when any file does not match the
    manifest or the backup is of the other database kind. Returns the backup's manifest.
    """
    source = Path(source).expanduser().absolute()
    store = _filesystem_store(blobs)
    engine = None if settings.is_sqlite else make_engine(settings)
    try:
        busy = _not_empty(settings, engine)
        if busy:
            raise BackupRefused("restore goes into an empty data directory and database only; not empty: "
                                + "; ".join(busy), details={"not_empty": busy})
        progress(f"verify: checking {source} against its manifest")
        check = verify_backup(source, progress=progress)
        if not check.ok:
            raise BackupInvalid(f"the backup does not match its manifest ({len(check.problems)} problem(s)): "
                                + "; ".join(check.problems[:5]), details={"problems": check.problems})
        manifest = check.manifest
        assert manifest is not None  # noqa: S101 -- check.ok says so
        if manifest["database"] != database_kind(settings):
            raise BackupInvalid(f"this is a {manifest['database']} backup; the settings name a "
                                f"{database_kind(settings)} database (ASMFIELD_DATABASE_URL)")
        unknown = _unknown_revisions(manifest.get("alembic_revisions") or [])
        if unknown:
            raise BackupInvalid(f"this backup comes from a newer asmfield ({manifest.get('app_version')}; schema "
                                f"revisions {', '.join(unknown)} unknown here): install that version or newer first")
        _copy_back(settings, store, source, manifest, progress)
    finally:
        if engine is not None:
            engine.dispose()

    engine = make_engine(settings)
    try:
        progress("database: migrating to this version's schema")
        migrate(engine)
        if operator is not None:
            with session_scope(engine) as session:
                audit.record(session, "backup.restore", label=operator, path=str(source),
                             backup_created_at=manifest["created_at"], files=len(manifest["files"]),
                             database=manifest["database"])
    finally:
        engine.dispose()
    return manifest


def _unknown_revisions(revisions: list[str]) -> list[str]:
    """The schema revisions this code does not know (a backup made by a newer asmfield)."""
    script = ScriptDirectory.from_config(alembic_config(None))
    unknown = []
    for revision in revisions:
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    return unknown


def _expect(manifest: dict[str, Any], name: str, digest: str, size: int, where: str) -> None:
    meta = manifest["files"][name]
    if (digest, size) != (meta["sha256"], meta["size"]):
        raise BackupInvalid(f"{name}: {where} the bytes differ from the manifest (sha256 {digest}, {size} bytes); "
                            "the restore stopped part-way: empty the data directory and database, then try again")


@contextmanager
def _stopped_part_way() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise BackupInvalid(f"restore stopped part-way ({exc}); empty the data directory and database, "
                            "then try again") from exc


def _copy_back(settings: Settings, store: FilesystemBlobStore, source: Path, manifest: dict[str, Any],
               progress: Progress) -> None:
    files = manifest["files"]
    ticker = _Ticker(progress, "restore", len(files))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _stopped_part_way(), tempfile.TemporaryDirectory(prefix="asmfield-restore-", dir=store.tmp) as work:
        for name, handle in _members(source):
            if name not in files:
                continue  # verification found none; the manifest alone decides what is restored
            if name in (SQLITE_FILE, PG_FILE, SECRET_FILE):
                landing = Path(work) / name
                with landing.open("wb") as out:
                    shutil.copyfileobj(handle, out, CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                _expect(manifest, name, *_sha256_file(landing), "after copying,")
                _place(settings, name, landing, progress)
            elif match := _BLOB_NAME.match(name):
                sha = match.group(3)
                _land(handle, store.path(sha), store.tmp)
                _expect(manifest, name, *_sha256_file(store.path(sha)), "after copying,")
            elif match := _DERIVED_NAME.match(name):
                variant, sha = match.group(1), match.group(3)
                store.put_derived(sha, variant, handle.read())
                _expect(manifest, name, *_sha256_file(store.derived_path(sha, variant)), "after copying,")
            else:
                raise BackupInvalid(f"{name}: not a file a backup holds; nothing of it was restored")
            ticker.step(files[name]["size"])
        # One sync for everything instead of two fsyncs per file (put_stream's, for a live server):
        # nothing uses these files before the restore has finished.
        os.sync()
    ticker.end()


def _land(handle: BinaryIO, target: Path, tmp: Path) -> None:
    """Copy to a temporary file in the store, then rename: complete under its name or absent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(handle, out, CHUNK)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _place(settings: Settings, name: str, landing: Path, progress: Progress) -> None:
    if name == SQLITE_FILE:
        target = sqlite_path(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(landing, target)
        progress(f"database: SQLite file restored to {target}")
    elif name == PG_FILE:
        url, env = _libpq(settings)
        _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              f"--dbname={url}", str(landing)], env)
        progress(f"database: pg_restore into {make_url(url).database} done")
    else:
        target = settings.data_dir / SECRET_FILE_NAME
        shutil.move(landing, target)
        target.chmod(0o600)
        progress(f"secret key: restored to {target}")
