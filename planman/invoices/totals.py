"""Each invoice's total, stored, so a list of invoices need not add up every
line of every row on each visit.

One ORM hook keeps it right: whenever a flush adds, changes or removes an
invoice or one of its lines, or changes a tax rate's percentage, the totals
of the invoices concerned are worked out again in the same transaction, from
what the database now holds, with the arithmetic of ``Invoice.totals``
(planman.money). Writes that bypass the ORM (``flask seed-bulk``) call
``store_totals`` themselves."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so

from planman.money import LineInput, compute_totals
from planman.models import Invoice, InvoiceLine, TaxRate

CHUNK = 500  # invoices per round trip: keeps the IN lists and the memory small

_AMOUNTS_ARE = sa.select(Invoice.id, Invoice.amounts_are).where(
    Invoice.id.in_(sa.bindparam("invoice_ids", expanding=True)))
_LINE_NUMBERS = (
    sa.select(InvoiceLine.invoice_id, InvoiceLine.quantity, InvoiceLine.unit_price,
              InvoiceLine.discount_percent, TaxRate.percent)
    .outerjoin(TaxRate, TaxRate.id == InvoiceLine.tax_rate_id)
    .where(InvoiceLine.invoice_id.in_(sa.bindparam("invoice_ids", expanding=True)))
)
_INVOICES_USING_RATES = sa.select(InvoiceLine.invoice_id).distinct().where(
    InvoiceLine.tax_rate_id.in_(sa.bindparam("rate_ids", expanding=True)))
_SET_TOTAL = sa.update(Invoice.__table__).where(Invoice.__table__.c.id == sa.bindparam("invoice_id")).values(
    total=sa.bindparam("new_total"),
    updated_at=Invoice.__table__.c.updated_at,  # working out a total is not an edit
)


def store_totals(connection: sa.Connection, invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    """Work out and store the total of each of these invoices (missing ids are
    skipped); returns them by id."""
    stored: dict[int, Decimal] = {}
    ids = sorted(set(invoice_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        amounts_are = dict(connection.execute(_AMOUNTS_ARE, {"invoice_ids": chunk}).all())
        lines: dict[int, list[LineInput]] = {invoice_id: [] for invoice_id in amounts_are}
        for invoice_id, quantity, unit_price, discount_percent, tax_percent in connection.execute(
                _LINE_NUMBERS, {"invoice_ids": list(amounts_are)}):
            lines[invoice_id].append(LineInput(quantity=quantity, unit_price=unit_price,
                                               discount_percent=discount_percent or Decimal("0"),
                                               tax_percent=tax_percent))
        totals = {invoice_id: compute_totals(invoice_lines, amounts_are[invoice_id]).total
                  for invoice_id, invoice_lines in lines.items()}
        if totals:
            connection.execute(_SET_TOTAL, [{"invoice_id": i, "new_total": total} for i, total in totals.items()])
        stored.update(totals)
    return stored


def _percent_changed(rate: TaxRate) -> bool:
    return sa.inspect(rate).attrs.percent.history.has_changes()


@sa.event.listens_for(so.Session, "after_flush")
def _keep_totals(session: so.Session, _flush_context) -> None:
    # After the flush the database holds the new numbers; the session's lists
    # (new, dirty, deleted) and attribute histories still say what changed.
    invoice_ids: set[int] = set()
    rate_ids: set[int] = set()
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, Invoice):  # includes lines added to or removed from it
            invoice_ids.add(instance.id)
        elif isinstance(instance, InvoiceLine) and instance.invoice_id is not None:
            invoice_ids.add(instance.invoice_id)
        elif isinstance(instance, TaxRate) and instance not in session.new and _percent_changed(instance):
            rate_ids.add(instance.id)
    if not invoice_ids and not rate_ids:
        return
    connection = session.connection()
    if rate_ids:
        invoice_ids.update(connection.execute(_INVOICES_USING_RATES, {"rate_ids": sorted(rate_ids)}).scalars())
    session.info.setdefault("stored_totals", {}).update(store_totals(connection, invoice_ids))


@sa.event.listens_for(so.Session, "after_flush_postexec")
def _show_stored_totals(session: so.Session, _flush_context) -> None:
    # Invoices loaded in this session see their new total too, without a reload.
    totals = session.info.pop("stored_totals", None)
    if totals:
        for instance in session.identity_map.values():
            if isinstance(instance, Invoice) and instance.id in totals:
                so.attributes.set_committed_value(instance, "total", totals[instance.id])
