"""case events name the device and the authentication method

Revision ID: cases_0003
Revises: cases_0002
Create Date: 2026-12-02 00:45:31

Plain ``ADD COLUMN`` rather than a batch (copy-and-move) on SQLite: recreating ``caseevent`` would
drop its append-only triggers (cases_0002).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'cases_0003'
down_revision = 'cases_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE caseevent ADD COLUMN actor_device_id INTEGER REFERENCES device (id)")
    else:
        op.add_column('caseevent', sa.Column('actor_device_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_caseevent_actor_device_id_device', 'caseevent', 'device',
                              ['actor_device_id'], ['id'])
    op.add_column('caseevent', sa.Column('actor_device', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True))
    op.add_column('caseevent', sa.Column('actor_auth', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column('caseevent', 'actor_auth')
    op.drop_column('caseevent', 'actor_device')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint('fk_caseevent_actor_device_id_device', 'caseevent', type_='foreignkey')
    op.drop_column('caseevent', 'actor_device_id')
