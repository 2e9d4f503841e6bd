"""Payments recorded in PlanMan, recorded in Xero (issue 16), with Xero played by `responses`:
every request PlanMan sends is checked against Xero's official spec. The job runs in-process
(planman.payments.ledger); what the user sees is the invoice page."""
from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest
import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations.tokens import store_token
from planman.integrations.xero import mapping
from planman.models import Connection, ExternalLink, Payment, PaymentLedgerLink, utcnow
from tests.conftest import csrf_token_from
from tests.helpers import make_client, make_invoice, post_form, signup
from tests.integration_helpers import form_fields
from tests.test_payments import record
from tests.test_payments_ledger import page, run_ledger_jobs
from tests.test_xero_connect import UK, connected, loaded_settings
from tests.xero_spec import xero_api  # noqa: F401

TENANT = "8a3b2c1d-0000-4000-8000-000000000001"
INVOICE_ID = "22222222-2222-4222-8222-222222222222"
PAYMENT_ID = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def invoice(user):
    return make_invoice(user, make_client(user), lines=((1, "100.00", None),), status="sent")


def connect(user, invoice, **settings):
    connection = Connection(firm_id=user.firm_id, provider="xero", state="connected", tenant_id=TENANT,
                            tenant_name="Demo Company (UK)", tenant_short_code="!dmoUK", connected_at=utcnow(),
                            settings={"sales_account_code": "200", "invoice_status": "AUTHORISED",
                                      "payment_account_code": "855", **settings})
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 1800})
    db.session.add(connection)
    db.session.add(ExternalLink(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=invoice.id, external_id=INVOICE_ID))
    db.session.commit()
    return connection


def xero_invoice(status="AUTHORISED"):
    return {"Invoices": [{"InvoiceID": INVOICE_ID, "Type": "ACCREC", "Status": status, "AmountDue": 120.0}]}


def xero_payment(reference, status="AUTHORISED", invoice_id=INVOICE_ID):
    return {"PaymentID": PAYMENT_ID, "Status": status, "Reference": reference, "Amount": 40.0,
            "Invoice": {"InvoiceID": invoice_id}}


def the_payment() -> Payment:
    return db.session.scalar(sa.select(Payment))


def test_a_payment_is_recorded_in_the_chosen_account_once(app, client, user, invoice, xero_api):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("x")]})
    record(client, invoice, amount="40.00", paid_on="2026-02-01")
    assert run_ledger_jobs(app) == ["xero: recorded"]

    payment = the_payment()
    [lookup] = xero_api.requests_to("GET", "/Payments")
    assert f'Reference=="PlanMan payment {payment.id}"' in unquote_plus(lookup.url)
    [create] = xero_api.requests_to("PUT", "/Payments")
    assert json.loads(create.body) == {"Payments": [{
        "Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "855"}, "Date": "2026-02-01", "Amount": 40.0,
        "Reference": f"PlanMan payment {payment.id}"}]}
    assert create.headers["Idempotency-Key"] == f"planman-payment-{payment.id}-record"
    assert db.session.scalar(sa.select(PaymentLedgerLink.external_id)) == PAYMENT_ID
    assert "Recorded in Xero" in page(client, invoice)
    calls = len(xero_api.calls)
    assert jobs.record_payment_in_ledger(payment.id) == "nothing to do"  # a duplicate job sends nothing
    assert len(xero_api.calls) == calls


def test_a_payment_xero_already_holds_is_not_created_again(app, client, user, invoice, xero_api):
    """What a retry after a lost answer sees: the first attempt's payment, found by reference."""
    connect(user, invoice)
    record(client, invoice, amount="40.00")
    reference = f"PlanMan payment {the_payment().id}"
    xero_api.add("GET", "/Payments", json={"Payments": [
        xero_payment(reference, status="DELETED") | {"PaymentID": "44444444-4444-4444-8444-444444444444"},
        xero_payment(reference, invoice_id="55555555-5555-4555-8555-555555555555")
        | {"PaymentID": "66666666-6666-4666-8666-666666666666"},
        xero_payment(reference)]})
    assert run_ledger_jobs(app) == ["xero: recorded"]
    assert xero_api.requests_to("PUT", "/Payments") == [] and xero_api.requests_to("GET", "/Invoices") == []
    assert db.session.scalar(sa.select(PaymentLedgerLink.external_id)) == PAYMENT_ID


@pytest.mark.parametrize("status, words", [
    ("DRAFT", "the invoice is still a draft there"),
    ("SUBMITTED", "the invoice is awaiting approval there"),
])
def test_an_invoice_not_approved_in_xero_says_what_to_do(app, client, user, invoice, xero_api, status, words):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice(status))
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: failed"]
    html = page(client, invoice)
    assert f"Not recorded in Xero: {words}" in html
    assert "Approve it in Xero, or send invoices as “Awaiting payment”" in html
    assert "then reverse this payment here and record it again, or record it in Xero by hand." in html
    assert xero_api.requests_to("PUT", "/Payments") == []


def test_after_approving_in_xero_reversing_and_recording_again_pays_once(app, client, user, invoice, xero_api):
    """What the refusal tells the user to do really works."""
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice("DRAFT"))
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice("AUTHORISED"))  # approved in Xero meanwhile
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("x")]})
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: failed"]
    refused = the_payment()
    client.post(f"/invoices/{invoice.id}/payments/{refused.id}/reverse",
                data={"csrf_token": csrf_token_from(page(client, invoice))})
    assert run_ledger_jobs(app) == []  # never recorded there, so nothing to take back
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: recorded"]
    [create] = xero_api.requests_to("PUT", "/Payments")
    assert json.loads(create.body)["Payments"][0]["Amount"] == 40.0
    assert "Recorded in Xero" in page(client, invoice)


def test_an_invoice_already_paid_in_xero_is_not_paid_twice(app, client, user, invoice, xero_api):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice("PAID"))
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: failed"]
    assert "the invoice is already paid there" in page(client, invoice)
    assert xero_api.requests_to("PUT", "/Payments") == []


def test_without_a_payment_account_the_job_says_to_choose_one(app, client, user, invoice, xero_api):
    connect(user, invoice, payment_account_code="")
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: failed"]
    assert "Not recorded in Xero: choose the account for payments received" in page(client, invoice)
    assert len(xero_api.calls) == 0


def test_xeros_refusal_is_shown_in_its_words(app, client, user, invoice, xero_api):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", status=400, json={
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": "Account type is invalid for making a payment to/from"}]}]})
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["xero: failed"]
    assert "Account type is invalid for making a payment to/from" in page(client, invoice)


def test_a_reversed_payment_is_deleted_in_xero(app, client, user, invoice, xero_api):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("x")]})
    xero_api.add("GET", f"/Payments/{PAYMENT_ID}", json={"Payments": [xero_payment("x")]})
    xero_api.add("POST", f"/Payments/{PAYMENT_ID}", json={"Payments": [xero_payment("x", status="DELETED")]})
    record(client, invoice, amount="40.00")
    run_ledger_jobs(app)
    payment = the_payment()
    client.post(f"/invoices/{invoice.id}/payments/{payment.id}/reverse",
                data={"csrf_token": csrf_token_from(page(client, invoice))})
    assert run_ledger_jobs(app) == ["xero: reversed"]
    [delete] = xero_api.requests_to("POST", f"/Payments/{PAYMENT_ID}")
    assert json.loads(delete.body) == {"Status": "DELETED"}
    assert delete.headers["Idempotency-Key"] == f"planman-payment-{payment.id}-reverse"
    assert "Reversed in Xero" in page(client, invoice)


def test_a_payment_already_deleted_in_xero_counts_as_reversed(app, client, user, invoice, xero_api):
    connect(user, invoice)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("x")]})
    xero_api.add("GET", f"/Payments/{PAYMENT_ID}", json={"Payments": [xero_payment("x", status="DELETED")]})
    record(client, invoice, amount="40.00")
    run_ledger_jobs(app)
    payment = the_payment()
    client.post(f"/invoices/{invoice.id}/payments/{payment.id}/reverse",
                data={"csrf_token": csrf_token_from(page(client, invoice))})
    assert run_ledger_jobs(app) == ["xero: reversed"]
    assert xero_api.requests_to("POST", "/Payments") == []


def test_a_card_payment_is_found_by_the_payment_providers_id():
    card = Payment(id=7, provider="stripe", provider_payment_id="pi_3Abc", amount=1, paid_on=None)
    manual = Payment(id=8, provider=None, provider_payment_id=None, amount=1, paid_on=None)
    assert mapping.payment_reference(card) == "pi_3Abc"
    assert mapping.payment_reference(manual) == "PlanMan payment 8"


def test_payment_accounts_are_bank_accounts_and_those_taking_payments():
    accounts = [{"Code": "090", "Name": "Bank", "Type": "BANK", "Status": "ACTIVE"},
                {"Code": "855", "Name": "Stripe clearing", "Type": "CURRLIAB", "Status": "ACTIVE",
                 "EnablePaymentsToAccount": True},
                {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"},
                {"Code": "091", "Name": "Old bank", "Type": "BANK", "Status": "ARCHIVED"}]
    assert mapping.payment_accounts(accounts) == [{"code": "090", "name": "Bank"},
                                                  {"code": "855", "name": "Stripe clearing"}]


# -- the setting --------------------------------------------------------------------------

def test_the_admin_picks_the_payment_account_from_xeros_bank_and_payment_accounts(client, user):
    connected(user, settings={**loaded_settings(UK), "xero_payment_accounts": [
        {"code": "090", "name": "Business Bank Account"}, {"code": "855", "name": "Stripe clearing"}]})
    page_html = client.get("/integrations/xero").get_data(as_text=True)
    assert "Account for payments received" in page_html
    assert 'value="855"' in page_html and "None: do not record payments in Xero" in page_html
    form = {**form_fields(page_html, "/integrations/xero/settings"), "invoice_status": "AUTHORISED"}
    form = {k: (v or "NONE") if k.startswith("tax_type_") else v for k, v in form.items()}

    bad = post_form(client, "/integrations/xero/settings", {**form, "payment_account_code": "200"},
                    form_url="/integrations/xero")
    assert bad.status_code == 422
    assert "Choose one of the bank or payment accounts your Xero organisation has." in bad.get_data(as_text=True)
    connection = db.session.scalar(sa.select(Connection))
    assert "payment_account_code" not in connection.settings

    good = post_form(client, "/integrations/xero/settings", {**form, "payment_account_code": "855"},
                     form_url="/integrations/xero", follow_redirects=True)
    assert "Xero settings saved." in good.get_data(as_text=True)
    db.session.expire_all()
    settings = db.session.scalar(sa.select(Connection)).settings
    assert (settings["payment_account_code"], settings["invoice_status"]) == ("855", "AUTHORISED")


# -- an account per payment method ----------------------------------------------------------

def _provider_payment(invoice, method: str) -> Payment:
    """A payment a payment provider reported (card or Direct Debit), as its webhook handler records it."""
    from planman.payments import services

    return services.record_provider_payment(invoice, provider="payments-provider", provider_payment_id=f"PAY-{method}",
                                            amount=invoice.total, method=method, state="succeeded")


@pytest.mark.parametrize("method, settings, account", [
    ("card", {"card_payment_account_code": "855", "direct_debit_payment_account_code": "856"}, "855"),
    ("direct_debit", {"card_payment_account_code": "855", "direct_debit_payment_account_code": "856"}, "856"),
    # A connection made before there was a choice per method: the account for payments received.
    ("direct_debit", {}, "090"),
    ("card", {"card_payment_account_code": ""}, "090"),
])
def test_each_payment_method_is_recorded_in_its_own_account(app, client, user, invoice, xero_api, method, settings,
                                                            account):
    connect(user, invoice, payment_account_code="090", **settings)
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("x")]})
    _provider_payment(invoice, method)
    assert run_ledger_jobs(app) == ["xero: recorded"]
    [create] = xero_api.requests_to("PUT", "/Payments")
    assert json.loads(create.body)["Payments"][0]["Account"] == {"Code": account}


def test_without_any_account_for_its_method_a_direct_debit_payment_is_not_recorded(app, client, user, invoice,
                                                                                    xero_api):
    connect(user, invoice, payment_account_code="", card_payment_account_code="855")
    _provider_payment(invoice, "direct_debit")
    assert run_ledger_jobs(app) == ["xero: failed"]
    assert "Not recorded in Xero: choose the account for payments received" in page(client, invoice)
    assert len(xero_api.calls) == 0


PAYMENT_ACCOUNTS = [{"code": "090", "name": "Business Bank Account"}, {"code": "855", "name": "Stripe clearing"},
                    {"code": "856", "name": "GoCardless clearing"}]


def _settings_form(client, user):
    connected(user, settings={**loaded_settings(UK), "payment_account_code": "090",
                              "xero_payment_accounts": PAYMENT_ACCOUNTS})
    page_html = client.get("/integrations/xero").get_data(as_text=True)
    form = {**form_fields(page_html, "/integrations/xero/settings"), "invoice_status": "AUTHORISED"}
    return page_html, {k: (v or "NONE") if k.startswith("tax_type_") else v for k, v in form.items()}


def test_the_admin_picks_an_account_for_card_and_for_direct_debit_payments(client, user):
    page_html, form = _settings_form(client, user)
    assert "Account for card payments" in page_html and "Account for Direct Debit payments" in page_html
    assert page_html.count("Same as payments received</option>") == 2
    assert "keep recording into the account for payments received until you pick one" in page_html
    # Unset on a connection made before: both say so, and nothing changes until the admin picks.
    assert (form["card_payment_account_code"], form["direct_debit_payment_account_code"]) == ("", "")

    good = post_form(client, "/integrations/xero/settings",
                     {**form, "card_payment_account_code": "855", "direct_debit_payment_account_code": "856"},
                     form_url="/integrations/xero", follow_redirects=True)
    assert "Xero settings saved." in good.get_data(as_text=True)
    db.session.expire_all()
    settings = db.session.scalar(sa.select(Connection)).settings
    assert (settings["payment_account_code"], settings["card_payment_account_code"],
            settings["direct_debit_payment_account_code"]) == ("090", "855", "856")
    again = client.get("/integrations/xero").get_data(as_text=True)
    assert form_fields(again, "/integrations/xero/settings")["direct_debit_payment_account_code"] == "856"


@pytest.mark.parametrize("field, value", [("card_payment_account_code", "200"),  # a sales account
                                          ("direct_debit_payment_account_code", "999"),  # not in Xero at all
                                          ("direct_debit_payment_account_code", "<script>")])
def test_an_account_xero_does_not_take_payments_into_is_refused_beside_its_field(client, user, field, value):
    _, form = _settings_form(client, user)
    bad = post_form(client, "/integrations/xero/settings", {**form, field: value}, form_url="/integrations/xero")
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert (f'<small class="error" id="{field}-error">Choose one of the bank or payment accounts your Xero '
            f'organisation has.</small>') in body
    assert "<script>" not in body
    db.session.expire_all()
    assert field not in db.session.scalar(sa.select(Connection)).settings


def test_a_method_account_gone_from_xero_is_dropped_so_its_payments_fall_back(app, user):
    from planman.integrations.xero import settings as xero_settings

    chosen = xero_settings.apply_default_choices(
        {"xero_payment_accounts": PAYMENT_ACCOUNTS[:2], "payment_account_code": "090",
         "card_payment_account_code": "855", "direct_debit_payment_account_code": "856"}, [])
    assert "direct_debit_payment_account_code" not in chosen and chosen["card_payment_account_code"] == "855"
    assert xero_settings.payment_account_for(chosen, "direct_debit") == "090"
    assert xero_settings.payment_account_for(chosen, "card") == "855"
    assert xero_settings.payment_account_for(chosen, "bank_transfer") == "090"


# -- what the integration panel says of a paid invoice ------------------------------------------

def xero_panel(client, invoice) -> str:
    return client.get(f"/integrations/xero/invoice/{invoice.id}/panel").get_data(as_text=True)


def test_the_panel_of_an_invoice_paid_after_it_was_sent_says_the_payment_is_recorded_in_xero(
        app, client, user, invoice, xero_api):
    connect(user, invoice)
    record(client, invoice, amount=str(invoice.total))
    db.session.expire_all()
    assert db.session.get(type(invoice), invoice.id).status == "paid"
    html = xero_panel(client, invoice)
    assert "Its payment is recorded in Xero by PlanMan: under Payments, each says whether Xero has it." in html
    assert "does not send payments" not in html and "does not record payments" not in html


def test_the_panel_of_an_invoice_paid_before_it_was_sent_says_to_record_the_payment_in_xero(
        app, client, user, invoice, xero_api):
    record(client, invoice, amount=str(invoice.total))  # paid while Xero was not connected
    connect(user, invoice)  # then connected, and the invoice sent
    html = xero_panel(client, invoice)
    assert ("Its payment was received before the invoice reached Xero (or while Xero was not connected), so "
            "PlanMan did not record it there: record it in Xero.") in html
    assert run_ledger_jobs(app) == [] and len(xero_api.calls) == 0  # and indeed nothing went to Xero
