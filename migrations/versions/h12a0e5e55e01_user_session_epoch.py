"""user.session_epoch: logging out, a new password, removal or demotion ends
the user's other sessions

Revision ID: h12a0e5e55e01
Revises: 5b7e2f0c91d4
Create Date: 2026-12-01 22:30:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'h12a0e5e55e01'
down_revision = '5b7e2f0c91d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
