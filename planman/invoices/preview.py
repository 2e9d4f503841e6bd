"""Live totals of an invoice form while it is being typed: the same arithmetic as
a saved invoice, tolerant of half-typed numbers."""
from __future__ import annotations

from decimal import Decimal

from planman.forms_common import parse_decimal
from planman.invoices.forms import InvoiceForm
from planman.invoices.services import preview_totals
from planman.models import AMOUNT_TYPES


def line_index(entry) -> int:
    """The row index in a FieldList entry's name (lines-<index>)."""
    return int(entry.name.rsplit("-", 1)[1])


def form_preview(form: InvoiceForm, tax_rates, removed: int | None = None) -> dict:
    """Totals of the form as typed (same arithmetic as a saved invoice), plus each
    line's amount by row index; rows that are not numbers yet show no amount."""
    rates = {rate.id: rate for rate in tax_rates}
    amounts_are = form.amounts_are.data if form.amounts_are.data in AMOUNT_TYPES else "exclusive"
    rows = []
    for entry in form.lines:
        index = line_index(entry)
        if index == removed:
            continue
        quantity, price, discount = (
            _typed_decimal(field) for field in (entry.quantity, entry.unit_price, entry.discount_percent)
        )
        rows.append((index, (quantity, price, discount, rates.get(entry.tax_rate_id.data)), None not in (quantity, price)))
    result = preview_totals([row[1] for row in rows], amounts_are)
    return {
        "totals": result,
        "line_amounts": [(index, amounts if complete else None) for (index, _, complete), amounts in zip(rows, result.lines)],
        "amounts_are": amounts_are,
        "currency": form.currency.data,
        "removed": removed,
    }


def _typed_decimal(field) -> Decimal | None:
    if field.raw_data:
        return parse_decimal(field.raw_data[0])
    return field.data if isinstance(field.data, Decimal) else None
