"""case events are append-only in the database too

Revision ID: cases_0002
Revises: cases_0001
Create Date: 2026-11-26 01:40:00

A trigger refuses UPDATE and DELETE on ``caseevent`` (SQLite and PostgreSQL), so the case history
stays immutable even for code or people that bypass the ORM guard in ``cases/models.py``.
"""

from alembic import op

revision = 'cases_0002'
down_revision = 'cases_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION caseevent_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'case events are immutable';
            END
            $$ LANGUAGE plpgsql
        """)
        op.execute("CREATE TRIGGER caseevent_append_only BEFORE UPDATE OR DELETE ON caseevent "
                   "FOR EACH ROW EXECUTE FUNCTION caseevent_immutable()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER caseevent_no_{verb.lower()} BEFORE {verb} ON caseevent "
                       "BEGIN SELECT RAISE(ABORT, 'case events are immutable'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS caseevent_append_only ON caseevent")
        op.execute("DROP FUNCTION IF EXISTS caseevent_immutable()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS caseevent_no_{verb}")
