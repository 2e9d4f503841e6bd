"""user.invite_expires_at: invite links expire (INVITE_LINK_DAYS)

Links issued before this migration get no expiry date, and so count as
expired: an administrator issues a new one.

Revision ID: h12b1a7e11a02
Revises: h12a0e5e55e01
Create Date: 2026-12-01 22:40:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'h12b1a7e11a02'
down_revision = 'h12a0e5e55e01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invite_expires_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('invite_expires_at')
