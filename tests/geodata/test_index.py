"""The site index cache belongs to an app (issue 10): no module state shared between apps or
test databases; and the sites counter that invalidates it is bumped atomically."""

import threading

from sqlalchemy import delete
from sqlmodel import Session

from app.db import make_engine, session_scope
from app.main import create_app
from geodata import index, queries
from geodata.models import GeodataCounter, Site, SiteStage
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square


def test_each_app_has_its_own_site_index_cache_which_its_sessions_find(settings, engine):
    first, second = create_app(settings), create_app(settings)
    try:
        assert isinstance(first.state.site_index, index.SiteIndexCache)
        assert first.state.site_index is not second.state.site_index
        with Session(first.state.engine) as s:  # what the submission subscriber of this app uses
            assert index.cache_of(s) is first.state.site_index
        with Session(engine) as s:  # a CLI run or a test engine: its own
            assert index.cache_of(s) is not first.state.site_index
    finally:
        first.state.engine.dispose()
        second.state.engine.dispose()


def test_a_new_engine_never_sees_an_index_built_for_another(engine, settings):
    """A restored database whose counter starts again at the same value: a process-wide cache keyed
    by the database URL served the old sites; a new engine (a new app, a new test) starts empty."""
    import_frame(engine, settings, sites_frame([("A", square(*KOLWEZI, 100))]))
    with session_scope(engine) as s:
        assert index.indexes(s).codes == ["A"]
        version = index.sites_version(s)
    with session_scope(engine) as s:  # restore: no sites, the counter gone
        s.execute(delete(SiteStage))
        s.execute(delete(Site))
        s.execute(delete(GeodataCounter))
    fresh = make_engine(settings)
    try:
        import_frame(fresh, settings, sites_frame([("B", square(*offset(*KOLWEZI, 5000), 100))]))
        other = make_engine(settings)  # another app over the restored database
        with session_scope(other) as s:
            assert index.sites_version(s) == version
            assert index.indexes(s).codes == ["B"]
        other.dispose()
    finally:
        fresh.dispose()


def test_two_concurrent_bumps_of_the_sites_counter_both_count(engine):
    """Two transactions read the counter, then both bump it (two imports at once): the increment is
    one statement (``value = value + 1``), so neither update is lost (read-modify-write lost one)."""
    with session_scope(engine) as s:
        assert queries.bump_counter(s, queries.SITES_VERSION) == 1
    both_read = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def import_at_once() -> None:
        try:
            with session_scope(engine) as s:
                seen = s.get(GeodataCounter, queries.SITES_VERSION)  # the row, loaded in this transaction
                assert seen is not None and seen.value == 1
                both_read.wait()
                queries.bump_counter(s, queries.SITES_VERSION)
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=import_at_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with session_scope(engine) as s:
        assert queries.counter(s, queries.SITES_VERSION) == 3


def test_a_counter_is_created_by_its_first_bump(session):
    assert queries.counter(session, "other") == 0
    assert [queries.bump_counter(session, "other") for _ in range(3)] == [1, 2, 3]
    assert queries.counter(session, "other") == 3
