"""Service rules beyond the lifecycle: site linking, the offline case list, the review queue,
and the retention purge that erases identities while every count survives."""

import io
from datetime import timedelta

from PIL import Image
from shapely.geometry import Polygon, mapping
from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.db import session_scope
from app.identity import Actor
from app.models import AuditLog
from app.timeutil import utcnow
from cases.kpi import child_labour_kpi
from cases.models import CaseDedupKey, ChildCase
from cases.retention import purge_identities
from geodata.models import Site
from sync.media import IncomingFile
from sync.models import Submission, SubmissionAttachment
from tests.cases.test_kpi import WIDE, withdraw
from tests.cases.test_routes import go


def add_site(engine, code="KZ-0042", province="Lualaba"):
    poly = Polygon([(25.4, -10.7), (25.41, -10.7), (25.41, -10.71), (25.4, -10.71)])
    import json

    with session_scope(engine) as s:
        s.add(Site(code=code, name="Kasulo pit 42", province=province, geometry=json.dumps(mapping(poly)),
                   min_lon=25.4, min_lat=-10.71, max_lon=25.41, max_lat=-10.7))


def test_an_intake_links_its_case_to_the_named_site_and_province(kit, world, engine):
    add_site(engine)
    case = kit.intake(world.caseworker_a, site_id="KZ-0042")
    assert (case.site_code, case.province) == ("KZ-0042", "Lualaba") and case.site_id is not None


def test_the_case_list_csv_holds_the_callers_open_cases_and_no_names(client, kit, world):
    cw_a, co = world.caseworker_a, world.coordinator
    open_code = kit.intake(cw_a).code
    for action, who in (("verify", co), ("refer", co), ("accept", cw_a)):
        go(client, who, open_code, action)
    not_yet = kit.intake(cw_a, child_given_name="Ilunga").code  # submitted: not in the follow-up list
    b_code = kit.intake(world.caseworker_b).code
    manifest = client.get("/forms/child_case_followup/manifest", headers=cw_a.basic)
    assert manifest.status_code == 200 and "cases.csv" in manifest.text
    csv = client.get("/forms/child_case_followup/attachments/cases.csv", headers=cw_a.basic)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "name,label,age_band,site,status"
    assert lines[1].startswith(f"{open_code},{open_code} · 12-14,12-14,,accepted")
    assert not_yet not in csv.text and b_code not in csv.text and "Mwamba" not in csv.text
    # Other organisations' tablets and the coordinator get no case list at all.
    assert open_code not in client.get("/forms/child_case_followup/attachments/cases.csv",
                                       headers=world.caseworker_b.basic).text
    assert "cases.csv" not in client.get("/forms/child_case_followup/manifest", headers=co.basic).text
    assert client.get("/forms/child_case_followup/attachments/cases.csv", headers=co.basic).status_code == 404
    # A tablet acts as its caseworker: same list through its token URL.
    from app import accounts

    with session_scope(kit.engine) as s:
        _, token = accounts.create_device(s, name="tablet-ngo-a", user=cw_a.user.id)
    on_tablet = client.get(f"/key/{token}/forms/child_case_followup/attachments/cases.csv")
    assert on_tablet.status_code == 200 and on_tablet.text == csv.text


def test_the_review_queue_lists_flagged_submissions_without_names(client, kit, world):
    from tests.cases.conftest import eligible_answers

    adult = kit.submit(world.caseworker_a, "child_case_intake", eligible_answers(age_estimated_years=25))
    r = client.get("/api/v1/cases/review", headers=world.coordinator.bearer)
    assert r.status_code == 200
    [item] = r.json()["submissions"]
    assert item["instance_id"] == adult.instance_id and item["restricted"] and "18 or over" in item["reason"]
    assert "Mwamba" not in r.text
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "rejected", "note": "adult"},
                    headers=world.coordinator.bearer)
    assert r.status_code == 200
    assert client.get("/api/v1/cases/review", headers=world.coordinator.bearer).json()["submissions"] == []
    r = client.post(f"/api/v1/cases/review/{adult.instance_id}", json={"decision": "maybe"},
                    headers=world.coordinator.bearer)
    assert r.status_code == 422


def _photo(tmp_path):
    path = tmp_path / "child.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return IncomingFile(name="child.jpg", path=path, size=path.stat().st_size, media_type="image/jpeg")


def test_purge_erases_identities_of_old_closed_cases_and_keeps_the_counts(client, kit, world, engine, settings,
                                                                          tmp_path):
    from tests.cases.conftest import eligible_answers

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


def child_labour_kpi_value(engine, person):
    with session_scope(engine) as s:
        return child_labour_kpi(s, actor=Actor(user=person.user), small_cells=False, **WIDE)["value"]


def test_case_photos_are_served_only_to_the_owning_ngo_without_metadata(client, kit, world, tmp_path):
    from tests.cases.conftest import eligible_answers

    path = tmp_path / "child.jpg"
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "S", 2: (10.0, 42.0, 0.0)}  # GPS
    Image.new("RGB", (64, 48), (10, 200, 40)).save(path, "JPEG", exif=exif.tobytes())
    photo = IncomingFile(name="child.jpg", path=path, size=path.stat().st_size, media_type="image/jpeg")
    sub = kit.submit(world.caseworker_a, "child_case_intake",
                     eligible_answers(consent_photo="yes", child_photo="child.jpg"), files=[photo])
    code = kit.case_of(sub).code
    url = f"/api/v1/cases/{code}/photos/child.jpg"
    r = client.get(url, headers=world.caseworker_a.bearer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(r.content))
    assert not served.getexif() and "exif" not in served.info
    assert client.get(url, headers=world.caseworker_b.bearer).status_code == 404
    assert client.get(url, headers=world.admin.bearer).status_code == 403
    assert client.get(f"/api/v1/cases/{code}/photos/other.jpg", headers=world.caseworker_a.bearer).status_code == 404
    assert client.get(f"/api/v1/cases/{code}/identity", headers=world.caseworker_a.bearer).json()["photos"] == [
        "child.jpg"]
    for action in ("verify", "refer"):
        go(client, world.coordinator, code, action, **({"organisation": "NGO A"} if action == "refer" else {}))
    go(client, world.caseworker_a, code, "accept")
    assert client.get(url, headers=world.coordinator.bearer).status_code == 403


def test_a_photo_of_an_intake_that_opens_no_case_is_not_kept(kit, world, settings, tmp_path):
    from tests.cases.conftest import eligible_answers

    sub = kit.submit(world.caseworker_a, "child_case_intake",
                     eligible_answers(age_estimated_years=21, consent_photo="yes", child_photo="child.jpg"),
                     files=[_photo(tmp_path)])
    stored = kit.submission(sub)
    assert stored.restricted and "child.jpg" not in stored.xml
    with session_scope(kit.engine) as s:
        assert s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id)).all() == []
    assert not any(p.is_file() for p in FilesystemBlobStore(settings.media_path).root.rglob("*"))


def test_consent_is_recorded_per_purpose_and_withdrawals_act(client, kit, world, settings, tmp_path):
    from tests.cases.conftest import eligible_answers

    cw, co = world.caseworker_a, world.coordinator
    sub = kit.submit(cw, "child_case_intake", eligible_answers(consent_photo="yes", child_photo="child.jpg"),
                     files=[_photo(tmp_path)])
    code = kit.case_of(sub).code
    go(client, co, code, "verify")
    r = client.post(f"/api/v1/cases/{code}/consent", headers=co.bearer,
                    json={"purpose": "share_partner", "given": False, "given_by": "caregiver"})
    assert r.status_code == 200 and r.json()["consent"]["share_partner"] is False
    assert go(client, co, code, "refer", expect=422)["error"]["code"] == "case.no_consent_to_share"
    client.post(f"/api/v1/cases/{code}/consent", headers=co.bearer, json={"purpose": "share_partner", "given": True})
    go(client, co, code, "refer", organisation="NGO A")
    go(client, cw, code, "accept")
    assert client.get(f"/api/v1/cases/{code}/photos/child.jpg", headers=cw.bearer).status_code == 200
    r = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer, json={"purpose": "photo", "given": False})
    assert r.status_code == 200
    assert client.get(f"/api/v1/cases/{code}/photos/child.jpg", headers=cw.bearer).status_code == 403
    assert "child.jpg" not in kit.submission(sub).xml
    assert client.get(f"/api/v1/cases/{code}/identity", headers=cw.bearer).json()["photos"] == []
    body = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer,
                       json={"purpose": "services", "given": False, "reason": "family moved to Likasi"}).json()
    assert body["pending_request"] == {"kind": "closure", "reason": "consent_withdrawn"}
    assert body["allowed_actions"] == []  # a coordinator approves the closure
    assert go(client, co, code, "approve_closure")["closure_reason"] == "consent_withdrawn"
    events = [(e["action"], e["reason"]) for e in client.get(f"/api/v1/cases/{code}", headers=cw.bearer).json()["events"]]
    assert events.count(("consent", None)) == 3 and ("consent", "family moved to Likasi") in events
    bad = client.post(f"/api/v1/cases/{code}/consent", headers=cw.bearer, json={"purpose": "everything", "given": True})
    assert bad.status_code == 422


def test_case_events_cannot_be_changed_or_deleted(kit, world, engine):
    import pytest

    from cases.models import CaseEvent

    kit.intake(world.caseworker_a)
    with pytest.raises(PermissionError, match="immutable"):
        with session_scope(engine) as s:
            event = s.exec(select(CaseEvent)).one()
            event.reason = "rewritten"
            s.add(event)
    with pytest.raises(PermissionError, match="immutable"):
        with session_scope(engine) as s:
            s.delete(s.exec(select(CaseEvent)).one())
    with session_scope(engine) as s:
        assert s.exec(select(CaseEvent)).one().reason is None


def test_the_database_refuses_to_change_case_events(kit, world, engine):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    kit.intake(world.caseworker_a)
    for sql in ("UPDATE caseevent SET reason = 'rewritten'", "DELETE FROM caseevent"):
        with pytest.raises(DBAPIError, match="immutable"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM caseevent WHERE reason IS NULL")).scalar() == 1
