"""A payment recorded in PlanMan ends as exactly one payment in Xero: end to end with real
`rq worker` processes and the Xero stand-in, driven through PlanMan's pages (issue 16)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import PaymentLedgerLink
from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401
from tests.fixtures.services import wait_until
from tests.helpers import make_client, make_invoice
from tests.integration_helpers import choose_settings, wait_for_pushes
from tests.test_payments import record
from tests.test_payments_ledger import page
from tests.test_push_e2e import organisation, press

pytestmark = pytest.mark.integration


def sent_and_approved(client, admin, sandbox):
    """An invoice sent to the stand-in as "Awaiting payment"; payments recorded by hand go to the bank
    account, card payments to Stripe clearing and Direct Debit ones to GoCardless clearing."""
    connection = choose_settings(admin.firm_id, invoice_status="AUTHORISED", payment_account_code="090",
                                 card_payment_account_code="855", direct_debit_payment_account_code="856")
    # What the settings pickers offer, as the worker loaded it from the stand-in.
    assert connection.settings["xero_payment_accounts"] == [
        {"code": "090", "name": "Business Bank Account"}, {"code": "855", "name": "Stripe clearing"},
        {"code": "856", "name": "GoCardless clearing"}]
    invoice = make_invoice(admin, make_client(admin, name="Acme Ltd"), number="INV-1600",
                           lines=((1, "100.00", None),), status="sent")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = organisation(sandbox)["invoices"]
    assert remote["Status"] == "AUTHORISED"
    return invoice, remote


def recorded(client, invoice):
    db.session.expire_all()
    return "Recorded in Xero" in page(client, invoice)


def test_a_manual_payment_ends_as_one_xero_payment_in_the_account_for_payments_received(client, connected,
                                                                                          sandbox):
    invoice, remote = sent_and_approved(client, connected, sandbox)
    record(client, invoice, amount="40.00", paid_on="2026-02-01")
    wait_until(lambda: recorded(client, invoice), 30, "the payment to be recorded in Xero")

    [payment] = organisation(sandbox)["payments"]
    assert (payment["Amount"], payment["Status"], payment["Account"]["Code"]) == (40.0, "AUTHORISED", "090")
    assert payment["Invoice"]["InvoiceID"] == remote["InvoiceID"]
    assert db.session.scalar(sa.select(PaymentLedgerLink.external_id)) == payment["PaymentID"]
    [after] = organisation(sandbox)["invoices"]
    assert (after["AmountPaid"], after["AmountDue"]) == (40.0, after["Total"] - 40.0)
    assert sandbox.violations() == []


def test_a_lost_answer_on_the_payment_write_still_ends_as_one_payment(client, connected, sandbox):
    invoice, remote = sent_and_approved(client, connected, sandbox)
    sandbox.control("faults", drop_next_writes=1)  # the payment is saved in Xero; PlanMan never hears so
    record(client, invoice, amount="40.00")
    # The job's retry (30 s later) finds the payment by its reference instead of paying again.
    wait_until(lambda: recorded(client, invoice), 90, "the retried payment to be recorded in Xero")

    assert sandbox.stats()["lost_responses"] == 1
    [payment] = organisation(sandbox)["payments"]
    assert payment["Amount"] == 40.0 and payment["Invoice"]["InvoiceID"] == remote["InvoiceID"]
    link = db.session.scalar(sa.select(PaymentLedgerLink))
    assert (link.external_id, link.attempts) == (payment["PaymentID"], 2)
    [after] = organisation(sandbox)["invoices"]
    assert after["AmountPaid"] == 40.0
    assert sandbox.violations() == []
