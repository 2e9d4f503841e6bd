"""invoice.total: each invoice's total, stored for the lists

Lists showed totals worked out from every line of every row on each visit;
planman.invoices.totals now keeps them stored. Existing invoices get theirs
here, with the same arithmetic (planman.money, which depends on nothing else
in the app). The tables are described as they are at this revision, so later
changes to the models cannot change what this migration does.

Revision ID: 5b7e2f0c91d4
Revises: adcff485fe8b
Create Date: 2026-11-25 01:40:00

"""
from decimal import Decimal

from alembic import op
import sqlalchemy as sa

from planman.money import LineInput, compute_totals


# revision identifiers, used by Alembic.
revision = '5b7e2f0c91d4'
down_revision = 'adcff485fe8b'
branch_labels = None
depends_on = None

CHUNK = 500

invoice = sa.table("invoice", sa.column("id", sa.Integer), sa.column("amounts_are", sa.String),
                   sa.column("total", sa.Numeric(24, 2)))
invoice_line = sa.table("invoice_line", sa.column("invoice_id", sa.Integer), sa.column("quantity", sa.Numeric(14, 4)),
                        sa.column("unit_price", sa.Numeric(14, 4)), sa.column("discount_percent", sa.Numeric(7, 4)),
                        sa.column("tax_rate_id", sa.Integer))
tax_rate = sa.table("tax_rate", sa.column("id", sa.Integer), sa.column("percent", sa.Numeric(7, 4)))


def upgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('total', sa.Numeric(precision=24, scale=2), nullable=True))

    connection = op.get_bind()
    ids = connection.execute(sa.select(invoice.c.id).order_by(invoice.c.id)).scalars().all()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        amounts_are = dict(connection.execute(
            sa.select(invoice.c.id, invoice.c.amounts_are).where(invoice.c.id.in_(chunk))).all())
        lines = {invoice_id: [] for invoice_id in chunk}
        for invoice_id, quantity, unit_price, discount, percent in connection.execute(
                sa.select(invoice_line.c.invoice_id, invoice_line.c.quantity, invoice_line.c.unit_price,
                          invoice_line.c.discount_percent, tax_rate.c.percent)
                .select_from(invoice_line.outerjoin(tax_rate, tax_rate.c.id == invoice_line.c.tax_rate_id))
                .where(invoice_line.c.invoice_id.in_(chunk))):
            lines[invoice_id].append(LineInput(quantity=quantity, unit_price=unit_price,
                                               discount_percent=discount or Decimal("0"), tax_percent=percent))
        connection.execute(
            invoice.update().where(invoice.c.id == sa.bindparam("invoice_id")).values(total=sa.bindparam("new_total")),
            [{"invoice_id": i, "new_total": compute_totals(lines[i], amounts_are[i]).total} for i in chunk],
        )


def downgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_column('total')
