"""GoCardless's resources and how they move (REFERENCE.md sections 4 and 7), with
the events each move produces. Every function runs inside the caller's write
transaction; `Events` gathers what one moment produced and queues it as one
signed delivery (GoCardless sends several events per delivery)."""
from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import date, datetime, timedelta, timezone

from ..core import webhooks

PREFIXES = {"customers": "CU", "customer_bank_accounts": "BA", "billing_requests": "BRQ",
            "billing_request_flows": "BRF", "mandates": "MD", "payments": "PM", "events": "EV"}


def new_id(kind: str) -> str:
    return PREFIXES[kind] + secrets.token_hex(6).upper()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def get(db, organisation: str, kind: str, resource_id: str):
    row = db.execute("SELECT doc FROM resources WHERE id=? AND kind=? AND organisation_id=?",
                     (resource_id or "", kind, organisation)).fetchone()
    return json.loads(row["doc"]) if row else None


def find(db, kind: str, resource_id: str):
    """(organisation, doc) of any organisation: for the hosted pages and the control API."""
    row = db.execute("SELECT organisation_id, doc FROM resources WHERE id=? AND kind=?",
                     (resource_id or "", kind)).fetchone()
    return (row["organisation_id"], json.loads(row["doc"])) if row else (None, None)


def put(db, organisation: str, kind: str, doc: dict) -> dict:
    db.execute("INSERT INTO resources(id, kind, organisation_id, doc, created) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc", (doc["id"], kind, organisation, json.dumps(doc),
                                                                 time.time()))
    return doc


def listed(db, organisation: str, kind: str) -> list[dict]:
    return [json.loads(r["doc"]) for r in db.execute(
        "SELECT doc FROM resources WHERE organisation_id=? AND kind=? ORDER BY created, id", (organisation, kind))]


class Events:
    """What one moment produced, delivered together once the moment is over."""

    def __init__(self, db, organisation: str):
        self.db, self.organisation, self.events = db, organisation, []

    def add(self, resource_type: str, action: str, links: dict, *, cause: str = "", description: str = "",
            origin: str = "gocardless", resource_metadata: dict | None = None, **details) -> None:
        self.events.append({
            "id": new_id("events"), "created_at": now_iso(), "resource_type": resource_type, "action": action,
            "links": {**links, "organisation": self.organisation},
            "details": {"origin": origin, "cause": cause or action, "description": description or action, **details},
            "metadata": {}, "resource_metadata": resource_metadata or {}})

    def send(self) -> int:
        if not self.events:
            return 0
        webhook_id = "WB" + uuid.uuid4().hex[:12].upper()
        body = json.dumps({"events": self.events, "meta": {"webhook_id": webhook_id}})
        kinds = ",".join(sorted({f"{e['resource_type']}.{e['action']}" for e in self.events}))
        return webhooks.emit(self.db, event_id=webhook_id, event_type=kinds, body=body, account=self.organisation)


# -- mandates ----------------------------------------------------------------------------

# REFERENCE.md section 4: payments may be created against these.
TAKES_PAYMENTS = ("pending_customer_approval", "pending_submission", "submitted", "active")
MANDATE_NEXT = {"pending_submission": "submitted", "submitted": "active"}
MANDATE_FROM = {"submitted": ("pending_submission",), "active": ("pending_submission", "submitted"),
                "failed": ("pending_submission", "submitted"), "cancelled": TAKES_PAYMENTS,
                "expired": ("active",)}
MANDATE_DETAILS = {
    "submitted": ("gocardless", "mandate_submitted", "The mandate has been submitted to the banks."),
    "active": ("gocardless", "mandate_activated", "The mandate has been successfully set up by the bank."),
    "failed": ("bank", "bank_account_closed", "The bank account for this mandate has been closed."),
    "cancelled": ("customer", "mandate_cancelled", "The mandate was cancelled at the customer's request."),
    "expired": ("gocardless", "mandate_expired", "The mandate expired after 13 months without payments."),
}


def next_charge_date(lead_days: int) -> str:
    return (date.today() + timedelta(days=lead_days)).isoformat()


def move_mandate(db, organisation: str, mandate: dict, to: str, events: Events) -> str | None:
    """None when done, else why not."""
    if mandate["status"] not in MANDATE_FROM.get(to, ()):
        return f"a {mandate['status']} mandate cannot become {to}"
    mandate["status"] = to
    put(db, organisation, "mandates", mandate)
    origin, cause, description = MANDATE_DETAILS[to]
    events.add("mandates", to if to != "active" else "active", {"mandate": mandate["id"]}, origin=origin,
               cause=cause, description=description, scheme=mandate["scheme"])
    if to in ("failed", "cancelled", "expired"):
        for payment in listed(db, organisation, "payments"):
            if payment["links"]["mandate"] == mandate["id"] and payment["status"] in ("pending_submission",
                                                                                      "pending_customer_approval"):
                payment["status"] = "cancelled"
                put(db, organisation, "payments", payment)
                events.add("payments", "cancelled", {"payment": payment["id"], "mandate": mandate["id"]},
                           cause="mandate_cancelled", description="The mandate for this payment was cancelled.",
                           resource_metadata=payment.get("metadata"))
    return None


# -- payments ------------------------------------------------------------------------------

PAYMENT_NEXT = {"pending_submission": "submitted", "submitted": "confirmed", "confirmed": "paid_out"}
PAYMENT_FROM = {"submitted": ("pending_submission",), "confirmed": ("submitted",), "paid_out": ("confirmed",),
                "failed": ("submitted", "confirmed"), "charged_back": ("confirmed", "paid_out"),
                "cancelled": ("pending_submission", "pending_customer_approval")}
PAYMENT_DETAILS = {
    "submitted": ("gocardless", "payment_submitted", "Payment submitted to the banks. As a result, it can no "
                                                      "longer be cancelled."),
    "confirmed": ("gocardless", "payment_confirmed", "Enough time has passed since the payment was submitted "
                                                      "for the banks to return an error, so this payment is now "
                                                      "confirmed."),
    "paid_out": ("gocardless", "payment_paid_out", "The payment has been paid out by GoCardless."),
    "failed": ("bank", "insufficient_funds", "The customer's account had insufficient funds to make this payment."),
    "charged_back": ("bank", "payment_charged_back", "The customer asked their bank to refund this payment."),
    "cancelled": ("api", "payment_cancelled", "The payment was cancelled."),
}


def scenario(db, organisation: str, payment: dict) -> str:
    """The sandbox scenario of the payment's customer, by the customer's given name (REFERENCE.md section 3)."""
    mandate = get(db, organisation, "mandates", payment["links"]["mandate"]) or {}
    customer = get(db, organisation, "customers", (mandate.get("links") or {}).get("customer")) or {}
    return (customer.get("given_name") or "").strip().lower()


def natural_next(db, organisation: str, payment: dict) -> str | None:
    """Where time moves a payment next, the customer's scenario included: Penniless' payments fail once
    submitted, Late's fail after confirmation, Fickle's are charged back after payout."""
    name, status = scenario(db, organisation, payment), payment["status"]
    if name == "penniless" and status == "submitted":
        return "failed"
    if name == "late" and status == "confirmed":
        return "failed"
    if name == "fickle" and status == "paid_out":
        return "charged_back"
    return PAYMENT_NEXT.get(status)


def move_payment(db, organisation: str, payment: dict, to: str, events: Events, *, cause: str = "") -> str | None:
    if payment["status"] not in PAYMENT_FROM.get(to, ()):
        return f"a {payment['status']} payment cannot become {to}"
    late = to == "failed" and payment["status"] == "confirmed"
    payment["status"] = to
    put(db, organisation, "payments", payment)
    origin, default_cause, description = PAYMENT_DETAILS[to]
    extra = {}
    if to == "failed":
        extra = {"scheme": "bacs", "reason_code": "ARUDD-0", "will_attempt_retry": False}
        if cause == "refer_to_payer":
            description = "The customer's bank asked them to get in touch."
    action = "late_failure_settled" if late else to
    events.add("payments", "failed" if late else action, {"payment": payment["id"],
                                                          "mandate": payment["links"]["mandate"]},
               origin=origin, cause=cause or default_cause, description=description,
               resource_metadata=payment.get("metadata"), **extra)
    return None
