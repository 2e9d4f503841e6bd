"""Pure translations between PlanMan and GoCardless (no I/O).

Money is ``Decimal`` in PlanMan and integer minor units at GoCardless; every
currency GoCardless collects in (GBP, EUR, SEK, DKK, AUD, NZD, CAD, USD) has
two decimal places."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Optional

INVOICE_KEY = "planman_invoice_id"
CLIENT_KEY = "planman_client_id"

# The Direct Debit scheme a mandate in each currency uses.
SCHEMES = {"GBP": "bacs", "EUR": "sepa_core", "SEK": "autogiro", "DKK": "betalingsservice", "AUD": "becs",
           "NZD": "becs_nz", "CAD": "pad", "USD": "ach"}


def to_minor_units(amount: Decimal) -> int:
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than two decimal places")
    return int(scaled)


def from_minor_units(minor: int) -> Decimal:
    return Decimal(int(minor)).scaleb(-2).quantize(Decimal("0.01"))


def billing_request_params(*, client_id: int, currency: str, invoice_id: Optional[int] = None,
                           customer_id: str = "") -> dict:
    metadata = {CLIENT_KEY: str(client_id)}
    if invoice_id is not None:
        metadata[INVOICE_KEY] = str(invoice_id)
    params = {"mandate_request": {"scheme": SCHEMES.get(currency.upper(), "bacs"), "currency": currency.upper()},
              "metadata": metadata}
    if customer_id:
        params["links"] = {"customer": customer_id}
    return params


def flow_params(*, billing_request_id: str, redirect_uri: str, exit_uri: str, client) -> dict:
    """The hosted flow, prefilled from the client's record (the client can change it there)."""
    prefilled = {"given_name": client.first_name, "family_name": client.last_name, "email": client.email,
                 "company_name": client.name, "address_line1": client.address_line1, "city": client.city,
                 "postal_code": client.postcode}
    if len(client.country or "") == 2:
        prefilled["country_code"] = client.country.upper()
    return {"redirect_uri": redirect_uri, "exit_uri": exit_uri, "links": {"billing_request": billing_request_id},
            "prefilled_customer": {key: value for key, value in prefilled.items() if value}}


def payment_params(*, invoice_id: int, invoice_number: str, amount: Decimal, currency: str, mandate_id: str,
                   charge_date: Optional[date] = None) -> dict:
    params = {"amount": to_minor_units(amount), "currency": currency.upper(),
              "description": f"Invoice {invoice_number}"[:100], "metadata": {INVOICE_KEY: str(invoice_id)},
              "retry_if_possible": False, "links": {"mandate": mandate_id}}
    if charge_date is not None:
        params["charge_date"] = charge_date.isoformat()
    return params


def parse_date(value) -> Optional[date]:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


# -- mandates ---------------------------------------------------------------------------

MANDATE_PENDING = ("requested", "pending_customer_approval", "pending_submission", "submitted")
# Ended by the bank, the client or time: the event's details say why, shown beside it.
MANDATE_ENDED = ("failed", "cancelled", "expired")
# Statuses a payment may be created against (REFERENCE.md section 4).
MANDATE_TAKES_PAYMENTS = ("pending_customer_approval", "pending_submission", "submitted", "active")


def mandate_state(status: Optional[str]) -> str:
    """none | pending | active | failed | cancelled: what the client's page says."""
    if not status:
        return "none"
    if status in MANDATE_PENDING:
        return "pending"
    if status == "active":
        return "active"
    if status == "failed":
        return "failed"
    return "cancelled"  # cancelled, expired, consumed, blocked, suspended_by_payer, transferred


MANDATE_WORDS = {
    "none": "No Direct Debit set up.",
    "pending": "Direct Debit requested: waiting for the client, then for their bank.",
    "active": "Direct Debit active: invoices can be collected.",
    "failed": "Direct Debit failed: the bank did not accept it.",
    "cancelled": "Direct Debit cancelled: nothing more can be collected until the client sets it up again.",
}


def mandate_words(status: Optional[str]) -> str:
    if status == "requested":
        return "Direct Debit requested: the client has not finished setting it up yet."
    if status == "expired":
        return "Direct Debit expired (unused for too long): the client needs to set it up again."
    return MANDATE_WORDS[mandate_state(status)]


# -- payments ----------------------------------------------------------------------------

# What each GoCardless payment status means for PlanMan's Payment row.
PAYMENT_STATES = {
    "pending_customer_approval": "pending", "pending_submission": "pending", "submitted": "pending",
    "confirmed": "succeeded", "paid_out": "succeeded",
    "failed": "failed", "cancelled": "failed", "customer_approval_denied": "failed",
    "charged_back": "charged_back",
}
COLLECTING = ("creating", "pending_customer_approval", "pending_submission", "submitted")


def payment_state(status: str) -> Optional[str]:
    return PAYMENT_STATES.get(status)


def short_date(value: Optional[date]) -> str:
    return f"{value.day} {value.strftime('%b')}" if value else ""


def collection_words(collection) -> str:
    """The collection's progress in plain words, for the invoice page."""
    status = collection.status
    if status == "creating":
        return "Collection not confirmed by GoCardless yet." + (f" {collection.error}" if collection.error else "")
    if status in COLLECTING:
        when = short_date(collection.charge_date)
        return f"Collecting — charged on {when}" if when else "Collecting"
    if status in ("confirmed", "paid_out"):
        return "Paid"
    if status == "failed":
        return f"Failed: {collection.failure_reason or 'the payment did not go through'}"
    if status == "charged_back":
        when = short_date(collection.charged_back_on)
        return f"Charged back on {when}" if when else "Charged back"
    if status == "customer_approval_denied":
        return "Failed: the client did not approve the payment"
    if status == "cancelled":
        return f"Cancelled{f': {collection.failure_reason}' if collection.failure_reason else ''}"
    return status.replace("_", " ").capitalize()


def failure_reason(details: dict) -> str:
    """Why a payment failed, from an event's details (cause first, per GoCardless's advice)."""
    cause = (details or {}).get("cause") or ""
    words = {"insufficient_funds": "insufficient funds", "mandate_cancelled": "the Direct Debit was cancelled",
             "refer_to_payer": "the bank asked the client to get in touch",
             "bank_account_closed": "the bank account is closed", "payer_disputed": "the client disputed it"}
    if cause in words:
        return words[cause]
    return ((details or {}).get("description") or cause.replace("_", " ")).rstrip(".")


# -- creditor (the firm's GoCardless account) ----------------------------------------------

def creditor_summary(creditor: dict) -> dict:
    return {"id": creditor.get("id") or "", "name": creditor.get("name") or "",
            "verification_status": creditor.get("verification_status") or ""}


VERIFICATION_WORDS = {
    "successful": "Verified: GoCardless pays collected money out to your bank account.",
    "in_review": "GoCardless is reviewing your account. No money moves until verification is done.",
    "action_required": "GoCardless needs more details from you to verify your account. "
                       "No money moves until verification is done: finish it in your GoCardless dashboard.",
}


def verification_words(status: str) -> str:
    return VERIFICATION_WORDS.get(status, "Your GoCardless account is not verified yet. "
                                          "No money moves until verification is done.")
