"""Hosted payment pages PlanMan opened (card checkouts), so they can be closed
once the invoice no longer needs what they ask for

Revision ID: k05b0a1c0de01
Revises: j04a1c0ffee01
Create Date: 2026-12-05 15:03:52
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'k05b0a1c0de01'
down_revision = 'j04a1c0ffee01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('open_payment_page',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=30), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['firm_id'], ['firm.id'], name=op.f('fk_open_payment_page_firm_id_firm')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_open_payment_page_invoice_id_invoice')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_open_payment_page')),
    sa.UniqueConstraint('provider', 'reference', name='uq_open_payment_page_provider_reference')
    )
    with op.batch_alter_table('open_payment_page', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_open_payment_page_firm_id'), ['firm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_open_payment_page_invoice_id'), ['invoice_id'], unique=False)


def downgrade():
    with op.batch_alter_table('open_payment_page', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_open_payment_page_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_open_payment_page_firm_id'))

    op.drop_table('open_payment_page')
