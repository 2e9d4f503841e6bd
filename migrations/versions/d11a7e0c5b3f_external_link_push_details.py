"""external_link: the provider's id of each invoice line, and what a link changed

line_ids: updates sent every line without Xero's LineItemID, so Xero replaced
all lines and dropped what a bookkeeper had added to them (tracking, item codes).
changed_fields: which fields linking changed on a contact PlanMan did not
create, shown in the panel.
remote_total: the total Xero worked out at the last push, so the panel can say
when it differs from PlanMan's.

Revision ID: d11a7e0c5b3f
Revises: h12c2c11e7a03
Create Date: 2026-12-01 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd11a7e0c5b3f'
down_revision = 'h12c2c11e7a03'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('external_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('changed_fields', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('remote_total', sa.Numeric(precision=24, scale=2), nullable=True))


def downgrade():
    with op.batch_alter_table('external_link', schema=None) as batch_op:
        batch_op.drop_column('remote_total')
        batch_op.drop_column('changed_fields')
        batch_op.drop_column('line_ids')
