"""app.rawsql and app.snapshots: the upload path's driver-level statements and read-only row copies
store and read exactly what the ORM would, on SQLite and PostgreSQL, and never serve a stale row."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, select

from app import accounts
from app.db import make_engine, migrate, session_scope
from app.models import AuditLog, Device, User
from app.rawsql import FastInsert, loaded, raw_rows
from app.settings import Settings
from app.snapshots import RowPairSnapshots, RowSnapshots

AUDIT = FastInsert(AuditLog.__table__)
DEVICE_ROWS = FastInsert(Device.__table__, on_conflict=("token_hash",), returning="id")


def _monitor(engine) -> int:
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Programme", kind="coordinator")
        return accounts.create_user(s, username="amani", password="Kolwezi-Amani-2026!", role="monitor",
                                    organisation=org.id).id


def test_a_driver_level_insert_stores_what_the_orm_reads_back_unchanged(engine):
    """JSON and UTC datetimes go through the columns' own types: the ORM reads the same values."""
    at = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=UTC)
    details = {"form": "visite_site", "names": ["Kolwezi", "Likasi"], "n": 3, "accents": "Kipaji é"}
    with session_scope(engine) as s:
        AUDIT.insert_one(s, {"at": at, "action": "test.raw", "details": details, "count": 1})
        AUDIT.insert_many(s, [{"at": at, "action": "test.many", "details": {"i": i}, "count": 1} for i in range(3)])
    with Session(engine) as s:
        row = s.exec(select(AuditLog).where(AuditLog.action == "test.raw")).one()
        assert (row.at, row.details, row.actor_user_id) == (at, details, None)
        assert [r.details for r in s.exec(select(AuditLog).where(AuditLog.action == "test.many")
                                          .order_by(AuditLog.id))] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_on_conflict_do_nothing_returns_none_for_the_second_row(engine):
    user_id = _monitor(engine)
    row = {"name": "tablet-01", "token_hash": "h" * 64, "user_id": user_id, "created_at": datetime.now(UTC)}
    with session_scope(engine) as s:
        first = DEVICE_ROWS.insert_one(s, row)
        assert isinstance(first, int)
        assert DEVICE_ROWS.insert_one(s, {**row, "name": "tablet-02"}) is None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM device").scalar() == 1


def test_raw_rows_reads_inside_the_sessions_transaction(session):
    session.add(AuditLog(action="test.pending", details={}))
    session.flush()
    assert raw_rows(session, "SELECT action FROM auditlog WHERE action = ?", ("test.pending",)) == [("test.pending",)]


def test_a_loaded_object_is_clean_until_changed(session):
    """``loaded`` builds the object as the ORM would after a load: adding it writes nothing."""
    user_id = _monitor(session.get_bind())
    user = session.get(User, user_id)
    values = {c.name: getattr(user, c.name) for c in User.__table__.columns}
    session.expunge(user)
    copy = loaded(User, values)
    assert inspect(copy).detached and copy.username == "amani"
    session.add(copy)
    assert not session.dirty and not session.new
    copy.full_name = "Amani Kabila"
    assert session.dirty


def test_a_snapshot_is_reused_while_its_row_is_unchanged_and_reloaded_at_once_after_a_change(engine):
    """The copy is shared across requests; any committed change (here a deactivation made through
    the ORM, as another process would) is seen by the very next read."""
    user_id = _monitor(engine)
    users = RowSnapshots(User)
    with Session(engine) as s:
        first = users.get(s, user_id)
    with Session(engine) as s:
        assert users.get(s, user_id) is first  # unchanged: the same copy, one raw read
    with session_scope(engine) as s:
        accounts.set_active(s, s.get(User, user_id), False)
    with Session(engine) as s:
        again = users.get(s, user_id)
        assert again is not first and again.active is False
        assert users.get(s, 10**9) is None


def test_snapshots_of_two_databases_never_mix(engine, tmp_path):
    """Copies are kept per engine: the same id in another database is that database's row."""

    _monitor(engine)
    other_engine = make_engine(Settings(data_dir=tmp_path / "other", secret_key="other-secret-key-0123456789abcdef"))
    try:
        migrate(other_engine)
        with session_scope(other_engine) as s:
            org = accounts.create_organisation(s, name="ONG Nuru", kind="ngo")
            accounts.create_user(s, username="neema", password="Likasi-Neema-2026!", role="caseworker", organisation=org.id)
        users = RowSnapshots(User)
        with Session(engine) as a, Session(other_engine) as b:
            first_here = a.exec(select(User.id)).first()
            first_there = b.exec(select(User.id)).first()
            assert users.get(a, first_here).username == "amani"
            assert users.get(b, first_there).username == "neema"
    finally:
        other_engine.dispose()


def test_a_row_and_the_row_it_refers_to_are_checked_together(engine):
    """A device and its user in one read: a change to either is seen at once (deactivating a user also
    revokes their devices)."""

    user_id = _monitor(engine)
    with session_scope(engine) as s:
        device, _ = accounts.create_device(s, name="tablet-kolwezi", user=user_id)
        device_id = device.id
    pairs = RowPairSnapshots(RowSnapshots(Device), "user_id", RowSnapshots(User))
    with Session(engine) as s:
        first = pairs.get(s, device_id)
        assert (first[0].name, first[1].username) == ("tablet-kolwezi", "amani")
        again = pairs.get(s, device_id)
        assert again[0] is first[0] and again[1] is first[1]
    with session_scope(engine) as s:
        accounts.set_active(s, s.get(User, user_id), False)
    with Session(engine) as s:
        device_copy, user_copy = pairs.get(s, device_id)
        assert user_copy is not first[1] and user_copy.active is False
        assert device_copy is not first[0] and device_copy.revoked_at is not None
        assert pairs.get(s, 10**9) is None


def test_a_read_only_copy_cannot_join_a_session(engine):
    """Copies are shared by every request: one attached to a session would be changed or expired under
    the others' feet, so it is refused at once."""

    user_id = _monitor(engine)
    users = RowSnapshots(User)
    with Session(engine) as s:
        copy = users.get(s, user_id)
        with pytest.raises(TypeError, match="read-only copy"):
            s.add(copy)
