"""Issue 9, "Also": the retention purge deletes files only after its transaction commits, and
deletes only photos when asked for photos.

Before, ``asmfield cases purge`` unlinked the photo files while erasing the rows: a purge whose
commit then failed left rows pointing at files that no longer existed.
"""

import json
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from app.blobs import FilesystemBlobStore
from app.db import session_scope
from app.identity import Actor
from app.models import AuditLog
from app.timeutil import utcnow
from cases.kpi import child_labour_kpi
from cases.models import CaseDedupKey, CaseEvent, ChildCase
from cases.retention import purge_identities
from sync.models import Blob, Submission, SubmissionAttachment
from tests.cases.conftest import eligible_answers, photo_file
from tests.cases.factories import WIDE, go, run, withdraw


def _photo(tmp_path):
    return photo_file(tmp_path, colour=(200, 30, 90))


def child_labour_kpi_value(engine, person):
    with session_scope(engine) as s:
        return child_labour_kpi(s, actor=Actor(user=person.user), small_cells=False, **WIDE)["value"]


@pytest.fixture
def closed_case(client, kit, world, tmp_path):
    """A closed case whose intake has a photo (with consent): (case code, intake submission, photo sha256)."""
    cw = world.caseworker_a
    sub = kit.submit(cw, "child_case_intake", eligible_answers(consent_photo="yes", child_photo="child.jpg"),
                     files=[_photo(tmp_path)])
    code = kit.case_of(sub).code
    withdraw(client, world, code, cw, "NGO A")
    go(client, world.coordinator, code, "approve_closure")
    with session_scope(kit.engine) as s:
        sha = s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).one().sha256
    return code, sub, sha


def _state(engine, code, sub):
    with session_scope(engine) as s:
        case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
        stored = s.get(Submission, sub.id)
        return {"erased": case.identity_erased_at is not None, "name": "Mwamba" in stored.xml,
                "photo_field": "child.jpg" in stored.xml,
                "attachments": len(s.exec(select(SubmissionAttachment)
                                          .where(SubmissionAttachment.submission_id == sub.id)).all()),
                "keys": len(s.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all()),
                "events": [e.action for e in s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
                           if e.action.startswith("erase")]}


def test_a_purge_whose_commit_fails_leaves_every_row_and_file_in_place(engine, settings, closed_case):
    code, sub, sha = closed_case
    blobs = FilesystemBlobStore(settings.media_path)
    later = utcnow() + timedelta(days=settings.case_retention_days + 1)
    before = _state(engine, code, sub)
    assert before == {"erased": False, "name": True, "photo_field": True, "attachments": 1, "keys": 3, "events": []}

    session = Session(engine, expire_on_commit=False)

    @event.listens_for(session, "before_commit")
    def refuse(_session):  # the commit fails after the purge did its file step
        raise RuntimeError("disk full while committing")

    with pytest.raises(RuntimeError, match="disk full"):
        try:
            summary = purge_identities(session, settings=settings, blobs=blobs, now=later)
            assert summary.cases == 1 and summary.files >= 1
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    assert blobs.exists(sha)  # the file is still there...
    assert _state(engine, code, sub) == before  # ...and so is every row pointing at it

    # Run again: it all goes, the files only once the rows are gone for good.
    with session_scope(engine) as s:
        assert purge_identities(s, settings=settings, blobs=blobs, now=later).cases == 1
        assert blobs.exists(sha)  # not before the commit
    assert not blobs.exists(sha)
    with session_scope(engine) as s:
        assert s.get(Blob, sha) is None
    assert _state(engine, code, sub) == {"erased": True, "name": False, "photo_field": False, "attachments": 0,
                                         "keys": 0, "events": ["erase_identity"]}
    # And again: nothing left to do, no error.
    with session_scope(engine) as s:
        assert purge_identities(s, settings=settings, blobs=blobs, now=later).cases == 0


def test_purge_photos_only_erases_the_photos_and_nothing_else(engine, settings, closed_case):
    code, sub, sha = closed_case
    blobs = FilesystemBlobStore(settings.media_path)
    now = {"ASMFIELD_CASE_RETENTION_DAYS": "0"}
    summary = json.loads(run(settings, "purge", "--photos-only", "--json", env=now).stdout)
    assert (summary["cases"], summary["attachments"], summary["photos_only"]) == (1, 1, True)
    assert not blobs.exists(sha)
    assert _state(engine, code, sub) == {"erased": False, "name": True, "photo_field": False, "attachments": 0,
                                         "keys": 3, "events": ["erase_photos"]}
    # A full purge later erases the rest.
    assert "erased identifying fields of 1 case(s)" in run(settings, "purge", env=now).stdout
    assert _state(engine, code, sub)["erased"] is True


def test_purge_erases_identities_of_old_closed_cases_and_keeps_the_counts(client, kit, world, engine, settings,
                                                                          tmp_path):
    cw, co = world.caseworker_a, world.coordinator
    sub = kit.submit(cw, "child_case_intake", eligible_answers(consent_photo="yes", child_photo="child.jpg"),
                     files=[_photo(tmp_path)])
    code = kit.case_of(sub).code
    withdraw(client, world, code, cw, "NGO A")
    kit.followup(cw, code, followup_date=sub.received_at.date().isoformat(), followup_type="observation",
                 child_found="yes", in_hazardous_work="no", in_school_or_training="yes", notes="met Mwamba at school")
    go(client, co, code, "approve_closure")
    open_code = kit.intake(cw, child_given_name="Ilunga", caregiver_phone="+243970000009").code
    before = child_labour_kpi_value(engine, co)
    blobs = FilesystemBlobStore(settings.media_path)
    with session_scope(engine) as s:
        sha = s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).one().sha256
    assert sha and blobs.exists(sha)

    with session_scope(engine) as s:  # not yet due
        assert purge_identities(s, settings=settings, blobs=blobs).cases == 0
    later = utcnow() + timedelta(days=settings.case_retention_days + 1)
    with session_scope(engine) as s:
        dry = purge_identities(s, settings=settings, blobs=blobs, now=later, dry_run=True)
        assert dry.codes == [code] and blobs.exists(sha)
    with session_scope(engine) as s:
        done = purge_identities(s, settings=settings, blobs=blobs, now=later)
    assert (done.cases, done.submissions, done.attachments, done.files >= 1) == (1, 2, 1, True)

    with session_scope(engine) as s:
        case = s.exec(select(ChildCase).where(ChildCase.code == code)).one()
        assert case.identity_erased_at is not None and case.status == "closed"
        for stored in s.exec(select(Submission)).all():
            if stored.root_instance_id in (sub.root_instance_id,) or "met Mwamba" in stored.xml or \
                    stored.data.get("/child_case_followup/case_id") == code:
                assert "Mwamba" not in stored.xml and "Mwamba" not in str(stored.data)
                assert "+243" not in stored.xml and "child.jpg" not in stored.xml
        assert s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).all() == []
        assert s.exec(select(CaseDedupKey).where(CaseDedupKey.case_id == case.id)).all() == []
        assert s.exec(select(AuditLog).where(AuditLog.action == "case.purge")).one().details["cases"] == 1
        untouched = s.exec(select(ChildCase).where(ChildCase.code == open_code)).one()
        assert untouched.identity_erased_at is None
    assert not blobs.exists(sha)
    assert child_labour_kpi_value(engine, co) == before == 1
    r = client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer)
    assert r.status_code == 403 and "erased" in r.json()["error"]["message"]
    assert "Ilunga" in client.get(f"/api/v1/cases/{open_code}/identity", headers=cw.bearer).text
