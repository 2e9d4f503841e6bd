"""Sage Send / Update through PlanMan's own doors, with Sage played by `responses`:
requests are captured as Sage would receive them; RQ jobs run in-process."""
from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import sqlalchemy as sa
from rq import SimpleWorker

from planman.extensions import db
from planman.integrations.tokens import store_token
from planman.models import Connection, ExternalLink, PushJob
from tests.helpers import (client, committed_rows, htmx_post, make_client, make_invoice, post_form,  # noqa: F401
                           signup, tax_rate)
from tests.integration_helpers import form_fields

API = "https://api.sage.test/v3.1"
TOKEN = "https://oauth.sage.test"
BUSINESS = "2473af58f118554eb7792a3965854c22"


@pytest.fixture
def config_overrides():
    return {"SAGE_CLIENT_ID": "sage-client", "SAGE_CLIENT_SECRET": "sage-secret",
            "SAGE_AUTH_URL": "https://www.sage.test/oauth2/auth/central", "SAGE_TOKEN_URL": TOKEN,
            "SAGE_API_URL": API}


@pytest.fixture
def sage():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def firm(client):
    admin = signup(client)
    connection = Connection(firm_id=admin.firm_id, provider="sage", state="connected", tenant_id=BUSINESS,
                            tenant_name="Demo Bookkeeping Ltd (GB)",
                            settings={"ledger_account_id": "acc-4000", "no_tax_rate_id": "GB_NO_TAX",
                                      "tax_rates": {}, "details_state": "loaded"})
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 300,
                             "refresh_token_expires_in": 2678400})
    db.session.add(connection)
    db.session.commit()
    return admin, connection


def press(client, record_type, record_id):
    return htmx_post(client, f"/integrations/sage/{record_type}/{record_id}/panel", {})


def panel(client, record_type, record_id):
    return client.get(f"/integrations/sage/{record_type}/{record_id}/panel").get_data(as_text=True)


def run_jobs(app):
    SimpleWorker([app.push_queue], connection=app.redis).work(burst=True)


def listing(items):
    return {"$total": len(items), "$page": 1, "$next": None, "$back": None, "$itemsPerPage": 200, "$items": items}


def echo(business=BUSINESS):
    return {"X-Business": business}


def sent(mock, method, pattern):
    return [json.loads(c.request.body) for c in mock.calls
            if c.request.method == method and re.search(pattern, c.request.url)]


def test_send_a_client_looks_up_its_reference_then_creates_a_customer_with_x_business(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme.test")
    sage.get(f"{API}/contacts", json=listing([{"id": "c-9", "name": "Acme Ltd", "reference": customer.reference + "X"}]),
             headers=echo())
    sage.post(f"{API}/contacts", json={"id": "c-1", "name": "Acme Ltd"}, status=201, headers=echo())

    press(client, "client", customer.id)
    run_jobs(app)

    lookup = sage.calls[0].request
    assert parse_qs(urlsplit(lookup.url).query)["search"] == [customer.reference]
    assert all(c.request.headers["X-Business"] == BUSINESS for c in sage.calls)
    [body] = sent(sage, "POST", "/contacts$")
    assert body["contact"]["contact_type_ids"] == ["CUSTOMER"] and body["contact"]["reference"] == customer.reference
    link = db.session.scalar(sa.select(ExternalLink))
    assert link.external_id == "c-1" and ">Update<" in panel(client, "client", customer.id)


def test_a_country_sage_cannot_take_is_said_on_the_panel_before_sending(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", country="United Kingdom")
    html = panel(client, "client", customer.id)
    assert ("Sage takes the country as a two-letter code (such as GB or IE), so “United Kingdom” is not sent: "
            "edit the client to use one.") in html
    assert ">Send<" in html  # a warning, not a refusal: the rest of the contact can go


def test_an_invoice_in_another_currency_than_the_business_is_not_sent(app, client, firm, sage):
    """Sage would book it at an exchange rate PlanMan does not have: said before Send, refused on it."""
    admin, connection = firm
    connection.settings = {**connection.settings, "sage_currency": "GBP"}
    db.session.commit()
    invoice = make_invoice(admin, make_client(admin, name="Acme Inc"), number="INV-7")
    invoice.currency = "USD"
    db.session.commit()
    words = ("Your Sage business works in GBP, and PlanMan sends invoices to Sage only in that currency: Sage "
             "would need an exchange rate for USD, which PlanMan does not keep.")
    assert words in panel(client, "invoice", invoice.id)

    press(client, "invoice", invoice.id)
    run_jobs(app)
    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "failed" and words in push.error_message and "currency" in push.error_fields
    assert len(sage.calls) == 0  # not even the client was sent


def test_an_invoice_created_without_an_id_in_the_answer_is_not_shown_as_sent(app, client, firm, sage):
    """A 201 that names no invoice is no success: nothing is linked, and the
    panel says so instead of offering an Update of nothing."""
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    sage.get(f"{API}/contacts", json=listing([]), headers=echo())
    sage.post(f"{API}/contacts", json={"id": "c-1"}, status=201, headers=echo())
    sage.get(f"{API}/sales_invoices", json=listing([]), headers=echo())
    sage.post(f"{API}/sales_invoices", json={"invoice_number": "INV-1"}, status=201, headers=echo())

    press(client, "invoice", invoice.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob).where(PushJob.record_type == "invoice"))
    assert push.state == "retrying" and "without saying which record it saved" in push.error_message
    assert db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice")) is None
    html = panel(client, "invoice", invoice.id)
    assert "without saying which record it saved" in html and ">Update<" not in html


def test_an_answer_for_another_business_stops_the_push_and_records_nothing(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    sage.get(f"{API}/contacts", json=listing([]), headers=echo("9be11c1cc69157f4ba4f5ecb0d8205ae"))

    press(client, "client", customer.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "failed" and "different business" in push.error_message
    assert sent(sage, "POST", "/contacts") == [] and db.session.scalar(sa.select(ExternalLink)) is None


def test_sages_error_array_is_shown_beside_the_field_its_source_names(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme")
    sage.get(f"{API}/contacts", json=listing([]), headers=echo())
    sage.post(f"{API}/contacts", status=422, headers=echo(), json=[
        {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "Email is not a valid address",
         "$source": "main_contact_person.email"}])

    press(client, "client", customer.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "failed" and push.error_fields == {"email": ["Email is not a valid address"]}
    assert "Email is not a valid address" in panel(client, "client", customer.id)


def test_an_invoice_whose_new_client_sage_refuses_says_it_was_the_client(app, client, firm, sage):
    """The refusal's words are about the contact: the invoice's panel says so, as a bulk send does."""
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme")
    invoice = make_invoice(admin, customer, number="INV-1")
    sage.get(f"{API}/contacts", json=listing([]), headers=echo())
    sage.post(f"{API}/contacts", status=422, headers=echo(), json=[
        {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "Email is not a valid address",
         "$source": "main_contact_person.email"}])

    press(client, "invoice", invoice.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob).where(PushJob.record_type == "invoice"))
    assert push.state == "failed"
    assert push.error_message == "Its client could not be sent to Sage: Email is not a valid address"
    assert "Its client could not be sent to Sage: Email is not a valid address" in panel(client, "invoice", invoice.id)
    assert sent(sage, "POST", "/sales_invoices") == []


def test_a_429_waits_for_retry_after_instead_of_calling_again(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    sage.get(f"{API}/contacts", status=429, headers={"Retry-After": "42", **echo()},
             json=[{"$severity": "error", "$dataCode": "TooManyRequests", "$message": "Too many requests"}])

    press(client, "client", customer.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "retrying" and 40 <= (push.next_attempt_at - push.started_at).total_seconds() <= 45
    assert len(sage.calls) == 1


def sent_before(admin, customer, invoice, *, invoice_status: str) -> None:
    """The client as c-1 and the invoice as i-1 in Sage, as earlier pushes left them."""
    for record_type, record_id, external in (("client", customer.id, "c-1"), ("invoice", invoice.id, "i-1")):
        db.session.add(ExternalLink(firm_id=admin.firm_id, provider="sage", tenant_id=BUSINESS,
                                    record_type=record_type, record_id=record_id, external_id=external,
                                    remote_status=invoice_status if record_type == "invoice" else "",
                                    record_revision=0))
    db.session.commit()


def test_a_paid_invoice_in_sage_is_not_edited_and_the_panel_says_why(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    sent_before(admin, customer, invoice, invoice_status="DRAFT")
    sage.get(f"{API}/sales_invoices/i-1", headers=echo(),
             json={"id": "i-1", "invoice_number": "INV-1", "status": {"id": "PAID", "displayed_as": "Paid"}})

    press(client, "invoice", invoice.id)
    run_jobs(app)

    assert sent(sage, "PUT", "sales_invoices") == []
    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "failed" and push.outcome == "locked"
    assert "a payment is recorded against it" in panel(client, "invoice", invoice.id)


def test_an_invoice_voided_in_sage_offers_send_again_as_a_new_draft(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    sent_before(admin, customer, invoice, invoice_status="UNPAID")
    sage.get(f"{API}/sales_invoices/i-1", headers=echo(),
             json={"id": "i-1", "invoice_number": "INV-1", "status": {"id": "VOID", "displayed_as": "Void"}})

    press(client, "invoice", invoice.id)  # an Update finds it voided there: nothing is changed
    run_jobs(app)
    assert sent(sage, "PUT", "sales_invoices") == []
    html = panel(client, "invoice", invoice.id)
    assert "This invoice was voided in Sage, so nothing was changed there." in html
    assert ">Send again as a new draft<" in html  # not a dead end

    # Send again: a new draft with the number it now has, the voided one left alone.
    invoice.number = "INV-1A"
    db.session.commit()
    sage.get(f"{API}/sales_invoices", json=listing([]), headers=echo())
    sage.post(f"{API}/sales_invoices", json={"id": "i-2", "invoice_number": "INV-1A", "status": {"id": "DRAFT"}},
              status=201, headers=echo())
    press(client, "invoice", invoice.id)
    run_jobs(app)
    [created] = sent(sage, "POST", "/sales_invoices$")
    assert created["sales_invoice"]["invoice_number"] == "INV-1A"
    assert db.session.scalar(sa.select(ExternalLink.external_id).where(ExternalLink.record_type == "invoice")) == "i-2"
    assert ">Update<" in panel(client, "invoice", invoice.id)


def test_an_invoice_number_used_for_another_contact_is_refused_beside_the_number(app, client, firm, sage):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    sage.get(f"{API}/contacts", json=listing([]), headers=echo())
    sage.post(f"{API}/contacts", json={"id": "c-1"}, status=201, headers=echo())
    sage.get(f"{API}/sales_invoices", headers=echo(), json=listing([
        {"id": "i-9", "invoice_number": "INV-1", "contact": {"id": "someone-else"}, "status": {"id": "DRAFT"}}]))

    press(client, "invoice", invoice.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob).where(PushJob.record_type == "invoice"))
    assert push.state == "failed" and "number" in push.error_fields
    assert sent(sage, "POST", "/sales_invoices") == [] and sent(sage, "PUT", "/sales_invoices") == []


def test_a_refused_refresh_reads_needs_reconnecting(app, client, firm, sage):
    admin, connection = firm
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 10})
    db.session.commit()
    customer = make_client(admin, name="Acme Ltd")
    sage.post(f"{TOKEN}/token", status=400, json={"error": "invalid_grant"})

    press(client, "client", customer.id)
    run_jobs(app)

    assert db.session.get(Connection, connection.id).state == "needs_reconnect"
    refresh = parse_qs(sage.calls[0].request.body)
    assert refresh["grant_type"] == ["refresh_token"] and refresh["client_secret"] == ["sage-secret"]
    assert "Reconnect" in panel(client, "client", customer.id)


def test_the_settings_page_warns_beside_a_rate_of_another_percentage_and_refuses_one_sage_lacks(app, client, firm):
    admin, connection = firm
    vat = tax_rate(admin, "VAT 20%")
    connection.settings = {**connection.settings,
                           "sage_ledger_accounts": [{"id": "acc-4000", "code": "4000", "name": "Sales"}],
                           "sage_tax_rates": [{"id": "GB_STANDARD", "name": "Standard", "rate": "20.00"},
                                              {"id": "GB_LOWER", "name": "Lower", "rate": "5.00"},
                                              {"id": "GB_NO_TAX", "name": "No Tax", "rate": "0.00"}],
                           "tax_rates": {str(vat.id): "GB_LOWER"}}
    db.session.commit()

    page = client.get("/integrations/sage").get_data(as_text=True)
    assert f'id="tax_rate_{vat.id}-mismatch">Sage&#39;s “Lower” is 5%, but VAT 20% is 20% in PlanMan' in page

    fields = form_fields(page, "/integrations/sage/settings")
    fields[f"tax_rate_{vat.id}"] = "GB_MADE_UP"
    refused = post_form(client, "/integrations/sage/settings", fields, form_url="/integrations/sage")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Choose one of the tax rates your Sage business has." in html
    assert db.session.get(Connection, connection.id).settings["tax_rates"] == {str(vat.id): "GB_LOWER"}  # kept


def test_a_keep_alive_too_late_says_why_in_the_commit_that_marks_the_connection(app, client, firm, sage):
    """Sage refuses a refresh token that lived out its 31 days unused: the
    connection reads "went unused" from the first commit, never just "refused"."""
    from planman.integrations import keepalive

    admin, connection = firm
    issued = time.time() - 32 * 86400
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 300,
                             "issued_at": issued, "refresh_expires_at": issued + 31 * 86400})
    db.session.commit()
    sage.post(f"{TOKEN}/token", status=400, json={"error": "invalid_grant"})

    with committed_rows(Connection.state, Connection.state_reason) as commits:
        assert keepalive.keep_alive(connection.id) == "needs reconnecting"

    [(state, reason)] = commits[-1]
    assert state == "needs_reconnect" and "went unused for 31 days" in reason
    assert [rows for rows in commits if ("needs_reconnect", reason) not in rows and
            any(s == "needs_reconnect" for s, _ in rows)] == []  # never marked with another reason first
    page = client.get("/integrations/sage").get_data(as_text=True)
    assert "Needs reconnecting" in page and "went unused for 31 days" in page
