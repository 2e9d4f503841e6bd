"""What a bookkeeper does in Xero shows in PlanMan with no panel opened (issue 17), end to
end: the Xero stand-in (its own process) signs and delivers webhooks to a live PlanMan,
and real rq workers fetch what changed. The bookkeeper acts through the stand-in's page."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from config import TestConfig
from planman.extensions import db
from planman.models import Connection, ExternalLink, Invoice, Payment, WebhookEvent
from standins.xero.demo import UK_TENANT_ID
from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401
from tests.fixtures.services import wait_until
from tests.helpers import make_client, make_invoice
from tests.integration_helpers import choose_settings, wait_for_pushes
from tests.test_push_e2e import organisation, press

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def subscribe(sandbox, live_server) -> dict:
    """The stand-in's webhook subscription, pointed at PlanMan (what `make run` does)."""
    return sandbox.control("webhooks/subscription", url=f"{live_server}/webhooks/xero",
                           key=TestConfig.XERO_WEBHOOK_KEY)


def bookkeeper(sandbox, path: str, **form):
    """A click on the stand-in's organisation page."""
    response = sandbox.http.post(f"{sandbox.url}/orgs/{UK_TENANT_ID}/{path}", data=form, allow_redirects=False,
                                 timeout=10)
    assert response.status_code == 302 and "error=" not in response.headers["Location"], response.headers
    return response


def invoice_link() -> ExternalLink:
    db.session.expire_all()
    return db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice"))


def invoice_status(invoice) -> str:
    db.session.expire_all()
    return db.session.get(Invoice, invoice.id).status


def test_approved_then_paid_in_xero_shows_approved_and_paid_with_no_panel_opened(client, connected, sandbox,
                                                                                 live_server):
    intent = subscribe(sandbox, live_server)
    assert intent["status"] == "active"  # PlanMan answered the probes 200 (signed) and 401 (not)
    assert [p["answered"] for p in intent["intent"]] == [200, 401, 200, 401]

    invoice = make_invoice(connected, make_client(connected, name="Acme Ltd"), number="INV-1700",
                           lines=((1, "100.00", None),), status="sent")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = organisation(sandbox)["invoices"]
    assert remote["Status"] == "DRAFT"

    bookkeeper(sandbox, f"invoices/{remote['InvoiceID']}/status", status="AUTHORISED")
    wait_until(lambda: invoice_link().remote_status == "AUTHORISED", 30, "PlanMan to hear of the approval")
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Awaiting payment" in page  # the tab's chip, panel closed

    bookkeeper(sandbox, f"invoices/{remote['InvoiceID']}/pay", amount=f"{remote['Total']:.2f}",
               reference="BACS 1700")
    wait_until(lambda: invoice_link().remote_status == "PAID" and invoice_status(invoice) == "paid",
               30, "PlanMan to hear of the payment")
    [payment] = db.session.scalars(sa.select(Payment)).all()
    [xero_payment] = organisation(sandbox)["payments"]
    assert (payment.provider, payment.provider_payment_id, payment.amount, payment.reference) == \
        ("xero", xero_payment["PaymentID"], invoice.total, "BACS 1700")
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "status-paid" in page and "BACS 1700" in page and f"Xero ({xero_payment['PaymentID']})" in page
    assert len(organisation(sandbox)["payments"]) == 1  # not echoed back into Xero
    connection = db.session.scalar(sa.select(Connection))
    assert connection.last_event_at is not None
    assert "Events from Xero last arrived" in client.get("/integrations/xero").get_data(as_text=True)
    assert sandbox.violations() == []


def test_a_payment_removed_and_a_contact_renamed_in_xero_show_in_planman(client, connected, sandbox, live_server):
    assert subscribe(sandbox, live_server)["status"] == "active"
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1701", lines=((1, "100.00", None),), status="sent")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)  # the invoice (its client is sent first, in the same push)
    org = organisation(sandbox)
    [remote] = org["invoices"]
    [contact] = org["contacts"]
    bookkeeper(sandbox, f"invoices/{remote['InvoiceID']}/status", status="AUTHORISED")
    bookkeeper(sandbox, f"invoices/{remote['InvoiceID']}/pay", amount="50.00", reference="Part")
    wait_until(lambda: db.session.scalar(sa.select(Payment)) is not None, 30, "the payment from Xero")
    [xero_payment] = organisation(sandbox)["payments"]
    bookkeeper(sandbox, f"payments/{xero_payment['PaymentID']}/delete")
    wait_until(lambda: db.session.scalar(sa.select(Payment.state)) == "reversed", 30, "the removal")
    assert db.session.get(Invoice, invoice.id).amount_paid == 0

    bookkeeper(sandbox, f"contacts/{contact['ContactID']}/rename", name="Acme Holdings")
    panel = lambda: client.get(f"/integrations/xero/client/{customer.id}/panel").get_data(as_text=True)  # noqa: E731
    wait_until(lambda: "Renamed in Xero" in panel(), 30, "the rename to show on the client's panel")
    bookkeeper(sandbox, f"contacts/{contact['ContactID']}/archive")
    wait_until(lambda: "This contact is archived in Xero" in panel(), 30, "the archive to show")
    assert sandbox.violations() == []


def test_when_xero_stops_delivering_the_catch_up_job_reads_the_payment_back(app, client, connected, sandbox,
                                                                           live_server):
    assert subscribe(sandbox, live_server)["status"] == "active"
    choose_settings(connected.firm_id, invoice_status="AUTHORISED")
    invoice = make_invoice(connected, make_client(connected, name="Acme Ltd"), number="INV-1702",
                           lines=((1, "100.00", None),), status="sent")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = organisation(sandbox)["invoices"]
    wait_until(lambda: db.session.scalar(sa.select(WebhookEvent.id)) is not None, 30, "the push's own event")

    sandbox.control("webhooks", paused=True)  # Xero stops delivering...
    bookkeeper(sandbox, f"invoices/{remote['InvoiceID']}/pay", amount=f"{remote['Total']:.2f}", reference="Late")
    assert sandbox.control("webhooks/drop")["dropped"] >= 1  # ...and gives up on what it held
    assert invoice_status(invoice) == "sent"

    result = app.test_cli_runner().invoke(args=["reconcile-ledgers"])  # what cron runs
    assert "1 catch-up job(s) queued." in result.output
    wait_until(lambda: invoice_status(invoice) == "paid", 30, "the catch-up to read the payment")
    assert invoice_link().remote_status == "PAID"
    assert [(p.provider, p.reference) for p in db.session.scalars(sa.select(Payment))] == [("xero", "Late")]
    wait_until(lambda: "Changes made in Xero were last read back" in client.get("/integrations/xero").get_data(
        as_text=True), 30, "the catch-up to finish")  # it records how far it got once every page is applied
    assert sandbox.violations() == []
