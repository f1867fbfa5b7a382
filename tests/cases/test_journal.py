"""Case events (``cases.journal``) are immutable: neither the ORM nor the database changes them."""

from sqlmodel import select

from app.db import session_scope
from cases.models import CaseEvent


def test_case_events_cannot_be_changed_or_deleted(kit, world, engine):
    import pytest


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
