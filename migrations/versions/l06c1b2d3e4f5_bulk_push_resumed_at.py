"""When a bulk send's sending resumed after its latest pause ended, so the time
left during a later pause counts neither pause as sending

Revision ID: l06c1b2d3e4f5
Revises: k05b0a1c0de01
Create Date: 2026-12-06 23:20:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'l06c1b2d3e4f5'
down_revision = 'k05b0a1c0de01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bulk_push', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resumed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('bulk_push', schema=None) as batch_op:
        batch_op.drop_column('resumed_at')
