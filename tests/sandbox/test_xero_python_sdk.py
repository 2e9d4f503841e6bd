"""The stand-in driven by Xero's official Python SDK (xero-python), a client nobody here wrote.

The SDK talks to the stand-in on a real socket (the live_url fixture) with a token
from the stand-in's own OAuth flow. Every answer must deserialise into the SDK's
models without error, and nothing the SDK sends may count as a spec violation,
although it always sends read-only fields (HasAttachments) and writes
summarizeErrors as Python's "False" (TOOLING.md)."""
from __future__ import annotations

import json
from datetime import date

import pytest
from xero_python.accounting import (AccountingApi, Contact, Contacts, CurrencyCode, Invoice, Invoices, LineItem,
                                    LineItemTracking)
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi

from xero_sandbox.demo import UK_NAME, UK_TENANT_ID, US_TENANT_ID

from .conftest import CLIENT_ID, CLIENT_SECRET, connect

UK = UK_TENANT_ID


@pytest.fixture
def sdk(xero, live_url):
    """An AccountingApi and an IdentityApi on the running stand-in, holding a token from its consent flow."""
    token = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)),
                       pool_threads=1, oauth2_token_getter=lambda: token, oauth2_token_saver=token.update)
    return AccountingApi(client, base_url=f"{live_url}/api.xro/2.0"), IdentityApi(client, base_url=live_url)


@pytest.fixture
def accounting(sdk):
    return sdk[0]


@pytest.fixture(autouse=True)
def nothing_the_sdk_sends_is_a_violation(xero):
    yield
    assert xero.get("/_control/violations").get_json() == []


def v(value):
    """The SDK turns enum fields into Python enums; compare their values."""
    return getattr(value, "value", value)


def refusal(exc: ApiException) -> dict:
    return json.loads(exc.body)


def work(amount, description="Bookkeeping", **kw) -> LineItem:
    return LineItem(description=description, quantity=1, unit_amount=amount, account_code="200", tax_type="OUTPUT2",
                    **kw)


def new_contact(accounting, name: str, **fields) -> Contact:
    saved = accounting.create_contacts(UK, Contacts(contacts=[Contact(name=name, **fields)]), summarize_errors=False)
    contact = saved.contacts[0]
    assert contact.has_validation_errors is False and contact.contact_id
    return contact


def test_settings_organisation_accounts_tax_rates_and_currencies(xero, accounting):
    organisation = accounting.get_organisations(UK).organisations[0]
    assert (organisation.name, str(organisation.organisation_id), organisation.short_code) == (UK_NAME, UK, "!dmoUK")
    assert v(organisation.base_currency) == "GBP"

    revenue = accounting.get_accounts(UK, where='Type=="REVENUE"').accounts
    assert [a.code for a in revenue] == ["200", "260", "270"]
    assert v(revenue[0].type) == "REVENUE" and v(revenue[0].status) == "ACTIVE"

    rates = {r.tax_type: r for r in accounting.get_tax_rates(UK).tax_rates}
    assert rates["OUTPUT2"].effective_rate == 20 and rates["OUTPUT2"].can_apply_to_revenue is True

    assert [(v(c.code), c.description) for c in accounting.get_currencies(UK).currencies] == [("GBP", "British Pound")]
    xero.post(f"/_control/organisations/{UK}/currencies", json={"currencies": ["EUR"]})
    assert [v(c.code) for c in accounting.get_currencies(UK).currencies] == ["GBP", "EUR"]


def test_contacts_create_update_where_and_search_term(accounting):
    acme = new_contact(accounting, "Acme Trading", email_address="ops@acme.test", contact_number="PM-1")
    quoted = new_contact(accounting, 'Quote "Three" Ltd', first_name="Ann")

    updated = accounting.update_contact(UK, acme.contact_id, Contacts(contacts=[Contact(first_name="Ada")]))
    assert updated.contacts[0].first_name == "Ada" and updated.contacts[0].email_address == "ops@acme.test"

    # A where clause written as Xero documents it for its SDKs (ContactStatus=="ACTIVE"); names ignore case.
    found = accounting.get_contacts(UK, where='Name=="ACME TRADING" AND ContactStatus=="ACTIVE"').contacts
    assert [c.contact_id for c in found] == [acme.contact_id]
    assert [c.name for c in accounting.get_contacts(UK, where='Name.ToLower().StartsWith("acme")').contacts] == [
        "Acme Trading"]

    # A quote inside the value has no escape: the SDK surfaces Xero's QueryParseException...
    with pytest.raises(ApiException) as refused:
        accounting.get_contacts(UK, where='Name=="Quote \\"Three\\" Ltd"')
    assert refused.value.status == 400
    assert refusal(refused.value) == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}
    # ...and searchTerm finds the name, for an exact comparison by the caller.
    hits = accounting.get_contacts(UK, search_term='quote "three"').contacts
    assert [(c.contact_id, c.name) for c in hits] == [(quoted.contact_id, 'Quote "Three" Ltd')]


def test_invoices_create_update_and_get_by_numbers_and_ids(xero, accounting):
    acme = new_contact(accounting, "Acme Trading")
    created = accounting.create_invoices(UK, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=acme.contact_id), date=date(2026, 3, 1),
        due_date=date(2026, 3, 31), reference="PO-1", status="DRAFT",
        line_items=[work(100, "Audit"), work(50, "Payroll")])]), summarize_errors=False).invoices[0]
    assert created.has_errors is False and v(created.status) == "DRAFT"
    assert (created.sub_total, created.total_tax, created.total) == (150, 30, 180)
    assert created.date == date(2026, 3, 1) and created.invoice_number == "INV-0001"
    audit, payroll = created.line_items
    assert audit.line_item_id and payroll.line_item_id

    # A bookkeeper adds tracking to the payroll line in Xero; an update naming the lines by id keeps it.
    xero.post(f"/_control/invoices/{created.invoice_id}/lines/{payroll.line_item_id}",
              json={"Tracking": [{"Name": "Region", "Option": "North"}]})
    updated = accounting.update_invoice(UK, created.invoice_id, Invoices(invoices=[Invoice(
        reference="PO-2", line_items=[work(120, "Audit", line_item_id=audit.line_item_id),
                                      work(50, "Payroll", line_item_id=payroll.line_item_id)])])).invoices[0]
    assert updated.reference == "PO-2" and updated.total == 204
    assert [li.line_item_id for li in updated.line_items] == [audit.line_item_id, payroll.line_item_id]
    tracking = updated.line_items[1].tracking
    assert [(t.name, t.option) for t in tracking] == [("Region", "North")]
    assert isinstance(tracking[0], LineItemTracking)

    by_number = accounting.get_invoices(UK, invoice_numbers=["INV-0001"]).invoices
    by_id = accounting.get_invoices(UK, i_ds=[created.invoice_id]).invoices
    one = accounting.get_invoice(UK, created.invoice_id).invoices[0]
    assert [i.invoice_id for i in by_number] == [i.invoice_id for i in by_id] == [one.invoice_id]
    assert one.contact.name == "Acme Trading" and one.total == 204


def test_a_batch_with_one_invalid_invoice_saves_the_others_and_returns_its_errors(accounting):
    acme = new_contact(accounting, "Acme Trading")

    def invoice(number, **kw):
        return Invoice(type="ACCREC", contact=Contact(contact_id=acme.contact_id), invoice_number=number,
                       line_items=[work(10)], **kw)

    batch = accounting.create_invoices(UK, Invoices(invoices=[
        invoice("B-1"), invoice("B-2", currency_code=CurrencyCode.EUR), invoice("B-3")]), summarize_errors=False).invoices
    assert [(i.invoice_number, i.has_errors) for i in batch] == [("B-1", False), ("B-2", True), ("B-3", False)]
    assert [e.message for e in batch[1].validation_errors] == ["Organisation is not subscribed to currency EUR"]
    saved = accounting.get_invoices(UK, invoice_numbers=["B-1", "B-2", "B-3"]).invoices
    assert sorted(i.invoice_number for i in saved) == ["B-1", "B-3"]


def test_connections(sdk, xero):
    _accounting, identity = sdk
    connections = identity.get_connections()
    assert sorted(str(c.tenant_id) for c in connections) == sorted([UK_TENANT_ID, US_TENANT_ID])
    event = str(connections[0].auth_event_id)
    assert all(str(c.auth_event_id) == event for c in connections)
    assert [str(c.tenant_id) for c in identity.get_connections(auth_event_id=event)] == [
        str(c.tenant_id) for c in connections]
    assert {v(c.tenant_type) for c in connections} == {"ORGANISATION"}
