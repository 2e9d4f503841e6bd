"""Payment pages a provider holds open for an invoice (a card checkout).

Such a page takes the amount it was opened for from whoever holds it, until it
expires (an hour after the payment page was shown) or PlanMan closes it. So
every page ``start_payment`` names is remembered, and once the invoice needs
less than a page asks for (paid, paid in part by other means, voided, back to
draft, its total lowered) a job closes the page at the provider: a client who
left a card page open in another tab cannot pay the invoice twice. Closing is
retried while the page could still be paid; a page that cannot be closed is
logged, and still expires by itself."""
from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations.errors import IntegrationError, TemporaryFailure
from planman.models import Invoice, OpenPaymentPage, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY_DELAY = 60  # seconds between tries while a provider cannot be reached
PAYABLE = ("sent", "part_paid")


def remember(invoice: Invoice, connection, started) -> None:
    """Keep the page a ``PaymentStart`` names (once: a resubmitted form gets the same page). Commits.

    The invoice may have changed while the provider opened the page (paid another
    way, voided): that change found no page to close, so it is looked at again."""
    if not started.page_reference:
        return
    expires_at = datetime.fromtimestamp(started.page_expires_at, timezone.utc).replace(tzinfo=None) \
        if started.page_expires_at else utcnow() + timedelta(days=1)
    page = OpenPaymentPage(firm_id=invoice.firm_id, invoice_id=invoice.id, provider=connection.provider,
                           tenant_id=connection.tenant_id, reference=started.page_reference,
                           amount=started.page_amount or Decimal("0"), currency=invoice.currency,
                           expires_at=expires_at)
    try:
        with db.session.begin_nested():
            db.session.add(page)
    except sa.exc.IntegrityError:
        pass  # the same page, remembered by the first submission
    db.session.commit()
    db.session.refresh(invoice)
    if not _still_needed(page, invoice, left_to_pay(invoice)):
        close_unneeded_soon(invoice.id)


def _still_open(invoice_id: int):
    return (sa.select(OpenPaymentPage).where(OpenPaymentPage.invoice_id == invoice_id,
                                             OpenPaymentPage.closed_at.is_(None),
                                             OpenPaymentPage.expires_at > utcnow())
            .order_by(OpenPaymentPage.id))


def close_unneeded_soon(invoice_id: int, delay: float = 0) -> bool:
    """After a change to the invoice or its payments is committed: queue the
    closing of its open pages, if it has any (the job decides which). False when
    none was queued (none open, or Redis could not take it: ``sweep`` catches up)."""
    if db.session.scalar(_still_open(invoice_id).with_only_columns(OpenPaymentPage.id).limit(1)) is None:
        return False
    return jobs.enqueue("close_payment_pages", invoice_id,
                        job_id=f"payment-pages-{invoice_id}-{uuid.uuid4().hex[:12]}", delay=delay)


def left_to_pay(invoice: Invoice) -> Decimal:
    """What the invoice still needs from a new payment: the amount due less what is on its
    way (pending payments, collections under way); nothing unless it is sent and unsettled."""
    from planman.payments.public import offers

    if invoice.status not in PAYABLE:
        return Decimal("0")
    _, on_its_way = offers(invoice)
    return invoice.amount_due - on_its_way


def _still_needed(page: OpenPaymentPage, invoice: Invoice, left: Decimal) -> bool:
    """A page asking for no more than is left, in the invoice's currency (one changed
    since would take the amount in the old currency)."""
    return page.currency == invoice.currency and page.amount <= left


def close_unneeded(invoice_id: int) -> str:
    """The job: close each open page of the invoice that asks for more than it still needs."""
    from planman.integrations.links import connection_for

    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        return "no such invoice"
    left = left_to_pay(invoice)
    outcomes, retry = [], False
    for page in db.session.scalars(_still_open(invoice_id)).all():
        if _still_needed(page, invoice, left):
            outcomes.append(f"{page.reference}: still needed")
            continue
        try:
            _close(page, connection_for(invoice.firm_id, page.provider))
        except TemporaryFailure as error:
            page.attempts += 1
            retry = retry or page.attempts < MAX_ATTEMPTS
            log.warning("payment page %s of invoice %s not closed (try %s): %s", page.reference, invoice_id,
                        page.attempts, error.detail or error)
            outcomes.append(f"{page.reference}: not closed yet")
        except IntegrationError as error:
            # Nothing more PlanMan can do: it expires by itself at expires_at.
            page.attempts += 1
            log.error("payment page %s of invoice %s cannot be closed (%s); it expires at %s", page.reference,
                      invoice_id, error.detail or error, page.expires_at)
            outcomes.append(f"{page.reference}: cannot be closed")
        else:
            outcomes.append(f"{page.reference}: closed")
        db.session.commit()
    if retry:
        close_unneeded_soon(invoice_id, delay=RETRY_DELAY)
    return ", ".join(outcomes) or "nothing open"


def _close(page: OpenPaymentPage, connection) -> None:
    """Close one page at its provider, on the account it was opened on; marked
    closed (caller commits). Raises TemporaryFailure or IntegrationError."""
    from planman.integrations import registry

    provider = registry.get_provider(page.provider)
    if provider is None or connection is None or not connection.is_usable or connection.tenant_id != page.tenant_id:
        raise IntegrationError("no longer connected to the account the page was opened on")
    provider.close_payment_page(connection, page.reference, page.tenant_id)
    page.closed_at = utcnow()


def close_all_before_disconnect(connection) -> list[str]:
    """Disconnecting ends PlanMan's access to the account, so its open pages could
    no longer be closed, and what they took would reach PlanMan only on a reconnect:
    close them now, once each, in the caller's transaction. A provider out of reach
    is not asked again for the next page (the admin is waiting). Problems worth
    showing (none when all closed)."""
    pages = db.session.scalars(sa.select(OpenPaymentPage).where(
        OpenPaymentPage.firm_id == connection.firm_id, OpenPaymentPage.provider == connection.provider,
        OpenPaymentPage.tenant_id == connection.tenant_id, OpenPaymentPage.closed_at.is_(None),
        OpenPaymentPage.expires_at > utcnow()).order_by(OpenPaymentPage.id)).all()
    left_open, out_of_reach = [], False
    for page in pages:
        if out_of_reach:
            left_open.append(page)
            continue
        try:
            _close(page, connection)
        except IntegrationError as error:
            page.attempts += 1
            out_of_reach = isinstance(error, TemporaryFailure)
            log.warning("payment page %s not closed before disconnecting: %s", page.reference, error.detail or error)
            left_open.append(page)
    if not left_open:
        return []
    minutes = max(1, math.ceil((max(page.expires_at for page in left_open) - utcnow()).total_seconds() / 60))
    if len(left_open) == 1:
        what = "A payment page a client opened could not be closed: it can still be paid"
    else:
        what = f"{len(left_open)} payment pages clients opened could not be closed: they can still be paid"
    return [f"{what} for up to {minutes} minutes, and a payment made there is applied when you connect "
            "this account again."]


def sweep() -> int:
    """Queue the closing for every invoice with an open page it no longer needs; the
    number queued. For a closing that could not be queued (Redis down) when the
    invoice changed: ``flask close-payment-pages`` from cron."""
    invoice_ids = db.session.scalars(sa.select(OpenPaymentPage.invoice_id).where(
        OpenPaymentPage.closed_at.is_(None), OpenPaymentPage.expires_at > utcnow(),
        OpenPaymentPage.attempts < MAX_ATTEMPTS).distinct()).all()
    queued = 0
    for invoice_id in sorted(invoice_ids):
        invoice = db.session.get(Invoice, invoice_id)
        left = left_to_pay(invoice)
        if not all(_still_needed(page, invoice, left) for page in db.session.scalars(_still_open(invoice_id))):
            queued += close_unneeded_soon(invoice_id)
    return queued


def register_cli(app) -> None:
    import click

    @app.cli.command("close-payment-pages")
    def close_pages_command():
        """Queue the closing of payment pages invoices no longer need, for any whose
        closing could not be queued when the invoice changed (cron, e.g. every 5 minutes)."""
        click.echo(f"{sweep()} invoice(s) queued to close payment pages.")
