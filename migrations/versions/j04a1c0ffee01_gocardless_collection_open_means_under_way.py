"""A GoCardless collection is open only while it is under way: a paid one no
longer stops the invoice's remainder from being collected

Revision ID: j04a1c0ffee01
Revises: i17a0e1b2c3d4
Create Date: 2026-12-04 22:00:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'j04a1c0ffee01'
down_revision = 'i17a0e1b2c3d4'
branch_labels = None
depends_on = None

UNDER_WAY = sa.text("status IN ('creating', 'pending_customer_approval', 'pending_submission', 'submitted')")
NOT_ENDED = sa.text("status NOT IN ('failed', 'cancelled', 'customer_approval_denied', 'charged_back')")


def _replace(old, new):
    with op.batch_alter_table('gocardless_collection', schema=None) as batch_op:
        batch_op.drop_index('uq_gocardless_collection_open', sqlite_where=old, postgresql_where=old)
        batch_op.create_index('uq_gocardless_collection_open', ['invoice_id'], unique=True,
                              sqlite_where=new, postgresql_where=new)


def upgrade():
    _replace(NOT_ENDED, UNDER_WAY)  # looser: what the old index allowed, the new one does too


def downgrade():
    _replace(UNDER_WAY, NOT_ENDED)
