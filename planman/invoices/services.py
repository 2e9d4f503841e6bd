"""Invoice numbering, queries and saving; the views stay thin."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import cache

import sqlalchemy as sa
import sqlalchemy.orm as so

from planman.extensions import db
from planman.money import LineInput, Totals, compute_totals
from planman.models import Client, Firm, Invoice, InvoiceLine, TaxRate
from planman.tenancy import firm_params, firm_scoped, firm_select

NUMBER_FORMAT = "INV-{:04d}"


def format_number(sequence: int) -> str:
    return NUMBER_FORMAT.format(sequence)


def number_taken(firm_id: int, number: str, exclude_id: int | None = None) -> bool:
    stmt = sa.select(Invoice.id).where(Invoice.firm_id == firm_id, Invoice.number == number)
    if exclude_id is not None:
        stmt = stmt.where(Invoice.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None


def suggest_number(firm: Firm) -> str:
    """The number the next invoice will probably get (shown in the form, not reserved)."""
    sequence = firm.next_invoice_number
    while number_taken(firm.id, format_number(sequence)):
        sequence += 1
    return format_number(sequence)


def allocate_number(firm_id: int) -> str:
    """Take the next free number from the firm's sequence.

    ``UPDATE ... RETURNING`` increments and reads in one statement: PostgreSQL
    row-locks the firm until commit and SQLite takes its write lock, so two
    concurrent invoices never receive the same number. Numbers someone typed by
    hand are skipped."""
    while True:
        sequence = db.session.execute(
            sa.update(Firm)
            .where(Firm.id == firm_id)
            .values(next_invoice_number=Firm.next_invoice_number + 1)
            .returning(Firm.next_invoice_number)
            .execution_options(synchronize_session=False)
        ).scalar_one() - 1
        number = format_number(sequence)
        if not number_taken(firm_id, number):
            return number


def default_due_date(issue_date, client: Client | None):
    return issue_date + timedelta(days=client.payment_terms_days if client else 0)


def firm_tax_rates() -> list[TaxRate]:
    return list(db.session.scalars(firm_select(TaxRate).order_by(TaxRate.percent.desc(), TaxRate.name)))


def firm_clients() -> list[Client]:
    return list(db.session.scalars(firm_select(Client).order_by(sa.func.lower(Client.name), Client.id)))


def _list_rows() -> sa.Select:
    """What an invoice list shows of each invoice, as plain rows (cheaper than
    objects, and a list only reads them); the total is the stored one
    (planman.invoices.totals)."""
    # The client's name as a subquery, not a join: looked up for the page's rows
    # only, and counting the list (planman.pagination) need not join at all.
    client_name = sa.select(Client.name).where(Client.id == Invoice.client_id).scalar_subquery()
    return (
        firm_scoped(Invoice)
        .with_only_columns(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.due_date, Invoice.status,
                           Invoice.currency, Invoice.total, client_name.label("client_name"))
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc())
    )


@cache
def invoice_with_lines() -> sa.Select:
    """One invoice by ``:record_id`` with its client, lines and their tax rates
    and its payment link (everything its page shows of it) in one query: an
    invoice has a handful of lines, and a query per relation cost more than
    the rest of the page."""
    return firm_scoped(Invoice).where(Invoice.id == sa.bindparam("record_id")).options(
        so.joinedload(Invoice.client), so.joinedload(Invoice.lines).joinedload(InvoiceLine.tax_rate),
        so.joinedload(Invoice.payment_link))


@cache
def list_select(status: str | None) -> sa.Select:
    """The firm's invoices (those with ``status``, if given), newest first, as
    list rows (see ``_list_rows``); built once per status, run with ``firm_params()``."""
    stmt = _list_rows()
    return stmt.where(Invoice.status == status) if status else stmt


def recent_invoices_for(client: Client, limit: int = 50) -> list[sa.Row]:
    """The client's latest invoices, as list rows (see ``_list_rows``)."""
    return list(db.session.execute(_list_rows().where(Invoice.client_id == client.id).limit(limit), firm_params()))


def preview_totals(lines: list[tuple[Decimal | None, Decimal | None, Decimal | None, TaxRate | None]], amounts_are: str):
    """Totals for a form being typed: lines that are not yet numbers count as zero
    and show no amount. Same arithmetic as a saved invoice."""
    inputs = []
    for quantity, unit_price, discount, rate in lines:
        complete = quantity is not None and unit_price is not None
        inputs.append(
            LineInput(
                quantity=quantity if complete else Decimal("0"),
                unit_price=unit_price if complete else Decimal("0"),
                discount_percent=discount if discount is not None and 0 <= discount <= 100 else Decimal("0"),
                tax_percent=rate.percent if rate else None,
            )
        )
    totals: Totals = compute_totals(inputs, amounts_are)
    return totals


def apply_invoice_fields(invoice: Invoice, form, client: Client) -> None:
    invoice.client_id = client.id
    invoice.issue_date = form.issue_date.data
    invoice.due_date = form.due_date.data or default_due_date(form.issue_date.data, client)
    invoice.currency = form.currency.data
    invoice.reference = form.reference.data or ""
    invoice.amounts_are = form.amounts_are.data
    invoice.status = form.status.data


def apply_lines(invoice: Invoice, entries, existing: dict[int, InvoiceLine]) -> None:
    """Replace the invoice's lines with the form's, keeping the ids of lines that
    stay (``existing`` maps this invoice's line ids, already checked by the view)."""
    lines = []
    for position, entry in enumerate(entries):
        entry = entry.form  # a FieldList entry's own .description is its label text
        line_id = entry.line_id.data
        line = existing.get(int(line_id)) if line_id else None
        if line is None:
            line = InvoiceLine()
        line.position = position
        line.description = entry.description.data
        line.quantity = entry.quantity.data
        line.unit_price = entry.unit_price.data
        line.discount_percent = entry.discount_percent.data or Decimal("0")
        line.tax_rate_id = entry.tax_rate_id.data
        lines.append(line)
    invoice.lines = lines
