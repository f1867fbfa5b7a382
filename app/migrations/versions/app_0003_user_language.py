"""user.language: each person's language for the web pages (French first, English)

Revision ID: app_0003
Revises: app_0002
Create Date: 2026-12-02 05:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'app_0003'
down_revision = 'app_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('language')
