"""Recording payments and keeping each invoice's amount paid and status.

The invoice's ``amount_paid`` and ``status`` change only here, in one UPDATE
statement per payment change: the database adds the amount and refuses an
overpayment in the same statement, so two payments recorded at once can never
overpay, and the status (part paid, paid, back to sent) follows from the new
amount rather than from anyone's choice."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from planman.extensions import db
from planman.models import Invoice, Payment, utcnow

ZERO = Decimal("0.00")
# Payment.amount is Numeric(12, 2).
MAX_PAYMENT = Decimal("9999999999.99")


class PaymentRefused(Exception):
    """A payment that cannot be recorded; the message is for the amount field."""


def _paid_status(paid):
    """The invoice status once ``paid`` is its amount paid (an SQL expression)."""
    total = sa.func.coalesce(Invoice.total, 0)
    return sa.case(
        (Invoice.status == "void", "void"),
        (sa.and_(total > 0, paid >= total), "paid"),
        (paid > 0, "part_paid"),
        # Every payment reversed: an invoice someone paid had been sent.
        (Invoice.status.in_(("paid", "part_paid")), "sent"),
        else_=Invoice.status,
    )


def _move_amount_paid(invoice_id: int, delta: Decimal, *, refuse_overpayment: bool) -> bool:
    """Add ``delta`` to the invoice's amount paid and set its status from the
    result; False (nothing changed) when that would overpay or the invoice is void."""
    paid = Invoice.amount_paid + delta
    stmt = sa.update(Invoice).where(Invoice.id == invoice_id)
    if refuse_overpayment:
        stmt = stmt.where(paid <= sa.func.coalesce(Invoice.total, 0), Invoice.status != "void")
    result = db.session.execute(stmt.values(amount_paid=paid, status=_paid_status(paid))
                                .execution_options(synchronize_session=False))
    _expire_invoice(invoice_id)
    return result.rowcount == 1


def _expire_invoice(invoice_id: int) -> None:
    invoice = db.session.identity_map.get(sa.inspect(Invoice).identity_key_from_primary_key((invoice_id,)))
    if invoice is not None:
        db.session.expire(invoice, ["amount_paid", "status"])


def sync_status(invoice: Invoice) -> None:
    """Set the status from the amount paid again (after an edit changed the total
    or the chosen status)."""
    _move_amount_paid(invoice.id, ZERO, refuse_overpayment=False)


def due_message(invoice: Invoice) -> str:
    if invoice.status == "void":
        return "This invoice is void, so it takes no payments."
    due = invoice.amount_due
    if due <= 0:
        return "Nothing is due on this invoice."
    return f"The amount due is {due:,.2f} {invoice.currency}: a payment cannot be more."


def record_manual_payment(invoice: Invoice, *, amount: Decimal, paid_on: date, method: str, reference: str,
                          note: str, user_id: int) -> Payment:
    """A payment a user received outside PlanMan (a bank transfer, a cheque).
    Refused (PaymentRefused) if it is more than the amount due. Commits."""
    payment = Payment(firm_id=invoice.firm_id, invoice_id=invoice.id, amount=amount, currency=invoice.currency,
                      paid_on=paid_on, method=method, state="succeeded", reference=reference, note=note,
                      recorded_by_id=user_id)
    db.session.add(payment)
    db.session.flush()
    if not _move_amount_paid(invoice.id, amount, refuse_overpayment=True):
        db.session.rollback()
        raise PaymentRefused(due_message(invoice))
    _after_change(payment)
    return payment


class CannotReverse(Exception):
    pass


def reverse_payment(payment: Payment, *, user_id: int) -> None:
    """Take back a payment a user recorded (recorded in error, or it bounced):
    it stays on the record as "reversed", with who and when. Commits."""
    if payment.provider:
        raise CannotReverse("This payment was taken online: refund it with the provider that took it.")
    changed = db.session.execute(
        sa.update(Payment).where(Payment.id == payment.id, Payment.state == "succeeded")
        .values(state="reversed", reversed_at=utcnow(), reversed_by_id=user_id)
        .execution_options(synchronize_session=False)).rowcount
    if not changed:  # reversed already (a second click, another tab)
        db.session.rollback()
        raise CannotReverse("This payment has already been reversed.")
    _move_amount_paid(payment.invoice_id, -payment.amount, refuse_overpayment=False)
    db.session.expire(payment)
    _after_change(payment)


def record_provider_payment(invoice: Invoice, *, provider: str, provider_payment_id: str, amount: Decimal,
                            method: str, state: str, paid_on: Optional[date] = None,
                            reference: str = "", note: Optional[str] = None) -> Payment:
    """A payment a provider reports (by webhook), recorded once per provider
    payment id however often it is reported, then moved to ``state``, with
    ``note`` (why it failed, say) when given in the same commit. Money a
    provider has taken is recorded even if it overpays: it was received. Commits."""
    payment = db.session.scalar(sa.select(Payment).where(
        Payment.provider == provider, Payment.provider_payment_id == provider_payment_id))
    created = payment is None
    if payment is None:
        payment = Payment(firm_id=invoice.firm_id, invoice_id=invoice.id, amount=amount, currency=invoice.currency,
                          paid_on=paid_on or date.today(), method=method, state="pending", reference=reference,
                          provider=provider, provider_payment_id=provider_payment_id)
        db.session.add(payment)
        try:
            with db.session.begin_nested():
                db.session.flush()
        except sa.exc.IntegrityError:  # reported twice at once: the other report recorded it
            created = False
            payment = db.session.scalar(sa.select(Payment).where(
                Payment.provider == provider, Payment.provider_payment_id == provider_payment_id))
    if note is not None and payment.note != note:
        payment.note = note
    if created and state == payment.state:
        _after_change(payment)  # new and pending: money on its way is a change too (open payment pages)
    else:
        set_payment_state(payment, state)
    return payment


def set_payment_state(payment: Payment, state: str) -> None:
    """Move a payment to ``state``; only "succeeded" counts towards the amount
    paid. The state changes by compare-and-set, so a report handled twice at
    once moves the money once. Commits the caller's other changes (a Direct
    Debit collection's status, a note) in the same transaction as the payment's
    and its invoice's; inside ``in_one_commit`` the block's end commits."""
    while True:
        old = payment.state
        if old == state:
            if _held.get() is None:
                db.session.commit()
            return
        changed = db.session.execute(
            sa.update(Payment).where(Payment.id == payment.id, Payment.state == old).values(state=state)
            .execution_options(synchronize_session=False)).rowcount
        if changed:
            break
        # Another worker moved it after this one read it: move on from what it is now. Never a
        # rollback here: that would drop the caller's changes and commit the payment's without them.
        db.session.refresh(payment, ["state"])
    delta = payment.amount if state == "succeeded" else (-payment.amount if old == "succeeded" else ZERO)
    if delta:
        _move_amount_paid(payment.invoice_id, delta, refuse_overpayment=False)
    db.session.expire(payment)
    _after_change(payment)


# Inside ``in_one_commit``: the payments changed, to follow up once it commits.
# Each as (payment id, invoice id, whether a ledger follows it), read before the commit expires the rows.
_held: ContextVar[Optional[list[tuple[int, int, bool]]]] = ContextVar("payment_changes_held", default=None)


@contextmanager
def in_one_commit():
    """Payments recorded or moved inside commit together when it ends, with
    whatever else the caller changed: an invoice that several payments settle
    at once never reads part paid on the way. Their ledgers are told after the
    commit. Nothing is committed if the block raises."""
    held: list[tuple[int, int, bool]] = []
    token = _held.set(held)
    try:
        yield
        db.session.commit()
    finally:
        _held.reset(token)
    _follow_up(held)


def _after_change(payment: Payment) -> None:
    """Commit, then have the connected ledgers follow and close the invoice's
    payment pages it no longer needs (after the commit, so the jobs find the rows)."""
    from planman.payments import ledger

    change = (payment.id, payment.invoice_id, bool(ledger.queue_for(payment)))
    held = _held.get()
    if held is None:
        db.session.commit()
        _follow_up([change])
    else:
        held.append(change)  # followed up once the block commits


def _follow_up(changes: list[tuple[int, int, bool]]) -> None:
    from planman.payments import ledger, pages

    for payment_id in dict.fromkeys(payment_id for payment_id, _, ledger_follows in changes if ledger_follows):
        ledger.enqueue(payment_id)
    for invoice_id in dict.fromkeys(invoice_id for _, invoice_id, _ in changes):
        pages.close_unneeded_soon(invoice_id)


@cache
def _payments_of_invoice() -> sa.Select:
    # Built once: the invoice page runs it on every visit, and building it costs as much as running it.
    return (sa.select(Payment).where(Payment.firm_id == sa.bindparam("firm_id"),
                                     Payment.invoice_id == sa.bindparam("invoice_id"))
            .options(so.joinedload(Payment.recorded_by), so.joinedload(Payment.reversed_by),
                     so.joinedload(Payment.ledger_links))
            .order_by(Payment.paid_on, Payment.id))


def invoice_payments(invoice: Invoice) -> list[Payment]:
    """The invoice's payments, oldest first, with who recorded or reversed them
    and their ledger links (the invoice page shows all of it)."""
    return list(db.session.scalars(_payments_of_invoice(), {"firm_id": invoice.firm_id, "invoice_id": invoice.id})
                .unique())
