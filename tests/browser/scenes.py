"""A small firm with a record in every integration panel state, served once per
module: the browser tests of pages, layout and accessibility walk it, and
scripts/screenshots.py photographs it for the README.

Rows are written straight to the database as pushes would leave them (no
worker or Xero needed): the pages read nothing else."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from planman.auth import services as accounts
from planman.extensions import db
from planman.integrations.tokens import store_token
from planman.models import (BulkPush, Client, Connection, ExternalLink, Invoice, InvoiceLine, PushJob, TaxRate,
                            utcnow)
from tests.fixtures.services import serve_app

PASSWORD = "browser-password"
TENANT = "8a3b2c1d-0000-4000-8000-000000000001"

XERO_SETTINGS = {
    "xero_accounts": [{"code": "200", "name": "Sales"}, {"code": "260", "name": "Other Revenue"}],
    "xero_tax_rates": [{"type": "OUTPUT2", "name": "20% (VAT on Income)", "rate": "20"},
                       {"type": "RROUTPUT", "name": "5% (VAT on Income)", "rate": "5"},
                       {"type": "ZERORATEDOUTPUT", "name": "Zero Rated Income", "rate": "0"},
                       {"type": "NONE", "name": "No VAT", "rate": "0"}],
    "base_currency": "GBP", "sales_account_code": "200", "no_tax_type": "NONE", "invoice_status": "DRAFT",
}


@dataclass
class Scenes:
    """Who logs in, and the page of each scene (paths on the served app)."""

    admin: str = "bea@browser.example"
    unconnected_admin: str = "una@unconnected.example"
    reconnect_admin: str = "rex@reconnect.example"
    pages: dict[str, str] = field(default_factory=dict)  # name -> path
    panels: dict[str, tuple[str, str]] = field(default_factory=dict)  # state -> (path, login)


# ``app`` over HTTP on a free port for as long as the block runs (the same
# server as the ``live_server`` fixture).
serve = serve_app


def _firm(firm_name: str, email: str, user_name: str):
    user = accounts.create_firm(firm_name, "GBP", user_name, email, PASSWORD, browser_time_zone="Europe/London")
    db.session.commit()
    return user


def _connection(user, state: str = "connected", reason: str = "") -> Connection:
    connection = Connection(firm_id=user.firm_id, provider="xero", state=state, state_reason=reason,
                            tenant_id=TENANT, tenant_name="Demo Company (UK)", tenant_short_code="!dmoUK",
                            remote_connection_id="conn-1", connected_at=utcnow() - timedelta(days=12),
                            connected_by_id=user.id, settings=dict(XERO_SETTINGS))
    store_token(connection, {"access_token": "access", "refresh_token": "refresh", "expires_in": 1800})
    db.session.add(connection)
    db.session.flush()
    rates = db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id)).all()
    by_percent = {Decimal("20"): "OUTPUT2", Decimal("5"): "RROUTPUT", Decimal("0"): "ZERORATEDOUTPUT"}
    connection.settings = {**connection.settings, "details_loaded_at": (utcnow() - timedelta(minutes=3)).isoformat(
        timespec="seconds"), "tax_types": {str(r.id): by_percent.get(r.percent, "NONE") for r in rates}}
    return connection


def _client(user, name: str, **fields) -> Client:
    record = Client(firm_id=user.firm_id, name=name, **fields)
    db.session.add(record)
    db.session.flush()
    return record


def _invoice(user, customer, number: str, lines, status: str = "draft") -> Invoice:
    invoice = Invoice(firm_id=user.firm_id, client_id=customer.id, number=number,
                      issue_date=utcnow().date() - timedelta(days=3), due_date=utcnow().date() + timedelta(days=27),
                      currency="GBP", status=status, amounts_are="exclusive", reference="Year end 2026")
    invoice.lines = [InvoiceLine(position=i, description=description, quantity=Decimal(q), unit_price=Decimal(price),
                                 tax_rate_id=rate.id if rate else None)
                     for i, (description, q, price, rate) in enumerate(lines)]
    db.session.add(invoice)
    db.session.flush()
    return invoice


def _link(user, record_type: str, record, *, minutes_ago: int, remote_status: str = "", changed: bool = False,
          linked_existing: bool = False) -> ExternalLink:
    pushed_at = utcnow() - timedelta(minutes=minutes_ago)
    link = ExternalLink(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type=record_type,
                        record_id=record.id, external_id=f"{record_type}-{record.id}-0000-4000-8000-000000000000",
                        remote_status=remote_status, linked_existing=linked_existing,
                        record_revision=record.revision - 1 if changed else record.revision,
                        status_checked_at=utcnow(), pushed_at=pushed_at, pushed_by_id=user.id)
    db.session.add(link)
    return link


def _push(user, record_type: str, record, state: str, *, minutes_ago: float = 0, bulk=None, **fields) -> PushJob:
    at = utcnow() - timedelta(minutes=minutes_ago)
    finished = state in ("succeeded", "failed")
    job = PushJob(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type=record_type,
                  record_id=record.id, state=state, requested_by_id=user.id, created_at=at,
                  started_at=at if state != "queued" else None, finished_at=at if finished else None,
                  bulk_push_id=bulk.id if bulk else None, attempts=1 if state != "queued" else 0, **fields)
    db.session.add(job)
    return job


def build(queue) -> Scenes:
    """The scenes, in the app context's database. ``queue`` (the app's push
    queue, with no worker) holds the jobs of the pushes under way, so they stay
    "Sending…" instead of being found lost."""
    scenes = Scenes()
    waiting = queue.enqueue("planman.jobs.run_push", 0, job_id="scene-push").id
    chain = queue.enqueue("planman.jobs.run_push", 0, job_id="scene-bulk-chain").id
    bea = _firm("Browser & Co", scenes.admin, "Bea Browser")
    _connection(bea)
    vat = db.session.scalar(sa.select(TaxRate).where(TaxRate.firm_id == bea.firm_id, TaxRate.name == "VAT 20%"))

    acme = _client(bea, "Acme Ltd", first_name="Ada", last_name="Lovelace", email="accounts@acme.example",
                   phone="020 7946 0000", address_line1="1 High Street", city="London", postcode="EC1A 1AA",
                   country="United Kingdom", tax_number="GB123456789", payment_terms_days=14)
    bright = _client(bea, "Brightside Bakery", email="hello@brightside.example")
    carter = _client(bea, "Carter & Daughters", email="office@carter.example")
    dunmore = _client(bea, "Dunmore Dental", email="")
    evergreen = _client(bea, "Evergreen Gardens", email="team@evergreen.example")

    draft = _invoice(bea, acme, "INV-0001", [
        ("Bookkeeping, October\nBank reconciliation and VAT return", "1.5", "175", vat),
        ("Payroll run (12 employees)", "12", "8.3333", vat),
        ("Postage", "1", "4.2", None)])
    approved = _invoice(bea, bright, "INV-0002", [("Annual accounts", "1", "950", vat)], status="sent")
    changed_invoice = _invoice(bea, carter, "INV-0003", [("Tax return", "1", "420", vat)])
    deleted = _invoice(bea, carter, "INV-0004", [("Advice call", "2", "90", vat)])
    for n in range(5, 11):
        _invoice(bea, evergreen, f"INV-{n:04d}", [("Monthly retainer", "1", "300", vat)])
    db.session.flush()

    # One record per panel state.
    _link(bea, "client", bright, minutes_ago=2)
    _push(bea, "client", bright, "succeeded", minutes_ago=2, outcome="created")
    _link(bea, "client", carter, minutes_ago=60 * 26, changed=True)
    _push(bea, "client", dunmore, "failed", minutes_ago=4, outcome="failed",
          error_message="Xero refused the contact: the email address is not valid.",
          error_fields={"email": ["Email address must be valid."]})
    _push(bea, "client", evergreen, "queued", rq_job_id=waiting)  # no worker has picked it up yet
    _link(bea, "client", acme, minutes_ago=30)
    _link(bea, "invoice", approved, minutes_ago=90, remote_status="AUTHORISED")
    _link(bea, "invoice", changed_invoice, minutes_ago=45, remote_status="DRAFT", changed=True)
    _link(bea, "invoice", deleted, minutes_ago=300, remote_status="DELETED")

    # A bulk send under way, with one failure so far.
    bulk = BulkPush(firm_id=bea.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                    requested_by_id=bea.id, created_at=utcnow() - timedelta(seconds=40))
    db.session.add(bulk)
    db.session.flush()
    batch = db.session.scalars(sa.select(Invoice).where(Invoice.client_id == evergreen.id).order_by(Invoice.id)).all()
    for n, invoice in enumerate(batch):
        if n < 3:
            _push(bea, "invoice", invoice, "succeeded", minutes_ago=0.5, bulk=bulk, outcome="created",
                  rq_job_id=chain)
        elif n == 3:
            _push(bea, "invoice", invoice, "failed", minutes_ago=0.4, bulk=bulk, outcome="failed", rq_job_id=chain,
                  error_message="Xero refused the invoice: the account code 200 is archived.")
        else:
            _push(bea, "invoice", invoice, "queued", bulk=bulk, rq_job_id=chain)

    una = _firm("Unconnected Partners", scenes.unconnected_admin, "Una Unconnected")
    una_client = _client(una, "Nobody Sent Ltd")
    rex = _firm("Reconnect LLP", scenes.reconnect_admin, "Rex Reconnect")
    _connection(rex, state="needs_reconnect",
                reason="Xero no longer accepts PlanMan's access (it was revoked or has expired).")
    rex_client = _client(rex, "Waiting Ltd")
    db.session.commit()

    scenes.pages = {
        "clients list": "/clients/", "new client": "/clients/new", "client": f"/clients/{acme.id}?panel=",
        "edit client": f"/clients/{acme.id}/edit", "invoices list": "/invoices/", "new invoice": "/invoices/new",
        "invoice": f"/invoices/{draft.id}?panel=", "edit invoice": f"/invoices/{draft.id}/edit",
        "setup": "/setup/", "firm settings": "/setup/firm", "users": "/setup/users", "new user": "/setup/users/new",
        "tax rates": "/setup/tax-rates", "new tax rate": "/setup/tax-rates/new", "integrations": "/integrations/",
        "xero settings": "/integrations/xero", "bulk sends": "/integrations/bulk",
        "bulk progress": f"/integrations/bulk/{bulk.id}", "failed pushes": "/integrations/failed",
        "change password": "/account/password",
    }
    scenes.panels = {
        "never_sent": (f"/invoices/{draft.id}", scenes.admin),
        "pushing": (f"/clients/{evergreen.id}", scenes.admin),
        "sent": (f"/clients/{bright.id}", scenes.admin),
        "changed": (f"/clients/{carter.id}", scenes.admin),
        "failed": (f"/clients/{dunmore.id}", scenes.admin),
        "locked": (f"/invoices/{approved.id}", scenes.admin),
        "gone": (f"/invoices/{deleted.id}", scenes.admin),
        "changed_invoice": (f"/invoices/{changed_invoice.id}", scenes.admin),
        "needs_reconnect": (f"/clients/{rex_client.id}", scenes.reconnect_admin),
        "not_connected": (f"/clients/{una_client.id}", scenes.unconnected_admin),
    }
    return scenes
