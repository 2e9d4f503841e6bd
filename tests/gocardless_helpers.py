"""GoCardless as REFERENCE.md documents it, played by `responses` (tests of
PlanMan's side); events signed as GoCardless signs them."""
from __future__ import annotations

import hashlib
import hmac
import json

import responses
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import webhooks
from planman.integrations.gocardless.models import GoCardlessMandate
from planman.integrations.tokens import store_token
from planman.models import Connection, WebhookEvent, utcnow

API = "https://api-sandbox.gocardless.com"
CONNECT = "https://connect-sandbox.gocardless.com"
SECRET = "gc_webhook_secret_test"
ORG = "OR000FIRM0001"
TOKEN = "live_firm_access_token_1"


class FakeGoCardless:
    """Answers GoCardless API calls on a `responses` mock; resources live in dicts."""

    def __init__(self, rsps: responses.RequestsMock):
        self.rsps = rsps

    def add(self, method: str, path: str, *, json_body=None, status: int = 200, body=None):
        if body is not None:
            self.rsps.add(method, API + path, body=body)
        else:
            self.rsps.add(method, API + path, json=json_body, status=status)

    def requests_to(self, method: str, path: str):
        return [c.request for c in self.rsps.calls if c.request.method == method
                and c.request.url.split("?")[0] == API + path]

    def sent(self, method: str, path: str, index: int = -1) -> dict:
        return json.loads(self.requests_to(method, path)[index].body)


def connect(user, organisation=ORG, **settings) -> Connection:
    connection = Connection(firm_id=user.firm_id, provider="gocardless", state="connected", tenant_id=organisation,
                            tenant_name="Reid & Co Accountants", connected_at=utcnow(),
                            settings={"tenant_id": organisation,  # as a connect stores it
                                      "gocardless_creditor": {"id": "CR1", "name": "Reid & Co",
                                                              "verification_status": "successful"}, **settings})
    store_token(connection, {"access_token": TOKEN, "expires_at": 4102444800})
    db.session.add(connection)
    db.session.commit()
    return connection


def active_mandate(user, client_row, *, status="active", next_date=None, mandate_id="MD000A") -> GoCardlessMandate:
    mandate = GoCardlessMandate(firm_id=user.firm_id, client_id=client_row.id, organisation_id=ORG,
                                billing_request_id="BRQ000A", customer_id="CU000A", mandate_id=mandate_id,
                                status=status, requests_made=1, next_possible_charge_date=next_date)
    db.session.add(mandate)
    db.session.commit()
    return mandate


def payment(payment_id="PM000A", status="pending_submission", amount=12000, charge_date="2026-12-05",
            invoice_id=None, mandate="MD000A") -> dict:
    return {"payments": {"id": payment_id, "status": status, "amount": amount, "currency": "GBP",
                         "charge_date": charge_date, "description": "Invoice", "amount_refunded": 0,
                         "metadata": {"planman_invoice_id": str(invoice_id)} if invoice_id else {},
                         "links": {"mandate": mandate, "creditor": "CR1"}, "created_at": "2026-12-01T10:00:00.000Z"}}


def mandate(mandate_id="MD000A", status="active", next_date="2026-12-05") -> dict:
    return {"mandates": {"id": mandate_id, "status": status, "scheme": "bacs", "reference": "REID-1",
                         "next_possible_charge_date": next_date,
                         "links": {"customer": "CU000A", "creditor": "CR1", "customer_bank_account": "BA1"}}}


def event(event_id: str, resource_type: str, action: str, links: dict, *, organisation=ORG, details=None,
          created_at: str | None = None) -> dict:
    created_at = created_at or utcnow().isoformat(timespec="milliseconds") + "Z"
    return {"id": event_id, "created_at": created_at, "resource_type": resource_type,
            "action": action, "links": {**links, "organisation": organisation},
            "details": details or {"origin": "gocardless", "cause": action, "description": f"{action}."},
            "metadata": {}}


def sign(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def deliver(client, *events, secret=SECRET, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps({"events": list(events), "meta": {"webhook_id": "WB1"}}).encode()
    return client.post("/webhooks/gocardless", data=body, content_type="application/json",
                       headers={"Webhook-Signature": sign(body, secret), "Origin": "https://api.gocardless.com"})


def process_all() -> dict:
    for row_id in list(db.session.scalars(sa.select(WebhookEvent.id).where(WebhookEvent.state == "queued")
                                          .order_by(WebhookEvent.id))):
        webhooks.process(row_id)
    db.session.expire_all()
    return {row.event_id: row.state for row in db.session.scalars(sa.select(WebhookEvent))}
