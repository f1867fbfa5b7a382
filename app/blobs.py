"""Content-addressed file store (sha256), shared by form media and submission attachments.

Files are written to a temporary file in the store, fsynced, then renamed into place, so a
file under its hash name is always complete. Callers commit the database row only after
``put_*`` returned, which makes the row's file durable before the row is.

Everybody codes against ``BlobStore``; only the composition root (``app.main.create_app``, the
CLI entry point ``app.cli``) builds a ``FilesystemBlobStore`` and hands it out
(``app.state.blobs`` / ``BlobsDep``, ``cliutil.current_blobs``, a ``blobs`` argument). A store
keeping files elsewhere (S3) implements the same protocol.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction
from starlette.responses import FileResponse, Response

from app.errors import PayloadTooLarge

CHUNK = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    md5: str
    size: int
    path: Path


class BlobStore(Protocol):
    """Where file bytes live, by sha256, plus derived variants (``thumb``/``web`` JPEGs) of a blob.

    ``tmp`` is a local scratch directory for spooling uploads before they are put.
    """

    tmp: Path

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob: ...
    def put_bytes(self, data: bytes) -> StoredBlob: ...
    def put_file(self, path: Path, *, max_bytes: int | None = None) -> StoredBlob: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def exists(self, sha256: str) -> bool: ...
    def size(self, sha256: str, *, variant: str | None = None) -> int: ...
    def local_path(self, sha256: str, *, variant: str | None = None) -> Path: ...
    def delete(self, sha256: str) -> None: ...
    def put_derived(self, sha256: str, variant: str, data: bytes) -> None: ...
    def open_derived(self, sha256: str, variant: str) -> BinaryIO: ...
    def derived_exists(self, sha256: str, variant: str) -> bool: ...
    def delete_derived(self, sha256: str) -> int: ...
    def response(self, sha256: str, *, variant: str | None = None, media_type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> Response: ...


def check_digest(sha256: str) -> str:
    """``sha256`` when it is a lowercase sha256 hex digest (a file name we may build), else ValueError."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a sha256 hex digest")
    return sha256


def _check_variant(variant: str) -> str:
    if not variant or not variant.isascii() or not variant.isalnum():
        raise ValueError("a derived variant is a short alphanumeric name")
    return variant


class FilesystemBlobStore:
    """Blobs under ``root/ab/cd/<sha256>``; derived files (thumbnails) under ``root/derived/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    # Local layout (tests and this class only; callers use ``local_path``).
    def path(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def derived_path(self, sha256: str, variant: str) -> Path:
        check_digest(sha256)
        return self.root / "derived" / _check_variant(variant) / sha256[:2] / f"{sha256}.jpg"

    def local_path(self, sha256: str, *, variant: str | None = None) -> Path:
        """A local file with the bytes (here: the stored file itself; do not write to it)."""
        return self.path(sha256) if variant is None else self.derived_path(sha256, variant)

    def exists(self, sha256: str) -> bool:
        try:
            return self.path(sha256).exists()
        except ValueError:
            return False

    def size(self, sha256: str, *, variant: str | None = None) -> int:
        return self.local_path(sha256, variant=variant).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def delete(self, sha256: str) -> None:
        """Remove a blob's file (and its derived files); absent is fine."""
        self.path(sha256).unlink(missing_ok=True)
        self.delete_derived(sha256)

    def put_bytes(self, data: bytes) -> StoredBlob:
        return self.put_stream([data])

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Hash while writing; refuse (and remove) anything larger than ``max_bytes``."""
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324 (md5 is what OpenRosa manifests use)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"file is larger than the limit of {max_bytes} bytes",
                                              code="media.too_large")
                    sha.update(chunk)
                    md5.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = sha.hexdigest()
            final = self.path(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, final)
                _fsync_dir(final.parent)
            return StoredBlob(sha256=digest, md5=md5.hexdigest(), size=size, path=final)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_file(self, path: Path, *, max_bytes: int | None = None) -> StoredBlob:
        with Path(path).open("rb") as handle:
            return self.put_stream(iter(lambda: handle.read(CHUNK), b""), max_bytes=max_bytes)

    # -- derived variants (thumbnails, web sizes) ---------------------------------------------

    def put_derived(self, sha256: str, variant: str, data: bytes) -> None:
        """Write a derived file once (complete under its name or absent: temp file + rename)."""
        target = self.derived_path(sha256, variant)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def open_derived(self, sha256: str, variant: str) -> BinaryIO:
        return self.derived_path(sha256, variant).open("rb")

    def derived_exists(self, sha256: str, variant: str) -> bool:
        try:
            return self.derived_path(sha256, variant).exists()
        except ValueError:
            return False

    def delete_derived(self, sha256: str) -> int:
        """Remove every derived variant of a blob; how many files there were."""
        check_digest(sha256)
        removed = 0
        base = self.root / "derived"
        if not base.is_dir():
            return 0
        for variant_dir in base.iterdir():
            for path in (variant_dir / sha256[:2]).glob(f"{sha256}.*"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def response(self, sha256: str, *, variant: str | None = None, media_type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> Response:
        """Serve the blob (or a variant) as a streamed file response."""
        return FileResponse(self.local_path(sha256, variant=variant), media_type=media_type,
                            headers=dict(headers or {}))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



# -- deleting files once the transaction that dropped their rows committed ------------------------

#: ``still_used(connection, sha256)``: asked after the commit, on a fresh connection; True keeps the file.
StillUsed = Callable[[Connection, str], bool]
_PENDING = "app.blobs.delete_after_commit"


@dataclass
class _Pending:
    store: BlobStore
    sha256: str
    still_used: StillUsed | None
    transaction: SessionTransaction | None  # the innermost transaction when scheduled


def delete_after_commit(session: Session, store: BlobStore, sha256s: Iterable[str], *,
                        still_used: StillUsed | None = None) -> None:
    """Delete these blobs (and their derived files) once ``session``'s transaction has committed.

    Before the commit the rows may still come back (a failed purge, a rolled-back request), and
    rows pointing at missing files are worse than a file kept a little longer. A savepoint rolled
    back forgets what was scheduled inside it; a savepoint released keeps it for the outer commit.
    ``still_used`` is asked after the commit (another transaction may have stored the same bytes).
    Errors after the commit are logged, never raised: the data is committed already.
    """
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        sa_event.listen(session, "after_commit", _run_pending)
        sa_event.listen(session, "after_soft_rollback", _forget_rolled_back)
    if not session.in_transaction():
        session.begin()  # what it would autobegin anyway: the deletions belong to this transaction
    current = session.get_nested_transaction() or session.get_transaction()
    pending.extend(_Pending(store, check_digest(sha), still_used, current) for sha in sha256s)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [p for p in pending if not _within(p.transaction, previous_transaction)]


def _run_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:  # a savepoint released: the outer transaction goes on
        return
    pending: list[_Pending] = session.info.get(_PENDING) or []
    if not pending:
        return
    todo, pending[:] = list(pending), []
    try:
        checks = [item for item in todo if item.still_used is not None]
        with session.get_bind().connect() if checks else nullcontext() as conn:
            for item in todo:
                if item.still_used is not None and item.still_used(conn, item.sha256):
                    continue
                item.store.delete(item.sha256)
    except Exception:  # the transaction is committed: a leftover file must not turn it into an error
        log.exception("could not remove the files of deleted blobs: %s", ", ".join(sorted(p.sha256 for p in todo)))

