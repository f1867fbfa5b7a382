"""Retention (domain.md §4.2): erase the identifying answers and photos of cases closed longer
than ``settings.case_retention_days`` (and of a submission at once when consent is missing or
withdrawn). Case rows, events, services and follow-ups stay, so every count survives.

Files are removed only after the caller's transaction commits: a purge that fails leaves every
row and every file as it was, and running it again redoes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from app.blobs import BlobStore, delete_after_commit
from app.identity import Actor
from app.settings import Settings
from app.timeutil import as_utc, isoformat, utcnow
from cases import journal, queries
from cases.access import IDENTIFYING_NAMES
from cases.schemas import PurgeSummary
from forms.models import FormVersion
from sync.media import DERIVED_SIZES
from sync.models import Blob, Submission, SubmissionAttachment
from sync.submission_xml import build_instance_xml


def purge_identities(session: Session, *, settings: Settings, blobs: BlobStore, actor: Actor | None = None,
                     now: datetime | None = None, dry_run: bool = False, photos_only: bool = False) -> PurgeSummary:
    """Erase the identifying fields of cases closed longer than ``settings.case_retention_days``:
    in the case-form submissions (data, XML, attachment links and unreferenced photo files) and
    the dedup keys. Case rows, events, services and follow-ups stay, so every count survives.

    Files are removed only after the caller's transaction commits (``app.blobs.delete_after_commit``):
    a purge that fails leaves every row and every file as it was, and running it again redoes it.

    :param photos_only: erase only the photos (fields and files); names and the rest stay, and
        the case is not marked erased (a later full purge still erases them).
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.case_retention_days)
    due = [c for c in queries.closed_not_erased(session) if c.closed_at is not None and as_utc(c.closed_at) < cutoff]
    summary = PurgeSummary(cases=len(due), submissions=0, attachments=0, files=0, dry_run=dry_run,
                           photos_only=photos_only, cutoff=isoformat(cutoff), codes=[c.code for c in due])
    if dry_run or not due:
        return summary
    for case in due:
        roots = {link.root_instance_id for link in queries.links_for_case(session, case.id)}
        roots.add(case.intake_root_instance_id)
        for sub in queries.submissions_of_roots(session, roots):
            attachments, files = erase_submission_identity(session, sub, blobs=blobs, photos_only=photos_only)
            summary.submissions += 1
            summary.attachments += attachments
            summary.files += files
        reason = f"retention: closed more than {settings.case_retention_days} days ago"
        if photos_only:
            session.add(journal.new_event(case, actor=actor, action="erase_photos", from_status=case.status,
                                          to_status=case.status, reason=reason))
            continue
        for key in queries.dedup_keys(session, case.id):
            session.delete(key)
        case.identity_erased_at = now
        session.add(case)
        session.add(journal.new_event(case, actor=actor, action="erase_identity", from_status=case.status,
                                      to_status=case.status, reason=reason))
    session.flush()
    journal.record(session, "case.purge", actor=actor, object_type="case", cases=summary.cases,
                   submissions=summary.submissions, attachments=summary.attachments, files=summary.files,
                   photos_only=photos_only, codes=summary.codes)
    return summary


def _photo_fields(version: FormVersion | None) -> set[str]:
    """Paths of the form's image questions (``binary`` with an image media type)."""
    return {f["path"] for f in (version.fields if version else [])
            if f.get("type") == "binary" and str(f.get("mediatype") or "").startswith("image")}


def _is_photo(att: SubmissionAttachment, photo_fields: set[str]) -> bool:
    return att.field_path in photo_fields or str(att.media_type or "").startswith("image/")


def erase_submission_identity(session: Session, sub: Submission, *, blobs: BlobStore,
                              photos_only: bool = False) -> tuple[int, int]:
    """Drop identifying answers and photos from one case-form submission: its data, its XML, its
    attachment rows and the files no one else references. ``xml_sha256`` keeps the hash of what
    was received, so a tablet resending it is still answered as a duplicate.

    With ``photos_only`` only the image answers and photo attachments go; other answers and
    attachments stay. Files are deleted after the transaction commits, never before.

    :returns: (attachment rows removed, files scheduled for deletion).
    """
    version = session.get(FormVersion, sub.form_version_id)
    binary = {f["path"] for f in (version.fields if version else []) if f.get("type") == "binary"}
    photos = _photo_fields(version)
    if photos_only:
        data = {k: v for k, v in (sub.data or {}).items() if k not in photos}
    else:
        data = {k: v for k, v in (sub.data or {}).items()
                if k.rsplit("/", 1)[-1] not in IDENTIFYING_NAMES and k not in binary}
    sub.data = data
    if version is not None:
        sub.xml = build_instance_xml(version, data, sub.instance_id, deprecated_id=sub.deprecated_id).decode("utf-8")
    freed: set[str] = set()
    removed = files = 0
    kept = 0
    for att in queries.attachments(session, sub.id):
        if photos_only and not _is_photo(att, photos):
            kept += 1
            continue
        if att.sha256:
            freed.add(att.sha256)
        session.delete(att)
        removed += 1
    if kept == 0:
        sub.attachments_expected = sub.attachments_present = 0
        sub.complete = True
    else:
        sub.attachments_expected = max(0, (sub.attachments_expected or 0) - removed)
        sub.attachments_present = max(0, (sub.attachments_present or 0) - removed)
    sub.updated_at = utcnow()
    session.add(sub)
    session.flush()
    for sha in sorted(freed):
        if queries.blob_still_used(session, sha):
            continue
        files += blobs.exists(sha) + sum(blobs.derived_exists(sha, variant) for variant in DERIVED_SIZES)
        delete_after_commit(session, blobs, [sha], still_used=queries.blob_in_use)
        blob = session.get(Blob, sha)
        if blob is not None:
            session.delete(blob)
    return removed, files
