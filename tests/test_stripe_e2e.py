"""Paid by card, recorded in Xero: end to end with real `rq worker` processes, the Xero and Stripe
stand-ins (one process, as `make run` starts them) and PlanMan served over HTTP, so the Stripe
stand-in's signed webhooks really arrive at /webhooks/stripe (issue 16)."""
from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection, Invoice, Payment, WebhookEvent
from standins.stripe.demo import UK_ACCOUNT_ID
from tests.fixtures.services import stripe_config, wait_until
from tests.helpers import make_client, make_invoice, signup
from tests.integration_helpers import choose_settings, connect_xero, wait_for_pushes
from tests.stripe_flows import connect_stripe, open_checkout, pay_by_card, pay_on_checkout, register_webhook
from tests.test_payments import record
from tests.test_payments_ledger import page
from tests.test_payments_page import make_link
from tests.test_push_e2e import organisation, press

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def config_overrides(stripe_standin_url):
    return stripe_config(stripe_standin_url)


@pytest.fixture
def app(integration_app):
    return integration_app


@pytest.fixture
def firm(client, sandbox, stripe_standin, live_server, rq_workers):
    """A firm connected to Xero (invoices sent as Awaiting payment, card payments into Stripe clearing,
    those recorded by hand into the bank account)
    and to Stripe's demo UK account, with PlanMan's webhook endpoint registered and 2 workers."""
    rq_workers.start(2)
    admin = signup(client, firm_name="Reid & Co Accountants")
    assert connect_xero(client, sandbox).status_code in (200, 302)
    choose_settings(admin.firm_id, invoice_status="AUTHORISED", payment_account_code="090",
                    card_payment_account_code="855")
    connection = connect_stripe(client, admin.firm_id, UK_ACCOUNT_ID)
    assert connection.tenant_id == UK_ACCOUNT_ID and connection.settings["stripe_account"]["charges_enabled"]
    register_webhook(client.application, stripe_standin.url, live_server)
    return admin


def sent_invoice(client, admin, sandbox, number: str):
    invoice = make_invoice(admin, make_client(admin, name=f"Client of {number}"), number=number,
                           lines=((1, "120.00", None),), status="sent")
    already = len(organisation(sandbox)["invoices"])  # counted before the push can land
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=already + 1)
    remote = [i for i in organisation(sandbox)["invoices"] if i["InvoiceNumber"] == number]
    assert [i["Status"] for i in remote] == ["AUTHORISED"]
    return invoice, remote[0]


def invoice_status(invoice) -> str:
    db.session.expire_all()
    return db.session.get(Invoice, invoice.id).status


def xero_payments(sandbox, remote) -> list[dict]:
    return [p for p in organisation(sandbox)["payments"] if p["Invoice"]["InvoiceID"] == remote["InvoiceID"]]


def test_4242_pays_the_invoice_in_planman_and_once_in_xero(client, firm, sandbox, stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1601")
    link = make_link(client, invoice)
    back = pay_by_card(link, "4242 4242 4242 4242")
    assert back.status_code == 303 and back.headers["Location"] == f"{link}?returned=stripe"
    confirming = requests.get(back.headers["Location"], timeout=10).text
    assert "being confirmed by Stripe" in confirming or "This invoice is paid" in confirming

    wait_until(lambda: invoice_status(invoice) == "paid", 30, "the webhook to mark the invoice paid")
    wait_until(lambda: "Recorded in Xero" in page(client, invoice), 30, "the payment to reach Xero")
    [payment] = db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert (payment.provider, payment.state, payment.amount, payment.method) == ("stripe", "succeeded",
                                                                                 invoice.total, "card")
    [xero_payment] = xero_payments(sandbox, remote)
    assert (xero_payment["Amount"], xero_payment["Account"]["Code"]) == (float(invoice.total), "855")
    assert xero_payment["Reference"] == payment.provider_payment_id and payment.provider_payment_id.startswith("pi_")
    assert [i["Status"] for i in organisation(sandbox)["invoices"] if i["InvoiceNumber"] == "INV-1601"] == ["PAID"]
    assert "This invoice is paid" in requests.get(link, timeout=10).text
    [intent] = [a for a in stripe_standin.state()["accounts"] if a["id"] == UK_ACCOUNT_ID][0]["payment_intents"]
    assert intent["id"] == payment.provider_payment_id and intent["metadata"]["planman_invoice_id"] == str(invoice.id)
    assert sandbox.violations() == []


def test_a_card_page_left_open_takes_nothing_once_the_invoice_is_paid_another_way(client, firm, sandbox,
                                                                                  stripe_standin):
    invoice, _remote = sent_invoice(client, firm, sandbox, "INV-1610")
    browser, checkout_url = open_checkout(make_link(client, invoice))  # left open in another tab
    assert record(client, invoice, amount=str(invoice.total)).status_code == 302  # paid by bank transfer

    def expired():
        return "This payment page has expired." in browser.get(checkout_url, timeout=10).text
    wait_until(expired, 30, "a worker to close the Checkout page at Stripe")
    late = pay_on_checkout(browser, checkout_url, "4242 4242 4242 4242")
    assert late.status_code == 409
    account = [a for a in stripe_standin.state()["accounts"] if a["id"] == UK_ACCOUNT_ID][0]
    assert account["payment_intents"] == []
    assert [p.method for p in db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id))] == \
        ["bank_transfer"]


def test_a_declined_card_leaves_the_invoice_unpaid_with_the_reason(client, firm, sandbox, stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1602")
    declined = pay_by_card(make_link(client, invoice), "4000 0000 0000 0002")
    assert declined.status_code == 402 and "Your card was declined." in declined.text

    def failed():
        db.session.expire_all()
        return db.session.scalar(sa.select(Payment.state).where(Payment.invoice_id == invoice.id)) == "failed"
    wait_until(failed, 30, "the failed payment to be recorded")
    html = page(client, invoice)
    assert "Your card was declined." in html
    assert invoice_status(invoice) == "sent" and xero_payments(sandbox, remote) == []


def test_duplicate_and_reordered_deliveries_still_make_one_payment(client, firm, sandbox, stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1603")
    stripe_standin.control("webhooks", paused=True, duplicate_next=10)
    assert pay_by_card(make_link(client, invoice), "4242424242424242").status_code == 303
    attempts = stripe_standin.control("webhooks/flush", order="reverse")["attempts"]
    # Every event twice, the session's completion first: the reverse of how they happened.
    assert [a["event_type"] for a in attempts][:2] == ["checkout.session.completed"] * 2
    assert all(a["delivered"] for a in attempts) and len(attempts) == 2 * len({a["event_id"] for a in attempts})

    wait_until(lambda: "Recorded in Xero" in page(client, invoice), 30, "the payment to reach Xero")
    assert invoice_status(invoice) == "paid"
    assert len(db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id)).all()) == 1
    assert len(xero_payments(sandbox, remote)) == 1
    kept = db.session.scalars(sa.select(WebhookEvent.event_id).where(WebhookEvent.provider == "stripe")).all()
    assert len(kept) == len(set(kept))  # each event stored once, however often delivered


def test_deliveries_planman_cannot_verify_are_refused_and_retried_until_it_can(client, firm, sandbox,
                                                                               stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1604")
    secret = client.application.config["STRIPE_WEBHOOK_SECRET"]
    client.application.config["STRIPE_WEBHOOK_SECRET"] = "whsec_not_the_endpoints"  # a rotated secret, say
    stripe_standin.control("webhooks", paused=True)
    assert pay_by_card(make_link(client, invoice), "4242424242424242").status_code == 303
    refused = stripe_standin.control("webhooks/flush")["attempts"]
    assert refused and {a["status"] for a in refused} == {401} and not any(a["delivered"] for a in refused)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0  # nothing kept
    assert invoice_status(invoice) == "sent"

    client.application.config["STRIPE_WEBHOOK_SECRET"] = secret
    retried = stripe_standin.control("webhooks/flush")["attempts"]  # the stand-in's retries, brought forward
    assert {a["attempt"] for a in retried} == {2} and all(a["delivered"] for a in retried)
    wait_until(lambda: "Recorded in Xero" in page(client, invoice), 30, "the payment to reach Xero")
    assert invoice_status(invoice) == "paid" and len(xero_payments(sandbox, remote)) == 1


def settle_now(stripe_standin, session_id: str) -> None:
    stripe_standin.control(f"checkout/sessions/{session_id}/settle")


def the_payment(invoice) -> Payment:
    db.session.expire_all()
    return db.session.scalar(sa.select(Payment).where(Payment.invoice_id == invoice.id))


def test_a_payment_that_confirms_later_pays_only_when_stripe_confirms(client, firm, sandbox, stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1605")
    stripe_standin.control("async", seconds=None)  # confirmed when the test says, not after 5 s
    back = pay_by_card(make_link(client, invoice), "4000 0025 0000 1001")
    assert back.status_code == 303
    # checkout.session.completed arrives unpaid and is processed: nothing is marked paid yet.
    def processed(event_type):
        db.session.expire_all()
        return db.session.scalar(sa.select(WebhookEvent.state).where(WebhookEvent.event_type == event_type)) \
            == "processed"
    wait_until(lambda: processed("checkout.session.completed"), 30, "the unpaid completion to be processed")
    assert invoice_status(invoice) == "sent" and xero_payments(sandbox, remote) == []
    [session] = [a for a in stripe_standin.state()["accounts"] if a["id"] == UK_ACCOUNT_ID][0]["checkout_sessions"]
    settle_now(stripe_standin, session["id"])
    wait_until(lambda: invoice_status(invoice) == "paid", 30, "async_payment_succeeded to pay the invoice")
    wait_until(lambda: len(xero_payments(sandbox, remote)) == 1, 30, "the payment to reach Xero")


def test_a_payment_that_fails_later_leaves_the_invoice_unpaid_with_the_reason(client, firm, sandbox,
                                                                              stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1610")
    stripe_standin.control("async", seconds=None)
    assert pay_by_card(make_link(client, invoice), "4000 0025 0000 1019").status_code == 303
    [session] = [a for a in stripe_standin.state()["accounts"] if a["id"] == UK_ACCOUNT_ID][0]["checkout_sessions"]
    settle_now(stripe_standin, session["id"])
    wait_until(lambda: (the_payment(invoice) is not None and the_payment(invoice).state == "failed"), 30,
               "async_payment_failed to be processed")
    assert "The payment could not be confirmed by the bank." in page(client, invoice)
    assert invoice_status(invoice) == "sent" and xero_payments(sandbox, remote) == []


def test_a_refund_in_stripe_reverses_the_payment_here_and_in_xero(client, firm, sandbox, stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1606")
    pay_by_card(make_link(client, invoice), "4242424242424242")
    wait_until(lambda: "Recorded in Xero" in page(client, invoice), 30, "the payment to reach Xero")
    stripe_standin.control(f"charges/{the_payment(invoice).provider_payment_id}/refund")  # from the dashboard
    wait_until(lambda: the_payment(invoice).state == "refunded", 30, "charge.refunded to be processed")
    wait_until(lambda: "Reversed in Xero" in page(client, invoice), 30, "the Xero payment to be reversed")
    assert invoice_status(invoice) == "sent"
    assert [p["Status"] for p in xero_payments(sandbox, remote)] == ["DELETED"]
    assert "Refunded in Stripe." in page(client, invoice)


def test_a_dispute_flags_the_payment_with_what_to_do(client, firm, sandbox, stripe_standin):
    invoice, _remote = sent_invoice(client, firm, sandbox, "INV-1607")
    pay_by_card(make_link(client, invoice), "4242424242424242")
    wait_until(lambda: invoice_status(invoice) == "paid", 30, "the webhook to mark the invoice paid")
    stripe_standin.control(f"charges/{the_payment(invoice).provider_payment_id}/dispute", reason="fraudulent")
    wait_until(lambda: the_payment(invoice).state == "disputed", 30, "charge.dispute.created to be processed")
    assert "Disputed by the card holder (fraudulent): respond in Stripe." in page(client, invoice)


def test_a_lost_answer_on_the_xero_payment_write_still_ends_as_one_xero_payment(client, firm, sandbox,
                                                                                 stripe_standin):
    invoice, remote = sent_invoice(client, firm, sandbox, "INV-1608")
    sandbox.control("faults", drop_next_writes=1)  # Xero saves the payment; PlanMan never hears so
    pay_by_card(make_link(client, invoice), "4242424242424242")
    wait_until(lambda: "Recorded in Xero" in page(client, invoice), 90, "the retried payment to reach Xero")
    assert sandbox.stats()["lost_responses"] == 1
    [xero_payment] = xero_payments(sandbox, remote)
    assert xero_payment["Reference"] == the_payment(invoice).provider_payment_id


def test_disconnecting_in_the_stripe_dashboard_disconnects_the_firm(client, firm, sandbox, stripe_standin):
    invoice, _remote = sent_invoice(client, firm, sandbox, "INV-1609")
    link = make_link(client, invoice)
    assert "Pay by card" in requests.get(link, timeout=10).text
    stripe_standin.control(f"accounts/{UK_ACCOUNT_ID}/deauthorize")

    def disconnected():
        db.session.expire_all()
        return db.session.scalar(sa.select(Connection.state).where(
            Connection.provider == "stripe", Connection.firm_id == firm.firm_id)) == "disconnected"
    wait_until(disconnected, 30, "account.application.deauthorized to disconnect the firm")
    wait_until(lambda: "Not connected" in client.get("/integrations/stripe").get_data(as_text=True), 10,
               "the Stripe page to say so")
    html = client.get("/integrations/stripe").get_data(as_text=True)
    assert "Not connected" in html and "Disconnected from Stripe&#39;s side (in the Stripe dashboard)." in html
    assert "Pay by card" not in requests.get(link, timeout=10).text
