"""aggregated failed-login audit rows: count, last_at, aggregate_key, and the indexes lockout and throttle use

Revision ID: app_0002
Revises: app_0001
Create Date: 2026-12-02 00:45:42.967001
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'app_0002'
down_revision = 'app_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('auditlog', schema=None) as batch_op:
        batch_op.add_column(sa.Column('count', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('last_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('aggregate_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_auditlog_action_addr_last', ['action', 'client_addr', 'last_at'], unique=False)
        batch_op.create_index('ix_auditlog_action_label_last', ['action', 'actor_label', 'last_at'], unique=False)
        batch_op.create_index('ux_auditlog_aggregate_key', ['aggregate_key'], unique=True)
    # Failures recorded before this revision keep counting towards lockouts (one row each).
    op.execute("UPDATE auditlog SET last_at = at WHERE action = 'auth.login_failed'")


def downgrade() -> None:
    with op.batch_alter_table('auditlog', schema=None) as batch_op:
        batch_op.drop_index('ux_auditlog_aggregate_key')
        batch_op.drop_index('ix_auditlog_action_label_last')
        batch_op.drop_index('ix_auditlog_action_addr_last')
        batch_op.drop_column('aggregate_key')
        batch_op.drop_column('last_at')
        batch_op.drop_column('count')
