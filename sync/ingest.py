"""Submission ingest (receive, resend, insert, fill): every tablet sync lands exactly once, whatever
the client retries.

``receive_submission`` implements the OpenRosa decision table (docs: openrosa.md §2.5/§2.7,
following ODK Central):

=====================================================  ==========================================
incoming XML                                           result
=====================================================  ==========================================
new instanceID, no deprecatedID                        ``created``
known instanceID, byte-identical XML                   ``duplicate`` or ``attachments_added``
                                                       (received parts fill the expected ones)
known instanceID, different XML                        409 ``submission.xml_conflict``
new instanceID, deprecatedID = a current submission    ``edit``: new row, same root_instance_id,
                                                       old row current=False/superseded_by,
                                                       attachments carried over by name
deprecatedID unknown                                   404 ``submission.deprecated_not_found``
deprecatedID already superseded                        409 ``submission.already_superseded``
unknown form / version                                 404 ``form.not_found`` / ``form.version_not_found``
closed form (new submissions and edits only)           403 ``form.closed``
actor may not submit this form kind                    403 ``submission.forbidden``
edit of a record the actor may not change              403 ``submission.edit_forbidden``
=====================================================  ==========================================

Forms and versions are found by ``sync.form_lookup``; who may submit and edit is ``sync.rights``.

Who may edit a record (issue 9, finding 1): the record's original submitter, admins and
coordinators; for case forms the record policy that cases registers (``Hooks.may_edit_record``: the
owning NGO's caseworkers). A device acts as its user. The check runs before anything is written, so a
refused edit leaves no row, no file and no audit entry of a stored edit; a resend of an edit
that was accepted is still a plain resend.

Choices made where Central leaves room: a resend of a submission that has been edited since is
still acknowledged (it only fills missing attachments); an attachment already received is kept
(the first complete copy wins, later different bytes under the same name are ignored); resends
to a closed form are acknowledged so tablets can finish uploads. XML without
``meta/instanceID`` gets a stable id derived from its bytes (see ``submission_xml``).

Races: two identical POSTs end as one row. The insert is ``INSERT .. ON CONFLICT (instance_id)
DO NOTHING`` (SQLite and PostgreSQL); the loser re-reads the winner's row and answers as a
resend. The edit's "supersede the old row" is a conditional UPDATE (``WHERE current``), so two
different edits of one record cannot both win. Nothing here commits; the caller's transaction
does, after every file is durable in the blob store.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app import audit
from app.blobs import BlobStore, StoredBlob
from app.events import Hooks, SubmissionInserting, SubmissionStored
from app.identity import Actor
from app.rawsql import loaded
from app.settings import Settings
from app.timeutil import utcnow
from forms.errors import FormClosed
from forms.models import CASE_FORM_KINDS, Form, FormState, FormVersion
from sync import media, queries, submission_xml
from sync.errors import (
    SubmissionAlreadySuperseded,
    SubmissionDeprecatedNotFound,
    SubmissionEditForbidden,
    SubmissionForbidden,
    SubmissionFormKindChanged,
    SubmissionRetry,
    SubmissionXmlConflict,
    SubmissionXmlEncoding,
)
from sync.form_lookup import get_form, get_version, remembered_form_and_version
from sync.media import IncomingFile, PreparedFile
from sync.models import Blob, Submission, SubmissionAttachment
from sync.queries import NO_XFORM
from sync.rights import may_edit, may_submit

__all__ = ["IncomingFile", "ReceiveResult", "attachments_of", "receive_submission"]


@dataclass
class ReceiveResult:
    """What happened to one submission: created | duplicate | edit | attachments_added."""

    status: str
    submission: Submission
    #: Attachment names the XML references that are still missing.
    missing: list[str] = field(default_factory=list)


def attachments_of(session: Session, submission: Submission) -> list[SubmissionAttachment]:
    """The submission's attachment rows in the order they were recorded."""
    return queries.attachments_in_order(session, submission.id)


# -- ingest --------------------------------------------------------------------------------


def receive_submission(
    session: Session,
    *,
    blobs: BlobStore,
    settings: Settings,
    hooks: Hooks,
    actor: Actor | None,
    xml: bytes,
    files: list[IncomingFile],
    client_device_id: str | None = None,
    user_agent: str | None = None,
) -> ReceiveResult:
    """Store one OpenRosa submission (instance XML + attachment parts) per the decision table.

    :param xml: the ``xml_submission_file`` bytes.
    :param files: the other parts, already on disk; only names the XML references are kept.
    :param hooks: the composition's record policies and reactions (``app.events``); a stored
        submission is announced as ``SubmissionStored`` in this transaction.
    :param actor: who submits (a device acts as its user); None only for trusted internal callers.
    :raises DomainError: 4xx with a stable code naming what is wrong; nothing is stored then.
    """
    instance = submission_xml.parse_instance(xml)
    try:
        xml_text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionXmlEncoding("the submission XML must be UTF-8 encoded") from exc
    xml_sha = hashlib.sha256(xml).hexdigest()
    with _workdir(blobs) as workdir:
        # Everything up to the first write runs without autoflush: pending changes (a device's
        # last_seen_at) would otherwise take SQLite's write lock during image work and fsyncs.
        with session.no_autoflush:
            pair = remembered_form_and_version(session, instance.form_id, instance.version)
            form = pair[0] if pair is not None else get_form(session, instance.form_id)
            if actor is not None and not may_submit(actor, form):
                raise SubmissionForbidden(f"{actor.user.username} ({actor.role}) may not submit to form {form.xml_form_id!r} "
                                          f"({form.kind})")
            version = pair[1] if pair is not None else get_version(session, form, instance.version)
            parsed = submission_xml.read_data(instance, version.fields or [])
            existing, old = _known(session, instance, form, actor, has_files=bool(files), hooks=hooks)
            if existing is None:
                prepared = _prepare(files, parsed.attachments, form=form, fields=version.fields or [], settings=settings,
                                    workdir=workdir)
                written = {name: media.write(blobs, p, settings=settings) for name, p in prepared.items()}
        if existing is not None:
            return _resend(session, existing, form=form, xml_sha=xml_sha, files=files, blobs=blobs,
                           settings=settings, actor=actor, workdir=workdir)
        # A new record's files are recorded first, so its row is inserted already counting them.
        received = _record_files(session, prepared, written, actor=actor) if old is None else None
        submission = _insert(session, instance=instance, parsed=parsed, form=form, version=version, actor=actor,
                             xml_text=xml_text, xml_sha=xml_sha, root=old.root_instance_id if old else None,
                             client_device_id=client_device_id, user_agent=user_agent, hooks=hooks, settings=settings,
                             received=received)
        if submission is None:  # the instanceID is known (a resend, or a concurrent twin won the race)
            existing = queries.fresh_submission_by_instance_id(session, instance.instance_id)
            if existing is None:  # pragma: no cover -- the winner rolled back after we looked
                raise SubmissionRetry("a concurrent upload of this submission failed; retry")
            return _resend(session, existing, form=form, xml_sha=xml_sha, files=files, blobs=blobs,
                           settings=settings, actor=actor, workdir=workdir, prepared=prepared, written=written)
        if form.kind in CASE_FORM_KINDS:
            _kind_unchanged(session, form)
        if old is not None:
            _supersede(session, old, submission)
            rows = _expected_rows(session, submission, parsed.attachments, carried=old)
            _fill(session, submission, rows, prepared, written, blobs=blobs, settings=settings, actor=actor, flush=False)
            missing = [r.name for r in rows if not r.received]
        else:
            missing = _new_attachments(session, submission, parsed.attachments, received, prepared, actor=actor)
        _geopoints(session, submission, parsed.geopoints)

    hooks.emit(SubmissionStored(session=session, submission=submission, form=form, version=version, actor=actor,
                                settings=settings, blobs=blobs))
    session.add(submission)
    audit.append(session, "submission.edit" if old is not None else "submission.create", actor=actor,
                 object_type="submission", object_id=submission.instance_id, form=form.xml_form_id,
                 version=version.version, **({"deprecated_id": old.instance_id} if old is not None else {}))
    return ReceiveResult(status="edit" if old is not None else "created", submission=submission, missing=missing)


def _known(session: Session, instance: submission_xml.Instance, form: Form, actor: Actor | None,
           *, has_files: bool, hooks: Hooks) -> tuple[Submission | None, Submission | None]:
    """(the existing submission with this instanceID when it is a resend, the version an edit replaces).

    The instanceID is looked up first only when that saves work (attachments to check) or decides
    the answer (closed form); otherwise the insert finds a known instanceID by its conflict.
    """
    looked_up = has_files or form.state == FormState.closed
    existing = queries.fresh_submission_by_instance_id(session, instance.instance_id) if looked_up else None
    if existing is not None:
        return existing, None
    if form.state == FormState.closed:
        raise FormClosed(f"form {form.xml_form_id!r} is closed and does not accept new submissions")
    if not instance.deprecated_id:
        return None, None
    old = queries.fresh_submission_by_instance_id(session, instance.deprecated_id)
    if old is None or old.form_id != form.id:
        raise SubmissionDeprecatedNotFound(f"the submission {instance.deprecated_id!r} this edit replaces (meta/deprecatedID) "
                                           f"is not on this server")
    if not old.current:
        existing = (queries.fresh_submission_by_instance_id(session, instance.instance_id)
                    if old.superseded_by == instance.instance_id else None)
        if existing is not None:  # this very edit, sent again
            return existing, None
        raise SubmissionAlreadySuperseded(f"the submission {instance.deprecated_id!r} was already replaced by "
                                          f"{old.superseded_by!r}; edit the newest version")
    if not may_edit(session, actor, form, old, hooks=hooks):
        raise SubmissionEditForbidden(f"{actor.user.username} ({actor.role}) may not edit submission {old.instance_id!r}: only its "
                                      "original submitter or someone allowed to change that record may")
    return None, old


class _workdir:
    """A scratch directory in the blob store's temp area (same filesystem), made only when a
    file needs one (most submissions have none) and removed after."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._path: Path | None = None

    def __enter__(self) -> _workdir:
        return self

    def __call__(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(dir=self.blobs.tmp, prefix="ingest-"))
        return self._path

    def __exit__(self, *exc: object) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def _prepare(files: list[IncomingFile], expected: dict[str, str], *, form: Form, fields: list[dict[str, Any]],
             settings: Settings, workdir: _workdir) -> dict[str, PreparedFile]:
    """Check every part the XML references (others are ignored, like Central) before storing any.
    Case forms and forms marked sensitive get their images re-encoded without metadata (``sync.media``)."""
    strip = media.strips_metadata(form)
    images = media.image_fields(fields)
    prepared: dict[str, PreparedFile] = {}
    for file in files:
        if file.name not in expected or file.name in prepared or file.path is None:
            continue
        prepared[file.name] = media.prepare(file, settings=settings, strip_metadata=strip,
                                            expects_image=expected[file.name] in images,
                                            workdir=workdir() if strip else None)
    return prepared


def _insert(session: Session, *, instance: submission_xml.Instance, parsed: submission_xml.SubmissionData,
            form: Form, version: FormVersion, actor: Actor | None, xml_text: str, xml_sha: str, root: str | None,
            client_device_id: str | None, user_agent: str | None, hooks: Hooks, settings: Settings,
            received: dict[str, Blob] | None = None) -> Submission | None:
    """Insert the row unless this instanceID exists (then None: a concurrent twin won). Capabilities
    fill their columns first (``SubmissionInserting``: geodata places the visit), so it is written once."""
    values = new_row(instance=instance, parsed=parsed, form=form, version=version, actor=actor, xml_text=xml_text,
                     xml_sha=xml_sha, root=root, client_device_id=client_device_id, user_agent=user_agent,
                     received=len(received or ()))
    hooks.emit(SubmissionInserting(session=session, values=values, form=form, version=version, settings=settings))
    # Pending changes (a device's last_seen_at) go first, as an ORM insert's autoflush did: the
    # order in which rows get locked stays the same (a no-op when nothing is pending).
    session.flush()
    new_id = queries.insert_submission(session, values)
    if new_id is None:
        return None
    # The row is exactly ``values``: attach it as loaded instead of reading it back.
    submission = loaded(Submission, {"id": new_id, **values})
    session.add(submission)
    return submission


def new_row(*, instance: submission_xml.Instance, parsed: submission_xml.SubmissionData, form: Form,
            version: FormVersion, actor: Actor | None, xml_text: str, xml_sha: str, root: str | None,
            client_device_id: str | None, user_agent: str | None, received: int = 0) -> dict[str, Any]:
    """The column values of a new submission row, before capabilities fill theirs (``SubmissionInserting``):
    one source for the upload and the JSON batch. ``received``: how many of its files are already recorded."""
    now = utcnow()
    lon, lat, altitude, accuracy = location_of(form, version, parsed.geopoints)
    return dict(
        instance_id=instance.instance_id,
        root_instance_id=root or instance.instance_id,
        deprecated_id=instance.deprecated_id,
        current=True,
        form_id=form.id,
        form_version_id=version.id,
        submitted_by_user_id=actor.user.id if actor else None,
        device_id=actor.device.id if actor and actor.device else None,
        client_device_id=(client_device_id or None) and client_device_id[:200],
        user_agent=(user_agent or None) and user_agent[:300],
        received_at=now,
        updated_at=now,
        xml_sha256=xml_sha,
        xml=xml_text,
        data=parsed.data,
        lon=lon, lat=lat, altitude=altitude, accuracy=accuracy,
        attachments_expected=len(parsed.attachments),
        attachments_present=received,
        complete=received == len(parsed.attachments),
        review_state="received",
        review_reason=None,
        restricted=False,
        superseded_by=None,
        site_id=None, site_distance_m=None, site_match=None, site_flag=None,
    )


def location_of(form: Form, version: FormVersion, points: list[submission_xml.Geopoint]) -> tuple:
    """(lon, lat, altitude, accuracy) of the form's location field (default: first geopoint
    outside repeats, else the first geopoint)."""
    if not points:
        return None, None, None, None
    wanted = (form.settings or {}).get("location_field")
    chosen = None
    if wanted:
        chosen = next((p for p in points if p.field_path == wanted), None)
    else:
        repeats = {f["path"] for f in version.fields or [] if f.get("kind") == "repeat"}
        chosen = next((p for p in points if submission_xml.enclosing_repeat(p.field_path, repeats) is None), points[0])
    if chosen is None:
        return None, None, None, None
    return chosen.lon, chosen.lat, chosen.altitude, chosen.accuracy


def _kind_unchanged(session: Session, form: Form) -> None:
    """A case-form submission is stored only while its form is still of that kind. The row just
    inserted holds a key-share lock on the form row (its foreign key), so a concurrent kind change
    (``forms.service``, which locks the form row first) either waits for this transaction and then
    sees this submission (409 ``form.kind_fixed``), or committed first and is seen here."""
    kind = queries.form_kind(session, form.id)
    if kind != form.kind:
        raise SubmissionFormKindChanged(f"form {form.xml_form_id!r} changed kind from {form.kind} to {kind} during this upload; "
                                        "send it again")


def _supersede(session: Session, old: Submission, new: Submission) -> None:
    if queries.supersede(session, old.id, new.instance_id, utcnow()) != 1:
        raise SubmissionAlreadySuperseded(f"the submission {old.instance_id!r} was already replaced by another edit; "
                                          f"edit the newest version")
    session.refresh(old)


def _expected_rows(session: Session, submission: Submission, expected: dict[str, str],
                   carried: Submission | None) -> list[SubmissionAttachment]:
    """One row per referenced file; an edit carries over the old version's files by name."""
    previous = {a.name: a for a in attachments_of(session, carried)} if carried is not None else {}
    rows = []
    for name, field_path in expected.items():
        row = SubmissionAttachment(submission_id=submission.id, name=name, field_path=field_path)
        old = previous.get(name)
        if old is not None and old.received:
            row.sha256, row.size, row.media_type = old.sha256, old.size, old.media_type
            row.received, row.received_at = True, old.received_at
        session.add(row)
        rows.append(row)
    if rows:
        session.flush()
    return rows


def _record_files(session: Session, prepared: dict[str, PreparedFile], written: dict[str, StoredBlob], *,
                  actor: Actor | None) -> dict[str, Blob]:
    """The blob (and holder) rows of a new record's received files, by attachment name."""
    holder = actor.user.id if actor is not None else None
    return {name: media.record(session, file, written[name], holder=holder) for name, file in prepared.items()}


def _new_attachments(session: Session, submission: Submission, expected: dict[str, str], received: dict[str, Blob],
                     prepared: dict[str, PreparedFile], *, actor: Actor | None) -> list[str]:
    """A new record's attachment rows, received ones filled, written at once (driver-level: no ORM rows
    to insert and then update, issue 13), each received file audited; returns the names still missing."""
    now = utcnow()
    rows = []
    for name, field_path in expected.items():
        blob = received.get(name)
        rows.append({"submission_id": submission.id, "name": name, "field_path": field_path,
                     "sha256": blob.sha256 if blob else None, "expected_sha256": None,
                     "size": blob.size if blob else None, "media_type": blob.media_type if blob else None,
                     "received": blob is not None, "received_at": now if blob else None})
    queries.insert_attachments(session, rows)
    for name, blob in received.items():
        audit.record(session, "submission.attachment_add", actor=actor, object_type="submission",
                     object_id=submission.instance_id, name=name, sha256=blob.sha256, size=blob.size,
                     stripped=prepared[name].stripped)
    return [name for name in expected if name not in received]


def _geopoints(session: Session, submission: Submission, points: list[submission_xml.Geopoint]) -> None:
    """The submission's geopoint rows, written at once (Core, no ORM objects: nothing left pending for
    the next autoflush)."""
    queries.insert_geopoints(session, [
        {"submission_id": submission.id, "field_path": p.field_path, "repeat_index": p.ordinal, "lon": p.lon,
         "lat": p.lat, "altitude": p.altitude, "accuracy": p.accuracy} for p in points])


def _fill(session: Session, submission: Submission, rows: list[SubmissionAttachment],
          prepared: dict[str, PreparedFile], written: dict[str, StoredBlob], *, blobs: BlobStore,
          settings: Settings, actor: Actor | None, flush: bool = True) -> list[str]:
    """Fill rows still waiting with the received parts (written to the store if not yet); returns the names added.

    :param flush: False when the caller flushes right after (one flush per new submission).
    """
    added = []
    for row in rows:
        file = prepared.get(row.name)
        if file is None or row.received:
            continue
        stored = written.get(row.name) or media.write(blobs, file, settings=settings)
        blob = media.record(session, file, stored, holder=actor.user.id if actor is not None else None)
        row.sha256, row.size, row.media_type = blob.sha256, blob.size, blob.media_type
        row.received, row.received_at = True, utcnow()
        session.add(row)
        added.append(row.name)
        audit.record(session, "submission.attachment_add", actor=actor, object_type="submission",
                     object_id=submission.instance_id, name=row.name, sha256=blob.sha256, size=blob.size,
                     stripped=file.stripped)
    present = sum(1 for r in rows if r.received)
    counts = (len(rows), present, present == len(rows))
    # Only a real change dirties the row: a clean new submission leaves nothing for the next autoflush.
    if (submission.attachments_expected, submission.attachments_present, submission.complete) != counts:
        submission.attachments_expected, submission.attachments_present, submission.complete = counts
    if added:
        submission.updated_at = utcnow()
    session.add(submission)
    if flush:
        session.flush()
    return added


def _resend(session: Session, existing: Submission, *, form: Form, xml_sha: str, files: list[IncomingFile],
            blobs: BlobStore, settings: Settings, actor: Actor | None, workdir: _workdir,
            prepared: dict[str, PreparedFile] | None = None,
            written: dict[str, StoredBlob] | None = None) -> ReceiveResult:
    """Same instanceID again: identical XML fills missing attachments; different XML is a conflict."""
    if existing.form_id != form.id or existing.xml_sha256 != xml_sha:
        raise SubmissionXmlConflict("a submission already exists with this instanceID but different XML; a resend to add "
                                    "attachments must repeat the identical xml_submission_file",
                                    details={"instance_id": existing.instance_id})
    rows = attachments_of(session, existing)
    waiting = {r.name: r.field_path or "" for r in rows if not r.received}
    added: list[str] = []
    if waiting and files:
        if prepared is None:
            version = session.get(FormVersion, existing.form_version_id, options=NO_XFORM)
            prepared = _prepare(files, waiting, form=form, fields=version.fields if version else [],
                                settings=settings, workdir=workdir)
        added = _fill(session, existing, rows, prepared, written or {}, blobs=blobs, settings=settings, actor=actor)
    return ReceiveResult(status="attachments_added" if added else "duplicate", submission=existing,
                         missing=[r.name for r in rows if not r.received])
