"""Mandates and collections: what PlanMan asks GoCardless for, and what it
makes of GoCardless's answers and events. No request handling here."""
from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Optional

import gocardless_pro
import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.errors import IntegrationError, NeedsReconnect, TemporaryFailure
from planman.integrations.gocardless import client, mapping
from planman.integrations.gocardless.models import GoCardlessCollection, GoCardlessMandate
from planman.integrations.tokens import mark_needs_reconnect
from planman.models import Client, Firm, Invoice
from planman.payments import pages
from planman.payments import services as payments

log = logging.getLogger(__name__)
PROVIDER = "gocardless"
# Errors worth asking again about, with the same Idempotency-Key.
TRANSIENT = (requests.Timeout, requests.ConnectionError, gocardless_pro.errors.MalformedResponseError,
             gocardless_pro.errors.GoCardlessInternalError, gocardless_pro.errors.RateLimitError)
NOT_ANSWERED = "GoCardless did not answer (or asked PlanMan to slow down). Try again: it will not collect twice."
RECONNECT = "GoCardless no longer accepts PlanMan's access to this account: reconnect it under Setup > Integrations."
# How far ahead of its due date automatic collection creates an invoice's payment,
# so the payment can be charged on the due date (Bacs needs a few working days).
AUTO_COLLECT_LEAD_DAYS = 10


class CollectRefused(IntegrationError):
    """Nothing can be collected as things stand; the message says why."""


# -- lookups ------------------------------------------------------------------------------

def mandate_for(client_row: Client) -> Optional[GoCardlessMandate]:
    return db.session.scalar(sa.select(GoCardlessMandate).where(
        GoCardlessMandate.firm_id == client_row.firm_id, GoCardlessMandate.client_id == client_row.id))


def collections_for(invoice: Invoice) -> list[GoCardlessCollection]:
    return list(db.session.scalars(sa.select(GoCardlessCollection).where(
        GoCardlessCollection.firm_id == invoice.firm_id, GoCardlessCollection.invoice_id == invoice.id)
        .order_by(GoCardlessCollection.id)))


def open_collection(invoice: Invoice) -> Optional[GoCardlessCollection]:
    """The invoice's collection still under way, if any (one at most)."""
    return next((c for c in reversed(collections_for(invoice)) if c.status in mapping.COLLECTING), None)


def can_collect(invoice: Invoice, mandate: Optional[GoCardlessMandate]) -> bool:
    return bool(mandate and mandate.mandate_id and mandate.status == "active" and invoice.status in ("sent", "part_paid")
                and invoice.amount_due > 0 and open_collection(invoice) is None)


# -- mandates -----------------------------------------------------------------------------

def ask_for_mandate(connection, client_row: Client, *, redirect_uri: str, exit_uri: str,
                    invoice: Optional[Invoice] = None) -> str:
    """The hosted flow's URL where the client sets up their Direct Debit: a new
    billing request each time (an earlier link keeps working until it expires;
    whichever the client completes is theirs, by the client id in its metadata)."""
    mandate = mandate_for(client_row)
    if mandate is None:
        # No status until GoCardless has the request: should it refuse, the
        # client's page must not say a Direct Debit was requested.
        mandate = GoCardlessMandate(firm_id=client_row.firm_id, client_id=client_row.id,
                                    organisation_id=connection.tenant_id, requests_made=0, status="")
        try:
            with db.session.begin_nested():
                db.session.add(mandate)
        except sa.exc.IntegrityError:  # a second click at the same moment made the client's row: use it
            mandate = mandate_for(client_row)
    mandate.requests_made = (mandate.requests_made or 0) + 1
    db.session.commit()  # the idempotency keys below name the mandate row and its request count
    key = f"planman-mandate-{mandate.id}-{mandate.requests_made}"
    currency = invoice.currency if invoice is not None else (db.session.get(Firm, client_row.firm_id).currency or "GBP")
    gc = client.api(connection)
    try:
        billing_request = gc.billing_requests.create(
            mapping.billing_request_params(client_id=client_row.id, currency=currency,
                                           invoice_id=invoice.id if invoice is not None else None,
                                           customer_id=mandate.customer_id or ""),
            headers={"Idempotency-Key": f"{key}-request"})
        flow = gc.billing_request_flows.create(
            mapping.flow_params(billing_request_id=billing_request.id, redirect_uri=redirect_uri,
                                exit_uri=exit_uri, client=client_row),
            headers={"Idempotency-Key": f"{key}-flow"})
    except TRANSIENT as error:
        raise TemporaryFailure("GoCardless did not answer. Try again in a moment.", detail=repr(error)) from None
    except (gocardless_pro.errors.AuthenticationError, gocardless_pro.errors.PermissionsError):
        _lost_access(connection)
    except gocardless_pro.errors.ApiError as error:
        raise IntegrationError(f"GoCardless refused: {error.message}", detail=str(error)) from None
    mandate.organisation_id = connection.tenant_id
    mandate.billing_request_id = billing_request.id
    mandate.flow_url = flow.authorisation_url or ""
    mandate.flow_expires_at = _parse_time(flow.expires_at) if flow.expires_at else None
    if mandate.status not in mapping.MANDATE_TAKES_PAYMENTS:
        mandate.status, mandate.status_detail = "requested", ""
    db.session.commit()
    return mandate.flow_url


def _lost_access(connection):
    """A 401/403: the firm revoked PlanMan in its dashboard. Every page says reconnect."""
    mark_needs_reconnect(connection, RECONNECT)
    raise NeedsReconnect(RECONNECT)


def _parse_time(value):
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def refresh_mandate(connection, mandate: GoCardlessMandate, *, details: Optional[dict] = None) -> None:
    """Read the mandate's status from GoCardless (its truth, whatever order
    events came in). ``details``, an event's, explain an ended mandate: they
    are written with its status, so no page shows "cancelled" without why."""
    found = client.api(connection).mandates.get(mandate.mandate_id).attributes
    mandate.status = found.get("status") or mandate.status
    mandate.next_possible_charge_date = mapping.parse_date(found.get("next_possible_charge_date")) \
        or mandate.next_possible_charge_date
    if details is not None and mandate.status in mapping.MANDATE_ENDED:
        mandate.status_detail = mapping.failure_reason(details)
    db.session.commit()


# -- collections --------------------------------------------------------------------------

def collect(connection, invoice: Invoice, *, user_id: Optional[int] = None, automatic: bool = False,
            charge_date: Optional[date] = None, amount: Optional[Decimal] = None) -> GoCardlessCollection:
    """Collect what the invoice has due (or ``amount`` of it: what is left once
    other payments on their way arrive) against its client's mandate, once.

    A collection whose create was not answered is asked again with its own
    Idempotency-Key (GoCardless answers 409 with the payment it made, which the
    SDK then fetches); one already on its way is returned as it is."""
    existing = open_collection(invoice)
    if existing is not None:
        if existing.status == "creating":
            _send(connection, existing, invoice)
        return existing
    mandate = mandate_for(invoice.client)
    if mandate is None or not mandate.mandate_id or mandate.status not in mapping.MANDATE_TAKES_PAYMENTS:
        raise CollectRefused(f"{invoice.client.name} has no active Direct Debit, so nothing was collected.")
    if invoice.status not in ("sent", "part_paid") or invoice.amount_due <= 0:
        raise CollectRefused("Nothing is due on this invoice, so nothing was collected.")
    collection = GoCardlessCollection(
        firm_id=invoice.firm_id, invoice_id=invoice.id, mandate_id=mandate.mandate_id,
        idempotency_key=f"planman-collection-{uuid.uuid4().hex}",
        amount=min(amount, invoice.amount_due) if amount is not None else invoice.amount_due,
        currency=invoice.currency, charge_date=charge_date, status="creating", automatic=automatic,
        created_by_id=user_id)
    db.session.add(collection)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # a second click at the same moment: that one collects
        db.session.rollback()
        return open_collection(invoice)
    pages.close_unneeded_soon(invoice.id)  # on its way now: a card page for the same money must not take it
    _send(connection, collection, invoice)
    return collection


def _send(connection, collection: GoCardlessCollection, invoice: Invoice) -> None:
    params = mapping.payment_params(invoice_id=invoice.id, invoice_number=invoice.number, amount=collection.amount,
                                    currency=collection.currency, mandate_id=collection.mandate_id,
                                    charge_date=collection.charge_date)
    try:
        created = client.api(connection).payments.create(params, headers={"Idempotency-Key": collection.idempotency_key})
    except TRANSIENT as error:
        log.warning("gocardless payment create for collection %s not answered: %s", collection.id,
                    type(error).__name__)
        collection.error = NOT_ANSWERED
        db.session.commit()
        raise TemporaryFailure(NOT_ANSWERED, detail=repr(error)) from None
    except (gocardless_pro.errors.AuthenticationError, gocardless_pro.errors.PermissionsError):
        collection.status, collection.failure_reason = "failed", "PlanMan's access to GoCardless was revoked"
        db.session.commit()
        _lost_access(connection)
    except gocardless_pro.errors.ApiError as error:
        log.info("gocardless refused collection %s: %s", collection.id, error)
        collection.status, collection.error = "failed", ""
        collection.failure_reason = _refusal(error)
        db.session.commit()
        raise CollectRefused(f"GoCardless did not collect this invoice: {collection.failure_reason}.") from None
    collection.error = ""
    apply_payment(collection, created.attributes)


def _refusal(error) -> str:
    reasons = [item.get("reason") for item in (error.errors or []) if isinstance(item, dict)]
    if "mandate_is_inactive" in reasons:
        return "the Direct Debit is no longer active"
    return (error.message or "refused").rstrip(".")


def retry(connection, collection: GoCardlessCollection, invoice: Invoice, *, user_id: Optional[int] = None):
    """Try a failed collection again: GoCardless's retry of the same payment, or a
    new collection when the first was refused before it existed."""
    if collection.status != "failed":
        raise CollectRefused("Only a failed collection can be retried.")
    if open_collection(invoice) is not None:
        raise CollectRefused("This invoice is already being collected.")
    if not collection.payment_id:
        return collect(connection, invoice, user_id=user_id)
    collection.retries = (collection.retries or 0) + 1
    db.session.commit()
    try:
        retried = client.api(connection).payments.retry(
            collection.payment_id, params={"metadata": {mapping.INVOICE_KEY: str(invoice.id)}},
            headers={"Idempotency-Key": f"{collection.idempotency_key}-retry-{collection.retries}"})
    except TRANSIENT as error:
        raise TemporaryFailure("GoCardless did not answer. Try again in a moment.", detail=repr(error)) from None
    except (gocardless_pro.errors.AuthenticationError, gocardless_pro.errors.PermissionsError):
        _lost_access(connection)
    except gocardless_pro.errors.ApiError as error:
        raise CollectRefused(f"GoCardless did not retry the collection: {_refusal(error)}.") from None
    collection.failure_reason = ""
    apply_payment(collection, retried.attributes)
    return collection


def apply_payment(collection: GoCardlessCollection, payment: dict, *, details: Optional[dict] = None,
                  when: Optional[date] = None) -> None:
    """Make the collection, and PlanMan's payment for it, say what GoCardless says."""
    status = payment.get("status") or collection.status
    collection.payment_id = payment.get("id") or collection.payment_id
    collection.status = status
    collection.charge_date = mapping.parse_date(payment.get("charge_date")) or collection.charge_date
    if status == "failed" and details:
        collection.failure_reason = mapping.failure_reason(details)
    if status == "charged_back" and collection.charged_back_on is None:
        collection.charged_back_on = when or date.today()
    state = mapping.payment_state(status)
    if state is None or not collection.payment_id:
        db.session.commit()
        return
    # The collection's new status and the payment's note commit with the payment's
    # state (recording it commits), so nobody sees "Paid" on a collection whose
    # invoice is not paid yet, or "Failed" without why.
    db.session.flush()
    invoice = db.session.get(Invoice, collection.invoice_id)
    payments.record_provider_payment(
        invoice, provider=PROVIDER, provider_payment_id=collection.payment_id, amount=collection.amount,
        method="direct_debit", state=state, paid_on=collection.charge_date, reference=collection.payment_id,
        note=mapping.collection_words(collection) if state in ("failed", "charged_back") else "")


def collection_for_payment(connection, payment: dict) -> Optional[GoCardlessCollection]:
    """Our collection of a GoCardless payment: by its id, else (a create whose
    answer was lost) the invoice's collection still waiting for that answer."""
    found = db.session.scalar(sa.select(GoCardlessCollection).where(
        GoCardlessCollection.firm_id == connection.firm_id, GoCardlessCollection.payment_id == payment.get("id")))
    if found is not None:
        return found
    invoice_id = (payment.get("metadata") or {}).get(mapping.INVOICE_KEY)
    mandate_id = (payment.get("links") or {}).get("mandate")
    if not str(invoice_id or "").isdigit():
        return None
    return db.session.scalar(sa.select(GoCardlessCollection).where(
        GoCardlessCollection.firm_id == connection.firm_id, GoCardlessCollection.invoice_id == int(invoice_id),
        GoCardlessCollection.status == "creating", GoCardlessCollection.mandate_id == mandate_id))


# -- automatic collection on the due date ----------------------------------------------------

def due_for_auto_collection(firm_id: int, today: date) -> list[Invoice]:
    """Invoices of the firm to collect now: due within the lead time, their client's
    mandate active, never collected before (a failure waits for a person's Retry)."""
    collected = sa.select(GoCardlessCollection.invoice_id).where(GoCardlessCollection.firm_id == firm_id)
    return list(db.session.scalars(
        sa.select(Invoice).join(GoCardlessMandate, sa.and_(GoCardlessMandate.client_id == Invoice.client_id,
                                                            GoCardlessMandate.firm_id == Invoice.firm_id))
        .where(Invoice.firm_id == firm_id, Invoice.status.in_(("sent", "part_paid")),
               Invoice.due_date <= today + timedelta(days=AUTO_COLLECT_LEAD_DAYS),
               GoCardlessMandate.status == "active", Invoice.id.not_in(collected))
        .order_by(Invoice.due_date, Invoice.id)))


def auto_charge_date(invoice: Invoice, mandate: GoCardlessMandate, today: date) -> Optional[date]:
    """The due date, when GoCardless can still charge on it; else as soon as it can."""
    earliest = max(mandate.next_possible_charge_date or today, today)
    return invoice.due_date if invoice.due_date >= earliest else None


def collect_due(connection, today: date) -> int:
    done = 0
    for invoice in due_for_auto_collection(connection.firm_id, today):
        if invoice.amount_due <= 0:
            continue
        try:
            collect(connection, invoice, automatic=True,
                    charge_date=auto_charge_date(invoice, mandate_for(invoice.client), today))
            done += 1
        except IntegrationError as error:
            log.warning("automatic collection of invoice %s: %s", invoice.id, error.user_message)
    return done
