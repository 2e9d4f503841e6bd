"""Send / Update end to end: real Redis, real `rq worker --with-scheduler`
processes and the Xero stand-in, driven through PlanMan's own pages."""
from __future__ import annotations

from decimal import Decimal

import pytest

import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.tokens import load_token
from planman.models import Connection, Invoice
from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401
from tests.helpers import htmx_post, make_client, make_invoice, tax_rate
from tests.integration_helpers import form_fields, wait_for_pushes
from standins.xero.demo import UK_TENANT_ID

pytestmark = pytest.mark.integration


def organisation(sandbox, tenant_id=UK_TENANT_ID):
    return next(o for o in sandbox.state()["organisations"] if o["tenantId"] == tenant_id)


def panel(client, record_type, record_id):
    return client.get(f"/integrations/xero/{record_type}/{record_id}/panel").get_data(as_text=True)


def typed_into_xero(sandbox, admin, contact):
    """A contact a bookkeeper created in Xero (through the API, with PlanMan's access)."""
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == admin.firm_id))
    headers = {"Authorization": f"Bearer {load_token(connection)['access_token']}", "xero-tenant-id": UK_TENANT_ID,
               "Accept": "application/json"}
    answer = sandbox.http.put(f"{sandbox.url}/api.xro/2.0/Contacts", headers=headers,
                              json={"Contacts": [contact]}, timeout=10)
    assert answer.status_code == 200, answer.text


def press(client, record_type, record_id):
    return htmx_post(client, f"/integrations/xero/{record_type}/{record_id}/panel", {})


def test_send_a_client_then_the_button_says_update(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd", email="accounts@acme.test")
    assert ">Send<" in panel(client, "client", customer.id)

    press(client, "client", customer.id)
    wait_for_pushes(expected=1)

    page = panel(client, "client", customer.id)
    assert ">Update<" in page and "View in Xero" in page
    contacts = organisation(sandbox)["contacts"]
    assert [(c["Name"], c["ContactNumber"], c["EmailAddress"]) for c in contacts] == [
        ("Acme Ltd", customer.reference, "accounts@acme.test")]
    assert sandbox.violations() == []


def test_invoice_brings_its_client_and_arrives_as_a_draft_with_the_same_total(client, connected, sandbox):
    customer = make_client(connected, name="Brightside LLP")
    vat = tax_rate(connected, "VAT 20%")
    invoice = make_invoice(connected, customer, number="INV-0100",
                           lines=((3, "33.33", vat), (1, "0.05", vat), (2, "19.99", None)))

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)

    org = organisation(sandbox)
    assert [c["Name"] for c in org["contacts"]] == ["Brightside LLP"]
    [remote] = org["invoices"]
    assert remote["Status"] == "DRAFT" and remote["InvoiceNumber"] == "INV-0100"
    totals = db.session.get(Invoice, invoice.id).totals
    assert Decimal(str(remote["Total"])) == totals.total
    assert Decimal(str(remote["TotalTax"])) == totals.tax
    page = panel(client, "invoice", invoice.id)
    assert "Draft" in page and ">Update<" in page
    assert sandbox.violations() == []


def test_edit_and_update_changes_the_invoice_in_xero(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0200", lines=((1, "100.00", None),))
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)

    edit_page = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    fields = form_fields(edit_page, f"/invoices/{invoice.id}/edit")
    fields["reference"] = "PO-991"
    quantity_field = next(name for name in fields if name.endswith("quantity"))
    fields[quantity_field] = "4"
    saved = client.post(f"/invoices/{invoice.id}/edit", data=fields)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert "Changed since last sent" in panel(client, "invoice", invoice.id)

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)

    [remote] = organisation(sandbox)["invoices"]
    assert remote["Reference"] == "PO-991" and Decimal(str(remote["Total"])) == Decimal("400.00")
    assert "Changed since last sent" not in panel(client, "invoice", invoice.id)


def test_invoice_approved_in_xero_can_no_longer_be_updated(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0300")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = organisation(sandbox)["invoices"]
    sandbox.control(f"invoices/{remote['InvoiceID']}/status", status="AUTHORISED")

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)

    page = panel(client, "invoice", invoice.id)
    assert "Awaiting payment" in page and "does not allow changes" in page
    assert ">Update<" not in page


def test_a_lost_response_still_leaves_exactly_one_invoice(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0400")
    sandbox.control("faults", drop_next_writes=2)  # the contact create and the invoice create

    press(client, "invoice", invoice.id)
    [done] = wait_for_pushes(expected=1)

    assert done.state == "succeeded", done.error_message
    org = organisation(sandbox)
    assert len(org["contacts"]) == 1 and len(org["invoices"]) == 1
    assert ">Update<" in panel(client, "invoice", invoice.id)


def test_rate_limited_push_still_completes(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    sandbox.control("faults", rate_limit_next=1, retry_after=1)

    press(client, "client", customer.id)
    [done] = wait_for_pushes(expected=1)

    assert done.state == "succeeded"
    assert len(organisation(sandbox)["contacts"]) == 1
    assert sandbox.stats()["rate_limited"] >= 1


def test_a_name_with_quotes_and_one_in_other_case_send_against_the_stand_in(client, connected, sandbox):
    # The stand-in refuses `\"` in where filters with QueryParseException, as real Xero does.
    typed_into_xero(sandbox, connected, {"Name": "ACME TRADING", "EmailAddress": "books@acme.example"})
    quoted = make_client(connected, name='Quote "Three" Ltd')
    acme = make_client(connected, name="Acme Trading")

    press(client, "client", quoted.id)
    press(client, "client", acme.id)
    wait_for_pushes(expected=2)

    assert "Sent to Xero." in panel(client, "client", quoted.id)
    assert "Linked to an existing Xero contact" in panel(client, "client", acme.id)
    contacts = {c["Name"]: c for c in organisation(sandbox)["contacts"]}
    assert sorted(contacts) == ["Acme Trading", 'Quote "Three" Ltd']  # renamed, never doubled
    assert contacts["Acme Trading"]["EmailAddress"] == "books@acme.example"  # kept: PlanMan holds none
    assert sandbox.violations() == []


def test_an_invoice_in_a_currency_the_organisation_has_not_enabled(client, connected, sandbox):
    customer = make_client(connected, name="Euro Client")
    invoice = make_invoice(connected, customer)
    invoice.currency = "EUR"
    db.session.commit()
    assert "does not take invoices in EUR" in panel(client, "invoice", invoice.id)  # said before sending

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)

    page = panel(client, "invoice", invoice.id).replace("&#39;", "'")
    assert "Sending failed." in page and "<p>Xero refused this invoice's currency" in page
    assert "Xero said: Xero said" not in page  # said plainly once, not once per layer
    assert organisation(sandbox)["invoices"] == []


def test_an_update_keeps_what_a_bookkeeper_added_to_a_line_in_xero(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0300", lines=((1, "100.00", None),))
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = organisation(sandbox)["invoices"]
    line_id = remote["LineItems"][0]["LineItemID"]
    sandbox.control(f"invoices/{remote['InvoiceID']}/lines/{line_id}", ItemCode="BOOK")

    edit_page = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    fields = form_fields(edit_page, f"/invoices/{invoice.id}/edit")
    fields[next(name for name in fields if name.endswith("quantity"))] = "3"
    assert client.post(f"/invoices/{invoice.id}/edit", data=fields).status_code == 302
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)

    [remote] = organisation(sandbox)["invoices"]
    [line] = remote["LineItems"]
    assert line["LineItemID"] == line_id and line["ItemCode"] == "BOOK" and Decimal(str(line["Quantity"])) == 3
    assert sandbox.violations() == []
