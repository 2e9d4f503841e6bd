"""Fault soak: four real `rq worker` processes push 300 mixed client and
invoice sends and updates to the Xero stand-in while it injects faults
(10% 500/503, 5% 429, 3% lost write responses, access tokens expired every
50 calls, latency spikes) and the connection is revoked, then reconnected
through the real connect flow, midway.

At the end: no duplicate contact or invoice in Xero; every push final
(succeeded, or failed with a reason, and then retried to success once the
faults stop); no invalid_grant from refresh races; every PlanMan record linked
to the right Xero record with matching totals. The figures are printed.

Xero's 60 calls a minute would make this a 20-minute test: both the stand-in
and PlanMan's throttle are raised to the same higher limit (5 in flight kept)."""
from __future__ import annotations

import collections
import re
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Client, Connection, ExternalLink, Invoice, PushJob
from tests.conftest import csrf_token_from
from tests.helpers import client, make_client, make_invoice, signup, tax_rate  # noqa: F401
from tests.integration_helpers import choose_settings, connect_xero, form_fields
from standins.xero.demo import UK_TENANT_ID

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLIENTS, INVOICES = 60, 90  # sent, then edited and updated: 300 pushes
PER_MINUTE = 5000
FAULTS = {"random": {"seed": 7, "error_rate": 0.10, "rate_limit_rate": 0.05, "lost_response_rate": 0.03,
                     "latency_spike_rate": 0.03, "latency_spike_ms": 400},
          "expire_tokens_every": 50}


@pytest.fixture
def config_overrides():
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999", "XERO_MAX_PER_MINUTE": PER_MINUTE}


@pytest.fixture
def app(integration_app):
    return integration_app




class Panel:
    """Presses Send / Update on record panels as a signed-in user would (HTMX POST with the CSRF header)."""

    def __init__(self, browser):
        self.browser = browser
        self.token = csrf_token_from(browser.get("/clients/").get_data(as_text=True))

    def press(self, record_type, record_id):
        response = self.browser.post(f"/integrations/xero/{record_type}/{record_id}/panel",
                                     headers={"HX-Request": "true", "X-CSRFToken": self.token})
        assert response.status_code == 200


def pushes():
    db.session.expire_all()
    return db.session.scalars(sa.select(PushJob).order_by(PushJob.id)).all()


def wait_final(expected, timeout, on_progress=None):
    deadline = time.monotonic() + timeout
    while True:
        rows = pushes()
        done = [p for p in rows if p.state in ("succeeded", "failed")]
        if on_progress:
            on_progress(len(done))
        if len(rows) >= expected and len(done) == len(rows):
            return rows
        assert time.monotonic() < deadline, (
            f"pushes not final after {timeout}s: {collections.Counter(p.state for p in rows)}")
        time.sleep(0.25)


def latest_per_record(rows):
    latest = {}
    for p in rows:
        latest[(p.record_type, p.record_id)] = p
    return latest


def edit(browser, url, change):
    fields = form_fields(browser.get(url).get_data(as_text=True), url)
    change(fields)
    response = browser.post(url, data=fields)
    errors = re.findall(r'<small class="error" id="([^"]+)">([^<]*)<', response.get_data(as_text=True))
    assert response.status_code == 302, (url, errors, fields)


def test_fault_soak(client, sandbox, rq_workers):
    started = time.monotonic()
    sandbox.control("limits", per_minute=PER_MINUTE, per_day=100000)
    rq_workers.start(4)
    admin = signup(client)
    connect_xero(client, sandbox)
    choose_settings(admin.firm_id)
    vat, reduced = tax_rate(admin, "VAT 20%"), tax_rate(admin, "VAT 5%")
    clients = [make_client(admin, name=f"Soak Client {i:03d}", email=f"c{i}@soak.example.com") for i in range(CLIENTS)]
    invoices = [make_invoice(admin, clients[i % CLIENTS], number=f"SOAK-{i:04d}",
                             lines=((i % 7 + 1, f"{13 + i}.37", vat), (3, "0.05", reduced), (1, "9.99", None)))
                for i in range(INVOICES)]
    records = [("client", c.id) for c in clients] + [("invoice", inv.id) for inv in invoices]
    records = records[::2] + records[1::2]  # clients and invoices interleaved
    panel = Panel(client)
    sandbox.control("faults", **FAULTS)

    # -- phase 1: send everything; revoke the connection a third of the way through, then reconnect
    for record in records:
        panel.press(*record)
    revoked = {}
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == admin.firm_id))

    def revoke_then_reconnect(done):
        if not revoked and done >= len(records) // 3:
            sandbox.control("revoke", tenant_id=UK_TENANT_ID)  # as if removed under Xero's Connected apps
            revoked["at"] = done
        elif "at" in revoked and "reconnected_at" not in revoked:
            db.session.expire_all()
            if db.session.get(Connection, connection.id).state == "needs_reconnect":  # PlanMan noticed
                page = connect_xero(client, sandbox)  # an admin reconnects through the consent page
                assert page.status_code in (200, 302)
                revoked["reconnected_at"] = len([p for p in pushes() if p.state in ("succeeded", "failed")])

    wait_final(len(records), 150, revoke_then_reconnect)
    assert "reconnected_at" in revoked, "PlanMan never noticed the revoked connection"
    db.session.expire_all()
    assert db.session.get(Connection, connection.id).state == "connected"

    # -- phase 2: edit every record (name, email; reference and a quantity) and press Update
    for c in clients:
        edit(client, f"/clients/{c.id}/edit", lambda f: f.update(name=f["name"] + " v2", email="v2." + f["email"]))
    for inv in invoices:
        def change(f):
            f["reference"] = "PO-" + f.get("number", "")
            f["lines-0-quantity"] = str(int(f["lines-0-quantity"]) + 1)
        edit(client, f"/invoices/{inv.id}/edit", change)
    for record in records:
        panel.press(*record)
    rows = wait_final(2 * len(records), 150)
    assert len(rows) == 300

    # -- every push final, failures with a reason; then retried to success without faults
    faults_stats = sandbox.stats()
    sandbox.control("faults/clear")
    outcome = collections.Counter(p.state for p in rows)
    failed = [p for p in rows if p.state == "failed"]
    assert all(p.error_message for p in failed), [p.id for p in failed if not p.error_message]
    reasons = collections.Counter(p.error_message.split(".")[0] for p in failed)
    # Every record that had a failed push, retried from its failed push (the admins' Retry button).
    to_retry = list({(p.record_type, p.record_id): p for p in failed}.values())
    token = csrf_token_from(client.get("/integrations/failed").get_data(as_text=True))
    for p in to_retry:
        response = client.post(f"/integrations/pushes/{p.id}/retry", data={"csrf_token": token})
        assert response.status_code == 302
    rows = wait_final(300 + len(to_retry), 90)
    latest = latest_per_record(rows)
    assert {p.state for p in latest.values()} == {"succeeded"}, [
        (k, p.error_message) for k, p in latest.items() if p.state != "succeeded"]

    # -- what Xero holds: no duplicates, every record linked to the right one, totals equal
    stats = sandbox.stats()
    [org] = [o for o in sandbox.state()["organisations"] if o["tenantId"] == UK_TENANT_ID]
    contacts, remote_invoices = org["contacts"], org["invoices"]
    assert len(contacts) == CLIENTS and len({c["Name"].lower() for c in contacts}) == CLIENTS
    assert len({c["ContactNumber"] for c in contacts}) == CLIENTS
    assert len(remote_invoices) == INVOICES and len({i["InvoiceNumber"] for i in remote_invoices}) == INVOICES
    contact_by_id = {c["ContactID"]: c for c in contacts}
    invoice_by_id = {i["InvoiceID"]: i for i in remote_invoices}
    links = {(l.record_type, l.record_id): l for l in db.session.scalars(sa.select(ExternalLink))}
    assert len(links) == CLIENTS + INVOICES
    for c in clients:
        c = db.session.get(Client, c.id)
        remote = contact_by_id[links[("client", c.id)].external_id]
        assert (remote["Name"], remote["ContactNumber"], remote["EmailAddress"]) == (c.name, c.reference, c.email)
    for inv in invoices:
        inv = db.session.get(Invoice, inv.id)
        remote = invoice_by_id[links[("invoice", inv.id)].external_id]
        assert remote["InvoiceNumber"] == inv.number and remote["Reference"] == inv.reference
        assert remote["Contact"]["ContactID"] == links[("client", inv.client_id)].external_id
        assert (Decimal(str(remote["Total"])), Decimal(str(remote["TotalTax"]))) == (inv.totals.total, inv.totals.tax)
        assert remote["Status"] == "DRAFT"
    assert stats["invalid_grants"] == 0
    assert sandbox.violations() == []

    print(f"\nSOAK {db.engine.dialect.name}: {len(rows)} pushes in {time.monotonic() - started:.0f}s with 4 workers; "
          f"300 under faults: {dict(outcome)}; every record with a failure retried after faults stopped: {len(to_retry)} -> all succeeded\n"
          f"  failure reasons: {dict(reasons)}\n"
          f"  connection revoked after {revoked['at']} of 150 sends were final; PlanMan marked it needs_reconnect "
          f"and it was reconnected through the consent page after {revoked['reconnected_at']}\n"
          f"  stand-in under faults: calls {sum(faults_stats['calls_per_tenant'].values())}, injected 5xx "
          f"{faults_stats['injected_5xx']}, 429s {faults_stats['rate_limited']}, lost responses "
          f"{faults_stats['lost_responses']}, token refreshes {faults_stats['refreshes']}, idempotent replays "
          f"{faults_stats['idempotent_replays']}, forbidden {faults_stats['forbidden']}\n"
          f"  end: contacts {len(contacts)}/{CLIENTS}, invoices {len(remote_invoices)}/{INVOICES}, duplicates 0, "
          f"invalid_grant {stats['invalid_grants']}, spec violations 0")
