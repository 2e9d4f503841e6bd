"""Sage end to end: real Redis, real `rq worker --with-scheduler` processes and the
Sage stand-in, driven through PlanMan's pages, its consent page and the
``flask keep-connections-alive`` command (with short token lifetimes)."""
from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection, Invoice
from standins.sage.demo import GB_BUSINESS_ID, GB_NAME, IE_NAME, ledger_account_id
from tests.fixtures.services import sage_config
from tests.helpers import htmx_post, make_client, make_invoice, post_form, signup, tax_rate
from tests.integration_helpers import form_fields, wait_for_pushes

pytestmark = pytest.mark.integration


@pytest.fixture
def config_overrides(sage_url):
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999", **sage_config(sage_url)}


@pytest.fixture
def app(integration_app):
    return integration_app


def connect_sage(client, *, business=GB_BUSINESS_ID):
    """Connect to Sage, the stand-in's consent page (Allow), PlanMan's callback, the business picker."""
    start = post_form(client, "/integrations/sage/connect", {}, form_url="/integrations/sage")
    assert start.status_code == 302, start.get_data(as_text=True)
    consent = requests.get(start.headers["Location"], timeout=10)
    assert consent.status_code == 200 and GB_NAME in consent.text
    answer = requests.post(start.headers["Location"].split("?")[0], allow_redirects=False, timeout=10,
                           data={**form_fields(consent.text), "business_id": business, "decision": "allow"})
    back = urlsplit(answer.headers["Location"])
    picker = client.get(f"{back.path}?{back.query}")
    assert picker.status_code == 302 and picker.headers["Location"].endswith("/integrations/sage/choose")
    choose = client.get("/integrations/sage/choose").get_data(as_text=True)
    assert GB_NAME in choose and IE_NAME in choose
    assert post_form(client, "/integrations/sage/choose", {"tenant_id": business}).status_code == 302


def connection_of(firm_id) -> Connection:
    db.session.expire_all()
    return db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id))


def wait_until(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def loaded(firm_id):
    """Wait for Sage's lists; choose the income account (the one choice the admin must make)."""
    connection = wait_until(lambda: (c := connection_of(firm_id)).settings.get("details_state") == "loaded" and c,
                            "Sage's lists to load")
    connection.settings = {"ledger_account_id": ledger_account_id(GB_BUSINESS_ID, "4000"), **connection.settings}
    db.session.commit()
    return connection


def gb(standin):
    return next(b for b in standin.state()["businesses"] if b["id"] == GB_BUSINESS_ID)


def press(client, record_type, record_id):
    return htmx_post(client, f"/integrations/sage/{record_type}/{record_id}/panel", {})


def panel(client, record_type, record_id):
    return client.get(f"/integrations/sage/{record_type}/{record_id}/panel").get_data(as_text=True)


def keep_alive(app) -> str:
    return app.test_cli_runner().invoke(args=["keep-connections-alive"]).output


def test_connect_pick_the_business_choose_accounts_and_rates_then_send_and_update(app, client, sage_standin,
                                                                                    rq_workers):
    rq_workers.start(2)
    admin = signup(client)
    connect_sage(client)
    wait_until(lambda: connection_of(admin.firm_id).settings.get("details_state") == "loaded", "Sage's lists")
    page = client.get("/integrations/sage").get_data(as_text=True)
    assert f"Connected to <strong>{GB_NAME}</strong>" in page and "4000 · Sales Type A" in page
    vat = tax_rate(admin, "VAT 20%")
    fields = form_fields(page, "/integrations/sage/settings")
    # Several income accounts and two 0% rates: those are the admin's to choose.
    fields.update({name: "GB_ZERO" for name, value in fields.items() if name.startswith("tax_rate_") and not value})
    fields.update({"ledger_account_id": ledger_account_id(GB_BUSINESS_ID, "4001"), "no_tax_rate_id": "GB_NO_TAX",
                   f"tax_rate_{vat.id}": "GB_STANDARD"})
    saved = post_form(client, "/integrations/sage/settings", fields, form_url="/integrations/sage")
    assert saved.status_code == 302, saved.get_data(as_text=True)

    customer = make_client(admin, name="Brightside LLP", email="ap@brightside.test")
    invoice = make_invoice(admin, customer, number="INV-0100", lines=((3, "33.33", vat), (2, "19.99", None)))
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)

    held = gb(sage_standin)
    [contact] = held["contacts"]
    assert (contact["name"], contact["reference"]) == ("Brightside LLP", customer.reference)
    [remote] = held["sales_invoices"]
    assert (remote["invoice_number"], remote["status"]["id"]) == ("INV-0100", "DRAFT")
    assert Decimal(remote["total_amount"]) == db.session.get(Invoice, invoice.id).totals.total
    assert {line["ledger_account"]["id"] for line in remote["invoice_lines"]} == {
        ledger_account_id(GB_BUSINESS_ID, "4001")}
    assert [line["tax_rate"]["id"] for line in remote["invoice_lines"]] == ["GB_STANDARD", "GB_NO_TAX"]
    html = panel(client, "invoice", invoice.id)
    assert "Draft" in html and ">Update<" in html and f"/businesses/{GB_BUSINESS_ID}/sales_invoices/" in html

    edit = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    fields = form_fields(edit, f"/invoices/{invoice.id}/edit")
    fields["reference"] = "PO-991"
    assert client.post(f"/invoices/{invoice.id}/edit", data=fields).status_code == 302
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)
    [updated] = gb(sage_standin)["sales_invoices"]
    assert updated["id"] == remote["id"] and updated["reference"] == "PO-991"
    assert len(updated["invoice_lines"]) == 2 and updated["total_amount"] == remote["total_amount"]


def test_a_paid_invoice_in_sage_is_left_alone(app, client, sage_standin, rq_workers):
    rq_workers.start(1)
    admin = signup(client)
    connect_sage(client)
    loaded(admin.firm_id)
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-0200")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = gb(sage_standin)["sales_invoices"]
    token = requests.Session()
    # A bookkeeper releases the draft and records the customer's payment in Sage.
    from planman.integrations.tokens import load_token

    access = load_token(connection_of(admin.firm_id))["access_token"]
    released = token.post(f"{sage_standin.url}/v3.1/sales_invoices/{remote['id']}/release", timeout=10,
                          headers={"Authorization": f"Bearer {access}", "X-Business": GB_BUSINESS_ID})
    assert released.status_code == 200, released.text
    sage_standin.control(f"sales_invoices/{remote['id']}/payment")

    press(client, "invoice", invoice.id)
    pushes = wait_for_pushes(expected=2)
    assert pushes[-1].state == "failed" and "a payment is recorded against it" in pushes[-1].error_message
    assert gb(sage_standin)["sales_invoices"][0]["status"]["id"] == "PAID"
    assert "Paid" in panel(client, "invoice", invoice.id)


def test_a_quiet_connection_is_kept_alive_past_its_refresh_tokens_lifetime(app, client, sage_standin, rq_workers):
    rq_workers.start(1)
    sage_standin.control("lifetimes", refresh_token_seconds=10, access_token_seconds=2)
    admin = signup(client)
    connect_sage(client)
    loaded(admin.firm_id)
    issued = time.time()
    before = sage_standin.stats()["rotations"]

    time.sleep(max(0.0, issued + 6 - time.time()))  # past half the refresh token's life, nothing sent
    assert "1 connection(s) queued" in keep_alive(app)
    wait_until(lambda: sage_standin.stats()["rotations"] > before, "the keep-alive job to renew the tokens")

    time.sleep(max(0.0, issued + 11 - time.time()))  # the first refresh token would have died by now
    customer = make_client(admin, name="Still Connected Ltd")
    press(client, "client", customer.id)
    [push] = wait_for_pushes(expected=1)
    assert push.state == "succeeded", push.error_message
    assert connection_of(admin.firm_id).state == "connected"
    assert [c["name"] for c in gb(sage_standin)["contacts"]] == ["Still Connected Ltd"]


def test_too_late_reads_needs_reconnecting_with_the_reason(app, client, sage_standin, rq_workers):
    rq_workers.start(1)
    sage_standin.control("lifetimes", refresh_token_seconds=3)
    admin = signup(client)
    connect_sage(client)
    loaded(admin.firm_id)
    time.sleep(4)  # the refresh token dies unused (as after 31 quiet days)

    assert "1 connection(s) queued" in keep_alive(app)
    # The refused refresh marks the connection with why (the lifetime ran out), in one commit.
    connection = wait_until(lambda: (c := connection_of(admin.firm_id)).state == "needs_reconnect" and c,
                            "the connection to need reconnecting")
    assert "went unused" in connection.state_reason
    page = client.get("/integrations/sage").get_data(as_text=True)
    assert "Needs reconnecting" in page and "went unused" in page and "Reconnect to Sage" in page
    customer = make_client(admin, name="Acme Ltd")
    assert "needs reconnecting" in panel(client, "client", customer.id).lower()
