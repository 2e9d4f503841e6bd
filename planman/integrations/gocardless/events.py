"""GoCardless's webhook events, one at a time, in a worker.

Events come several to a delivery, in any order and possibly more than once,
so each handler re-reads the resource from GoCardless and sets PlanMan's
records to what GoCardless says now: a repeat or a late event changes nothing."""
from __future__ import annotations

import logging

import gocardless_pro
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import connections
from planman.integrations.errors import TemporaryFailure
from planman.integrations.gocardless import client, mapping, services
from planman.integrations.gocardless.models import GoCardlessMandate
from planman.models import Client, Invoice, utcnow

log = logging.getLogger(__name__)

# "Set up Direct Debit and pay" collects the invoice it was for while that is
# still what the client just asked for. Applied later (the event waited for the
# firm to reconnect, or for GoCardless to answer), the mandate is set up but
# collecting is left to the firm, who may have been paid otherwise meanwhile.
COLLECT_AFTER_SET_UP_DAYS = 2


def handle(provider, connection, event: dict) -> None:
    handler = _HANDLERS.get(event.get("resource_type"))
    if handler is None:
        log.info("gocardless event %s: %s is not one PlanMan acts on", event.get("id"), event.get("resource_type"))
        return
    try:
        handler(provider, connection, event)
    except services.TRANSIENT as error:  # raised: the intake retries the event later
        raise TemporaryFailure("GoCardless did not answer.", detail=repr(error)) from None


def _get(connection, resource: str, identity: str) -> dict | None:
    try:
        return getattr(client.api(connection), resource).get(identity).attributes
    except gocardless_pro.errors.ApiError as error:
        if error.code == 404:
            log.warning("gocardless %s %s not found for organisation %s", resource, identity, connection.tenant_id)
            return None
        raise


def _payment(provider, connection, event: dict) -> None:
    payment_id = (event.get("links") or {}).get("payment")
    payment = _get(connection, "payments", payment_id) if payment_id else None
    if payment is None:
        return
    collection = services.collection_for_payment(connection, payment)
    if collection is None:
        log.info("gocardless payment %s is not a collection of firm %s: ignored", payment_id, connection.firm_id)
        return
    # Only a failure's own event says why it failed; another event re-reading a failed
    # payment (a late "submitted") must not overwrite the reason.
    failure = event.get("action") in ("failed", "late_failure_settled")
    services.apply_payment(collection, payment, details=(event.get("details") or {}) if failure else None,
                           when=mapping.parse_date(event.get("created_at")))


def _mandate(provider, connection, event: dict) -> None:
    mandate_id = (event.get("links") or {}).get("mandate")
    mandate = db.session.scalar(sa.select(GoCardlessMandate).where(
        GoCardlessMandate.firm_id == connection.firm_id, GoCardlessMandate.mandate_id == mandate_id))
    if mandate is None:
        log.info("gocardless mandate %s is not one of firm %s's clients: ignored", mandate_id, connection.firm_id)
        return
    services.refresh_mandate(connection, mandate, details=event.get("details") or {})


def _billing_request(provider, connection, event: dict) -> None:
    if event.get("action") != "fulfilled":
        return
    found = _get(connection, "billing_requests", (event.get("links") or {}).get("billing_request") or "")
    if found is None or found.get("status") != "fulfilled":
        return
    metadata = found.get("metadata") or {}
    client_id = str(metadata.get(mapping.CLIENT_KEY) or "")
    links = found.get("links") or {}
    if not client_id.isdigit() or not links.get("mandate_request_mandate"):
        return
    client_row = db.session.scalar(sa.select(Client).where(Client.id == int(client_id),
                                                           Client.firm_id == connection.firm_id))
    if client_row is None:
        log.warning("gocardless billing request %s names no client of firm %s: ignored", found.get("id"),
                    connection.firm_id)
        return
    mandate = services.mandate_for(client_row)
    if mandate is None:
        mandate = GoCardlessMandate(firm_id=connection.firm_id, client_id=client_row.id,
                                    organisation_id=connection.tenant_id, requests_made=0)
        db.session.add(mandate)
    mandate.billing_request_id = found.get("id")
    mandate.mandate_id = links["mandate_request_mandate"]
    mandate.customer_id = links.get("customer") or mandate.customer_id
    mandate.status, mandate.status_detail = "pending_submission", ""
    db.session.commit()
    services.refresh_mandate(connection, mandate)
    invoice_id = str(metadata.get(mapping.INVOICE_KEY) or "")
    fulfilled_on = mapping.parse_date(event.get("created_at"))
    if invoice_id.isdigit() and fulfilled_on and (utcnow().date() - fulfilled_on).days > COLLECT_AFTER_SET_UP_DAYS:
        log.info("gocardless: billing request %s was fulfilled on %s; invoice %s is left for the firm to collect",
                 found.get("id"), fulfilled_on, invoice_id)
    elif invoice_id.isdigit():  # "Set up Direct Debit and pay": collect the invoice it was for
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.id == int(invoice_id),
                                                             Invoice.firm_id == connection.firm_id,
                                                             Invoice.client_id == client_row.id))
        if invoice is not None and invoice.status in ("sent", "part_paid") and invoice.amount_due > 0:
            try:
                services.collect(connection, invoice)
            except services.CollectRefused as refused:
                log.info("gocardless: invoice %s not collected after set-up: %s", invoice.id, refused.user_message)


def _creditor(provider, connection, event: dict) -> None:
    provider.load_tenant_details(connection)


def _organisation(provider, connection, event: dict) -> None:
    if event.get("action") == "disconnected":  # the firm removed PlanMan in its GoCardless dashboard
        connection.token_ciphertext = None
        connections.disconnect(provider, connection,
                               reason="Disconnected from GoCardless's side (in the GoCardless dashboard).")


_HANDLERS = {"payments": _payment, "mandates": _mandate, "billing_requests": _billing_request,
             "creditors": _creditor, "organisations": _organisation}
