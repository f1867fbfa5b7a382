"""Content-addressed file store (sha256), shared by form media and submission attachments.

Files are written to a temporary file in the store, fsynced, then renamed into place, so a
file under its hash name is always complete. Callers commit the database row only after
``put_*`` returned, which makes the row's file durable before the row is.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from app.errors import PayloadTooLarge

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    md5: str
    size: int
    path: Path


class BlobStore(Protocol):
    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob: ...
    def put_bytes(self, data: bytes) -> StoredBlob: ...
    def path(self, sha256: str) -> Path: ...
    def exists(self, sha256: str) -> bool: ...
    def open(self, sha256: str) -> BinaryIO: ...


class FilesystemBlobStore:
    """Blobs under ``root/ab/cd/<sha256>``; derived files (thumbnails) under ``root/derived/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def derived_path(self, sha256: str, variant: str) -> Path:
        return self.root / "derived" / variant / sha256[:2] / f"{sha256}.jpg"

    def exists(self, sha256: str) -> bool:
        try:
            return self.path(sha256).exists()
        except ValueError:
            return False

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_hashes(data: bytes) -> tuple[str, str]:
    """(sha256, md5) of some bytes."""
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()  # noqa: S324
