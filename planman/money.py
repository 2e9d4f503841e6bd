"""Invoice arithmetic, done the way the ledgers do it (each provider's REFERENCE.md, on totals):
each line amount is rounded to 2 places, tax is computed and rounded per line,
and the invoice tax is the sum of the line taxes. Equal inputs give the ledger's totals."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Optional

CENT = Decimal("0.01")
HUNDRED = Decimal("100")


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal = Decimal("0")
    tax_percent: Optional[Decimal] = None  # None: no tax rate chosen


@dataclass(frozen=True)
class LineTotals:
    amount: Decimal  # as entered: includes tax when amounts are tax-inclusive
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    lines: tuple[LineTotals, ...]
    subtotal: Decimal  # excluding tax
    tax: Decimal
    total: Decimal


def line_totals(line: LineInput, amounts_are: str) -> LineTotals:
    discount = line.discount_percent or Decimal("0")
    amount = round_money(line.quantity * line.unit_price * (HUNDRED - discount) / HUNDRED)
    rate = line.tax_percent or Decimal("0")
    if amounts_are == "no_tax" or not rate:
        tax = Decimal("0.00")
    elif amounts_are == "inclusive":
        tax = round_money(amount * rate / (HUNDRED + rate))
    else:
        tax = round_money(amount * rate / HUNDRED)
    return LineTotals(amount=amount, tax=tax)


def compute_totals(lines: Iterable[LineInput], amounts_are: str) -> Totals:
    computed = tuple(line_totals(line, amounts_are) for line in lines)
    amounts = sum((line.amount for line in computed), Decimal("0.00"))
    tax = sum((line.tax for line in computed), Decimal("0.00"))
    if amounts_are == "inclusive":
        return Totals(computed, subtotal=amounts - tax, tax=tax, total=amounts)
    return Totals(computed, subtotal=amounts, tax=tax, total=amounts + tax)


def invoice_totals(invoice) -> Totals:
    """Totals of a saved ``Invoice`` (its lines and their tax rates)."""
    return compute_totals(
        (
            LineInput(
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount_percent=line.discount_percent or Decimal("0"),
                tax_percent=line.tax_rate.percent if line.tax_rate else None,
            )
            for line in invoice.lines
        ),
        invoice.amounts_are,
    )


def format_quantity(value: Decimal) -> str:
    """A quantity or unit price as lists show it: 2 decimal places, or up to 4
    when it has them (175 -> 175.00, 1.5 -> 1.50, 12.3456 -> 12.3456), with
    thousands separated as amounts are."""
    if not value.is_finite():
        return str(value)
    _, digits, exponent = value.normalize().as_tuple()
    places = min(max(-exponent, 2), 4)
    return f"{value:,.{places}f}"
