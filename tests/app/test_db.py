"""Transactions: a savepoint released inside a request's transaction must not commit it."""

from sqlalchemy import text

from app.db import session_scope
from app.models import Organisation


def test_released_savepoint_is_undone_when_the_transaction_rolls_back(engine):
    # Raw Organisation rows on purpose: these tests are about session_scope's transactions, not accounts.
    try:
        with session_scope(engine) as s:
            with s.begin_nested():
                s.add(Organisation(name="Saved by a savepoint", kind="ngo"))
            raise RuntimeError("the request fails after the savepoint was released")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organisation")).scalar() == 0


def test_rolled_back_savepoint_keeps_the_rest_of_the_transaction(engine):
    with session_scope(engine) as s:
        s.add(Organisation(name="Kept", kind="ngo"))
        s.flush()
        nested = s.begin_nested()
        s.add(Organisation(name="Dropped", kind="ngo"))
        s.flush()
        nested.rollback()
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM organisation"))]
    assert names == ["Kept"]
