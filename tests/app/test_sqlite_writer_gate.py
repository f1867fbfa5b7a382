"""SQLite writers of one process queue on ``app.db._WriterGate`` (issue 13), not in SQLite's busy
handler: the gate is taken where SQLite's write lock is, and always handed back."""

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.db import session_scope
from app.models import Organisation


@pytest.fixture
def gate(engine):
    """The engine's writer gate (SQLite); on PostgreSQL there is none and only the gate's own tests skip."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the writer gate is for SQLite only")
    return engine.sqlite_writer_gate


def _free(engine) -> bool:
    """The gate is free (always true where there is no gate: PostgreSQL has its own row locks)."""
    gate = getattr(engine, "sqlite_writer_gate", None)
    return gate is None or not gate.held()


def _names(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT name FROM organisation")))


def test_concurrent_writers_all_commit_and_the_gate_ends_free(engine):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with session_scope(engine) as s:
                    s.add(Organisation(name=f"org {n}-{i}", kind="ngo"))
                    s.flush()
                    s.exec(text("SELECT count(*) FROM organisation")).one()  # type: ignore[call-overload]
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(_names(engine)) == 8 * 15
    assert _free(engine)


def test_reads_do_not_take_the_gate(engine, gate):
    with session_scope(engine) as s:
        s.exec(text("SELECT count(*) FROM organisation")).one()  # type: ignore[call-overload]
        assert not gate.held()


def test_the_gate_is_held_during_a_write_and_handed_back_at_commit(engine, gate):
    with session_scope(engine) as s:
        s.add(Organisation(name="Held", kind="ngo"))
        s.flush()
        assert gate.held()
    assert not gate.held()
    assert _names(engine) == ["Held"]


def test_the_gate_is_handed_back_after_a_rollback_and_a_failed_statement(engine):
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.add(Organisation(name="Dropped", kind="ngo"))
        s.flush()
        raise RuntimeError("the request fails")
    assert _free(engine)
    with session_scope(engine) as s:
        s.add(Organisation(name="Twice", kind="ngo"))
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(Organisation(name="Twice", kind="ngo"))
        s.flush()
    assert _free(engine)
    # and a batch's savepoints (explicit BEGIN first) take and return it too
    with session_scope(engine) as s:
        with s.begin_nested():
            s.add(Organisation(name="Nested", kind="ngo"))
        assert not _free(engine) or engine.dialect.name != "sqlite"
    assert _free(engine)
    assert _names(engine) == ["Nested", "Twice"]


def test_waiting_writers_get_the_gate_in_the_order_they_came(engine, gate):
    """First come, first served: a writer arriving later never overtakes one already waiting."""
    holder, order = object(), []
    gate.enter(holder)
    threads = []
    for n in range(5):
        def wait(n: int = n) -> None:
            me = object()
            gate.enter(me)
            order.append(n)
            gate.leave(me)
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        while len(gate._waiters) <= n:  # noqa: SLF001 -- each one queued before the next starts
            threading.Event().wait(0.001)
    gate.leave(holder)
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4]
    assert not gate.held()
