"""firm.time_zone: the zone every time is shown in

Firms that exist already get Europe/London (PlanMan's firms have been UK
firms so far); Setup > Firm changes it.

Revision ID: e13f1a7c2b90
Revises: 16a9pay0c0de
Create Date: 2026-12-01 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e13f1a7c2b90'
down_revision = '16a9pay0c0de'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('firm', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='Europe/London',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('firm', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
