"""What Xero holds now, applied to PlanMan: an invoice's status and the
payments a bookkeeper recorded in Xero, a contact's status and name.

Used by the webhook worker (one record an event named) and by the catch-up
job (every record changed since the last one, for when webhooks are missing).
Everything here is idempotent and order-proof: a record read back older than
what was applied already (``UpdatedDateUTC``) changes nothing.

Payments: a payment on the Xero invoice becomes a PlanMan payment "from Xero"
(source: Xero's PaymentID, unique, so never twice), unless PlanMan put it there
itself (its PaymentLedgerLink holds that PaymentID, or it carries the reference
PlanMan gave one of the invoice's own payments). A payment from Xero that is no
longer on the invoice was removed there, and is reversed here."""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Optional

import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.xero import mapping
from planman.models import ExternalLink, Invoice, Payment, PaymentLedgerLink, utcnow
from planman.payments import services

log = logging.getLogger(__name__)

PROVIDER = "xero"
REMOVED_NOTE = "Removed in Xero."
# Xero's clocks and ours differ; a catch-up asks from a little before the last one's start.
CLOCK_MARGIN = timedelta(minutes=5)
# The first catch-up of a connection looks back this far.
FIRST_LOOK_BACK = timedelta(days=2)
PAGE_SIZE = 100  # Xero's page
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def xero_time(value) -> Optional[datetime]:
    """Xero's /Date(ms+0000)/ or an ISO time, as naive UTC."""
    if not isinstance(value, str) or not value:
        return None
    match = _MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc).replace(tzinfo=None)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def xero_date(value) -> Optional[date]:
    moment = xero_time(value)
    return moment.date() if moment else None


def link_for(connection, record_type: str, external_id: str) -> Optional[ExternalLink]:
    return db.session.scalar(sa.select(ExternalLink).where(
        ExternalLink.firm_id == connection.firm_id, ExternalLink.provider == PROVIDER,
        ExternalLink.tenant_id == connection.tenant_id, ExternalLink.record_type == record_type,
        sa.func.lower(ExternalLink.external_id) == (external_id or "").lower()))


def _is_newer(link: ExternalLink, updated: Optional[datetime]) -> bool:
    """False when what was read is older than what was applied already."""
    return updated is None or link.remote_updated_at is None or updated >= link.remote_updated_at


def apply_invoice(connection, doc: dict) -> str:
    """Apply one Xero invoice (as GET /Invoices answers it) to its PlanMan invoice. Commits."""
    link = link_for(connection, "invoice", doc.get("InvoiceID", ""))
    if link is None:
        return "not PlanMan's"
    updated = xero_time(doc.get("UpdatedDateUTC"))
    if not _is_newer(link, updated):
        return "older than what PlanMan has"
    status = doc.get("Status") or ""
    if status:
        link.remote_status = status
    link.remote_updated_at = updated or link.remote_updated_at
    link.status_checked_at = utcnow()
    invoice = db.session.get(Invoice, link.record_id)
    # Xero's status and every payment it brings commit together, so no page says
    # "Paid in Xero" beside an invoice not (or part) paid here.
    with services.in_one_commit():
        if invoice is not None and invoice.firm_id == connection.firm_id:
            _apply_payments(connection, link, invoice, doc.get("Payments") or [])
    return status


def _ours(connection, invoice: Invoice) -> tuple[set[str], set[str]]:
    """The Xero PaymentIDs PlanMan recorded on this invoice, and the references it used."""
    recorded = set(db.session.scalars(
        sa.select(sa.func.lower(PaymentLedgerLink.external_id)).join(Payment, Payment.id == PaymentLedgerLink.payment_id)
        .where(Payment.invoice_id == invoice.id, PaymentLedgerLink.provider == PROVIDER,
               PaymentLedgerLink.tenant_id == connection.tenant_id, PaymentLedgerLink.external_id.is_not(None))))
    references = {mapping.payment_reference(p) for p in db.session.scalars(
        sa.select(Payment).where(Payment.invoice_id == invoice.id,
                                 sa.or_(Payment.provider.is_(None), Payment.provider != PROVIDER)))}
    return recorded, references


def _apply_payments(connection, link: ExternalLink, invoice: Invoice, xero_payments: list[dict]) -> None:
    recorded, references = _ours(connection, invoice)
    on_invoice = set()
    for found in xero_payments:
        payment_id = str(found.get("PaymentID") or "").lower()
        if not payment_id:
            continue
        on_invoice.add(payment_id)
        if payment_id in recorded or (found.get("Reference") or "") in references:
            continue  # PlanMan recorded this one in Xero: it is already here
        try:
            amount = Decimal(str(found.get("Amount"))).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            log.warning("xero payment %s has no readable amount: skipped", payment_id)
            continue
        if amount <= 0:
            continue
        services.record_provider_payment(
            invoice, provider=PROVIDER, provider_payment_id=payment_id, amount=amount, method="other",
            state="succeeded", paid_on=xero_date(found.get("Date")) or date.today(),
            reference=(found.get("Reference") or "")[:255])
    # Xero lists only live payments on an invoice: one of ours from Xero not there was removed.
    for payment in db.session.scalars(sa.select(Payment).where(
            Payment.invoice_id == invoice.id, Payment.provider == PROVIDER, Payment.state == "succeeded")).all():
        if payment.provider_payment_id not in on_invoice:
            payment.note = REMOVED_NOTE
            payment.reversed_at = utcnow()
            services.set_payment_state(payment, "reversed")


def apply_contact(connection, doc: dict) -> str:
    """Apply one Xero contact (archived, renamed) to its client's link. Commits."""
    link = link_for(connection, "client", doc.get("ContactID", ""))
    if link is None:
        return "not PlanMan's"
    updated = xero_time(doc.get("UpdatedDateUTC"))
    if not _is_newer(link, updated):
        return "older than what PlanMan has"
    link.remote_status = doc.get("ContactStatus") or link.remote_status
    link.remote_name = (doc.get("Name") or "")[:255]
    link.remote_updated_at = updated or link.remote_updated_at
    link.status_checked_at = utcnow()
    db.session.commit()
    return link.remote_status


def catch_up(api, connection) -> str:
    """Read back every invoice and contact changed in Xero since the last catch-up,
    page by page (100 a page, through the per-organisation throttle); move the
    watermark only once everything up to this run's start has been applied."""
    started = utcnow()
    since = (connection.caught_up_to or connection.connected_at or started) - CLOCK_MARGIN
    if connection.caught_up_to is None:
        since = min(since, started - FIRST_LOOK_BACK)
    counts = {}
    for collection, params, apply in (("Invoices", {}, apply_invoice),
                                      ("Contacts", {"includeArchived": "true"}, apply_contact)):
        seen, page = 0, 1
        while True:
            records = api.modified_since(collection, since, page, **params)
            for record in records:
                apply(connection, record)
            seen += len(records)
            if len(records) < PAGE_SIZE:
                break
            page += 1
        counts[collection] = seen
    connection.caught_up_to = started
    db.session.commit()
    return f"read back {counts['Invoices']} invoice(s) and {counts['Contacts']} contact(s) changed since {since:%Y-%m-%d %H:%M} UTC"
