"""The media zip (issue 15): the files (photos…) of an export's submissions, named so they match the
rows, and an index.

Each file is ``media/<instance uuid>/<field>_<file name>`` — the submission's instanceID without its
``uuid:`` prefix (the rows' ``_uuid``), the question's path below the form root with ``-`` for ``/``
(the CSV headers' names, e.g. ``site_photos-photo_site``) and the file name the device gave — plus
``media.csv`` (``_uuid``, ``field``, ``file``, ``path`` in the zip, ``size``, ``sha256``; UTF-8 with a
BOM like the CSV zip). Bytes are read from the blob store a megabyte at a time and written as they
come (JPEG and other already-compressed files stored, the rest deflated), so memory stays flat.

Who gets what: the same rows as the tabular exports (``reports.exports.rows.export_plan`` and its
scope: monitors their own visits, caseworkers their organisation's cases), and only the files of
columns the caller's export has. Case photos never leave through a coordinator's or an
administrator's export (a caseworker's own organisation's only): the plan drops them, and a case
form's media zip is refused outright to anyone but its caseworkers.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

from sqlmodel import Session

from app.blobs import CHUNK, BlobStore
from forms.models import CASE_FORM_KINDS
from reports.errors import ExportCaseData
from reports.exports import queries
from reports.exports.rows import ExportPlan
from sync.queries import attachments_by_submission

Progress = Callable[[int], None]
MEDIA_TYPE = "application/zip"
EXTENSION = "zip"
INDEX_HEADER = ("_uuid", "field", "file", "path", "size", "sha256")
#: Files that are already compressed: stored as they are.
_STORED_TYPES = ("image/jpeg", "image/png", "image/webp", "video/", "audio/", "application/zip")
#: Submissions read per query.
CHUNK_ROWS = 500


def _folder(instance_id: str) -> str:
    return instance_id.removeprefix("uuid:").replace("/", "_")


def _field_name(path: str | None) -> str:
    if not path:
        return "file"
    parts = path.strip("/").split("/")
    return "-".join(parts[1:] if len(parts) > 1 else parts)


def member_name(instance_id: str, field_path: str | None, file_name: str) -> str:
    """Where a file goes in the zip: ``media/<instance uuid>/<field>_<file name>``."""
    return f"media/{_folder(instance_id)}/{_field_name(field_path)}_{file_name}"


def check(plan: ExportPlan) -> None:
    """Refuse a case form's media zip to anyone but its organisation's caseworkers (``ExportCaseData``)."""
    if plan.kind in CASE_FORM_KINDS and plan.case_rows != "organisation":
        raise ExportCaseData("photos of case forms are exported only by the owning organisation's caseworkers",
                             details={"form": plan.xml_form_id})


def write_media_zip(session: Session, plan: ExportPlan, out: BinaryIO, progress: Progress | None = None, *,
                    blobs: BlobStore) -> None:
    """The media zip of ``plan``'s submissions into ``out`` (may be unseekable).

    :raises ExportCaseData: a case form's media for anyone but its organisation's caseworkers.
    """
    check(plan)
    exported = {c.path for table in plan.tables for c in table.columns if c.path is not None}
    with tempfile.TemporaryFile() as raw_index, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        index = io.TextIOWrapper(raw_index, encoding="utf-8-sig", newline="")
        rows = csv.writer(index, lineterminator="\r\n")
        rows.writerow(INDEX_HEADER)
        after, done = 0, 0
        while True:
            chunk = queries.chunk(session, plan, after=after, size=CHUNK_ROWS)
            if not chunk:
                break
            attachments = attachments_by_submission(session, [r.id for r in chunk])
            for row in chunk:
                for attachment in attachments.get(row.id, []):
                    if not attachment.received or not attachment.sha256 or attachment.field_path not in exported:
                        continue
                    name = member_name(row.instance_id, attachment.field_path, attachment.name)
                    _add(archive, blobs, name, attachment)
                    rows.writerow((row.instance_id, _field_name(attachment.field_path), attachment.name, name,
                                   attachment.size, attachment.sha256))
            after = chunk[-1].id
            done += len(chunk)
            if progress is not None:
                progress(done)
            session.expunge_all()
            if len(chunk) < CHUNK_ROWS:
                break
        index.flush()
        raw_index.seek(0)
        with archive.open("media.csv", "w", force_zip64=True) as entry:
            while block := raw_index.read(CHUNK):
                entry.write(block)
        index.detach()


def _add(archive: zipfile.ZipFile, blobs: BlobStore, name: str, attachment: Any) -> None:
    info = zipfile.ZipInfo(name, date_time=attachment.received_at.timetuple()[:6] if attachment.received_at
                           else (1980, 1, 1, 0, 0, 0))
    media_type = attachment.media_type or ""
    info.compress_type = zipfile.ZIP_STORED if media_type.startswith(_STORED_TYPES) else zipfile.ZIP_DEFLATED
    info.file_size = attachment.size or 0
    with blobs.open(attachment.sha256) as source, archive.open(info, "w", force_zip64=True) as entry:
        while block := source.read(CHUNK):
            entry.write(block)
