"""Payments received in PlanMan, recorded in Xero against the invoice (REFERENCE.md section 12).

Exactly once whatever retries happen: the payment is looked up by a reference
PlanMan controls before one is created, and the create carries an
Idempotency-Key, so a retry after a lost answer finds the first payment."""
from __future__ import annotations

from planman.integrations.errors import IntegrationError, RemoteNotFound
from planman.integrations.xero import mapping
from planman.integrations.xero.client import XeroClient


class PaymentRefused(IntegrationError):
    """Xero cannot take this payment as things stand (the message says what to do)."""


def record_payment(api: XeroClient, invoice_id: str, account_code: str, payment) -> str:
    """Xero's PaymentID for ``payment`` on invoice ``invoice_id``, creating it only if none exists."""
    reference = mapping.payment_reference(payment)
    existing = mapping.our_payment(api.find_payments(reference), invoice_id)
    if existing:
        return existing["PaymentID"]
    try:
        invoice = api.get_invoice(invoice_id)
    except RemoteNotFound as error:
        raise PaymentRefused(mapping.PAYMENT_INVOICE_GONE) from error
    problem = mapping.payment_refusal(invoice.get("Status", ""))
    if problem:
        raise PaymentRefused(problem)
    created = api.create_payment(mapping.payment_payload(payment, invoice_id, account_code),
                                 idempotency_key=f"planman-payment-{payment.id}-record")
    return created["PaymentID"]


def reverse_payment(api: XeroClient, payment, xero_payment_id: str) -> None:
    """Delete Xero's payment (Xero's way to reverse one); already gone is done."""
    try:
        found = api.get_payment(xero_payment_id)
    except RemoteNotFound:
        return
    if found.get("Status") == "DELETED":
        return
    api.delete_payment(xero_payment_id, idempotency_key=f"planman-payment-{payment.id}-reverse")
