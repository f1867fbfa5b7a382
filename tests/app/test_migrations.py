"""Migrations: from empty, re-run, and in step with the models."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from app.db import current_revisions, import_all_models, make_engine, migrate
from app.settings import Settings


def test_migrate_from_empty_creates_every_table(tmp_path):
    engine = make_engine(Settings(data_dir=tmp_path, secret_key="k" * 32))
    migrate(engine)
    import_all_models()
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    engine.dispose()


def test_migrate_twice_keeps_data(engine, world):
    before = current_revisions(engine)
    migrate(engine)
    assert current_revisions(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT count(*) FROM "user"').scalar() == 6


def test_models_and_migrations_agree(engine):
    """A model change without its migration fails here, a changed column type too (run scripts/new_migration.py)."""
    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []
