"""Blob uploads of the JSON sync: ``HEAD``/``PUT /api/v1/blobs/{sha256}`` and who holds which bytes.

Attachments are announced by sha256 in a batch (``sync.batch``). Only the bytes prove possession
(issue 9, finding 5): ``BlobHolder`` records who sent which bytes (an OpenRosa part or a PUT of
theirs); announcing a hash, however often, grants nothing. A PUT verifies the hash and fills the
caller's own attachments waiting for it (``SubmissionAttachment.expected_sha256``). Case-form
images are stored re-encoded under another hash; the announced (original) hash stays in
``expected_sha256``, so resends stay idempotent. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app import audit
from app.blobs import BlobStore
from app.identity import Actor, Role
from app.settings import Settings
from app.timeutil import utcnow
from forms.models import FormVersion
from sync import media, queries
from sync.errors import BlobBadHash, BlobHashMismatch, BlobNotExpected, BlobTooLarge
from sync.models import Blob, Submission, SubmissionAttachment

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def check_sha256(value: str) -> str:
    """A lower-case hex sha256, else 422 naming the value."""
    if not SHA256_RE.match(value or ""):
        raise BlobBadHash(f"{value[:80]!r} is not a sha256 (64 lower-case hex digits)")
    return value


def hashes_held(session: Session, actor: Actor, hashes: set[str]) -> set[str]:
    """The hashes whose bytes the caller has sent before (``BlobHolder``); admins included:
    knowing or announcing a hash proves nothing."""
    return queries.hashes_held(session, actor.user.id, hashes)


def holds(session: Session, actor: Actor, sha256: str) -> bool:
    return bool(hashes_held(session, actor, {sha256}))


@dataclass
class Spooled:
    """A request body written to a temp file, with its hash."""

    path: Path
    sha256: str
    size: int


async def spool(chunks: AsyncIterator[bytes], *, directory: Path, max_bytes: int) -> Spooled:
    """Write a body to a temp file in ``directory`` while hashing it (in the thread pool, off the
    event loop); 413 past ``max_bytes``."""
    sha, size = hashlib.sha256(), 0
    fd, name = await run_in_threadpool(tempfile.mkstemp, dir=directory, prefix="put-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(f"the file is larger than the limit of {max_bytes} bytes",
                                       details={"limit": max_bytes})
                await run_in_threadpool(_hash_and_write, sha, out, chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Spooled(path=Path(name), sha256=sha.hexdigest(), size=size)


def _hash_and_write(sha: Any, out: BinaryIO, chunk: bytes) -> None:
    sha.update(chunk)
    out.write(chunk)


def authorise_blob(session: Session, *, actor: Actor, sha256: str) -> None:
    """Only a caller with a submission expecting ``sha256`` (or an admin) may PUT it (a refusal
    says nothing about whether the file exists)."""
    check_sha256(sha256)
    if actor.role == Role.admin:
        return
    mine = session.exec(queries.waiting_for(sha256).where(Submission.submitted_by_user_id == actor.user.id).limit(1)).first()
    if mine is None:
        raise BlobNotExpected("none of your submissions expects a file with this sha256; announce it in a batch first")


def blob_present(session: Session, *, actor: Actor, sha256: str) -> bool:
    """True when the caller need not upload ``sha256``: they sent these very bytes before and none
    of their attachments still waits for them (a case-form photo is stored stripped, under another
    hash). A file that is absent and one that is someone else's answer the same: False."""
    check_sha256(sha256)
    if not holds(session, actor, sha256):
        return False
    waiting = session.exec(queries.waiting_for(sha256).where(Submission.submitted_by_user_id == actor.user.id,
                                                        SubmissionAttachment.received.is_(False)).limit(1)).first()
    return waiting is None


@dataclass
class BlobReceipt:
    sha256: str
    created: bool
    #: instance ids whose attachments this upload filled.
    attached: list[str] = field(default_factory=list)


def receive_blob(session: Session, *, blobs: BlobStore, settings: Settings, actor: Actor, sha256: str,
                 upload: Spooled, media_type: str | None = None) -> BlobReceipt:
    """Verify an uploaded file against its hash and fill the caller's attachments waiting for it
    (never another user's: they must send the bytes themselves). The caller then holds the file.

    Images are checked (and stripped for case and sensitive forms) by ``sync.media`` exactly as
    OpenRosa parts are. Idempotent: a second upload of the same file fills nothing and is not an error.

    :raises Invalid: the body's sha256 differs from ``sha256`` (nothing is stored).
    """
    authorise_blob(session, actor=actor, sha256=sha256)
    if upload.sha256 != sha256:
        raise BlobHashMismatch(f"the body's sha256 is {upload.sha256}, not {sha256}; nothing was stored",
                               details={"expected": sha256, "received": upload.sha256})
    existed = blobs.exists(sha256)
    rows = [(att, sub) for att, sub in session.exec(
        queries.waiting_for(sha256).where(Submission.submitted_by_user_id == actor.user.id)).all() if not att.received]
    attached: list[str] = []
    with tempfile.TemporaryDirectory(dir=blobs.tmp, prefix="blob-") as workdir:
        #: One check and store per way of handling the file (stripped or not, image question or not).
        stored: dict[tuple[bool, bool, bool], Blob] = {}
        forms = queries.forms_by_id(session, {sub.form_id for _, sub in rows})
        images: dict[int, frozenset[str]] = {}
        for att, sub in rows:
            strip = media.strips_metadata(forms[sub.form_id])
            if sub.form_version_id not in images:
                version = session.get(FormVersion, sub.form_version_id)
                images[sub.form_version_id] = media.image_fields(version.fields if version else [])
            expects_image = att.field_path in images[sub.form_version_id]
            declared = att.media_type or media_type
            key = (strip, strip and expects_image, media.looks_like_image(att.name, declared))
            blob = stored.get(key)
            if blob is None:
                prepared = media.prepare(media.IncomingFile(name=att.name, path=upload.path, size=upload.size,
                                                            media_type=declared),
                                         settings=settings, strip_metadata=strip, expects_image=expects_image,
                                         workdir=Path(workdir))
                blob = stored[key] = media.store(session, blobs, prepared, settings=settings, holder=actor.user.id)
            att.sha256, att.size, att.media_type = blob.sha256, blob.size, blob.media_type
            att.received, att.received_at = True, utcnow()
            session.add(att)
            _recount(session, sub)
            attached.append(sub.instance_id)
            audit.record(session, "submission.attachment_add", actor=actor, object_type="submission",
                         object_id=sub.instance_id, name=att.name, sha256=blob.sha256, size=blob.size, via="blob")
        if not rows and not existed and actor.role == Role.admin and not _announced_anywhere(session, sha256):
            stored_blob = blobs.put_file(upload.path, max_bytes=settings.max_attachment_bytes)
            media.upsert_blob(session, sha256=stored_blob.sha256, size=stored_blob.size,
                              media_type=media_type or "application/octet-stream")
        media.record_holder(session, user_id=actor.user.id, sha256=sha256)
    session.flush()
    return BlobReceipt(sha256=sha256, created=not existed and blobs.exists(sha256), attached=attached)


def _announced_anywhere(session: Session, sha256: str) -> bool:
    return session.exec(queries.waiting_for(sha256).limit(1)).first() is not None


def _recount(session: Session, submission: Submission) -> None:
    session.flush()
    received = queries.received_flags(session, submission.id)
    submission.attachments_expected = len(received)
    submission.attachments_present = sum(1 for r in received if r)
    submission.complete = submission.attachments_present >= submission.attachments_expected
    submission.updated_at = utcnow()
    session.add(submission)
