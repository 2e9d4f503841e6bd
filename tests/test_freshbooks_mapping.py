"""FreshBooks' pure mappers: PlanMan records in, FreshBooks payloads out. No HTTP, no database."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace as Record

import pytest

from planman.integrations.errors import ValidationFailed
from planman.integrations.freshbooks import mapping
from planman.integrations.freshbooks.provider import memberships_to_tenants


def a_client(**overrides):
    fields = dict(name="  Acme Ltd ", first_name="Ann", last_name="Lee", email="ap@acme.test", phone="0113 496 0000",
                  address_line1="1 High St", address_line2="", city="Leeds", region="West Yorkshire",
                  postcode="LS1 1AA", country="United Kingdom", tax_number="GB123456789")
    fields.update(overrides)
    return Record(**fields)


VAT = Record(name="VAT", percent=Decimal("20.0000"))


def a_line(description="Consulting", quantity="2", unit_price="150.5", discount="0", tax_rate=VAT):
    return Record(description=description, quantity=Decimal(quantity), unit_price=Decimal(unit_price),
                  discount_percent=Decimal(discount), tax_rate=tax_rate)


def an_invoice(lines=None, **overrides):
    fields = dict(number="INV-0007", reference="PO 12", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 31),
                  currency="GBP", amounts_are="exclusive", lines=lines if lines is not None else [a_line()])
    fields.update(overrides)
    return Record(**fields)


def test_client_payload_names_the_organisation_and_every_field_freshbooks_holds():
    assert mapping.client_payload(a_client()) == {
        "organization": "Acme Ltd", "fname": "Ann", "lname": "Lee", "email": "ap@acme.test",
        "bus_phone": "0113 496 0000", "p_street": "1 High St", "p_street2": "", "p_city": "Leeds",
        "p_province": "West Yorkshire", "p_code": "LS1 1AA", "p_country": "United Kingdom",
        "vat_number": "GB123456789"}


def test_a_client_planman_did_not_create_gets_only_what_planman_holds():
    payload = mapping.client_payload(a_client(address_line2="", phone=""), only_held=True)
    assert "p_street2" not in payload and "bus_phone" not in payload and payload["email"] == "ap@acme.test"


def test_the_client_lookup_key_is_organisation_and_email_together():
    ours = a_client()
    assert mapping.is_same_client({"organization": "ACME LTD", "email": "AP@acme.test", "vis_state": 0}, ours)
    assert not mapping.is_same_client({"organization": "Acme Ltd", "email": "other@acme.test"}, ours)
    assert not mapping.is_same_client({"organization": "Acme Trading", "email": "ap@acme.test"}, ours)
    assert not mapping.is_same_client({"organization": "Acme Ltd", "email": "ap@acme.test", "vis_state": 1}, ours)
    assert mapping.is_same_client({"organization": "Acme Ltd", "email": ""}, a_client(email=""))


def test_invoice_payload_has_money_as_decimal_strings_and_taxes_by_name_and_percent():
    payload = mapping.invoice_payload(an_invoice(lines=[
        a_line("Consulting\nMarch, on site", "2", "150.5"), a_line("Travel", "1", "0.3333", tax_rate=None)]),
        customer_id="41")
    assert payload == {
        "customerid": 41, "invoice_number": "INV-0007", "create_date": "2026-03-01", "due_offset_days": 30,
        "currency_code": "GBP", "po_number": "PO 12",
        "lines": [
            {"type": 0, "name": "Consulting", "description": "March, on site", "qty": "2.00",
             "unit_cost": {"amount": "150.50", "code": "GBP"}, "taxName1": "VAT", "taxAmount1": "20.00"},
            {"type": 0, "name": "Travel", "description": "", "qty": "1.00",
             "unit_cost": {"amount": "0.3333", "code": "GBP"}},
        ]}
    assert "status" not in payload and not any(key.startswith("action_") for key in payload)  # always a draft


def test_no_tax_invoices_carry_no_taxes():
    [line] = mapping.invoice_payload(an_invoice(amounts_are="no_tax"), customer_id="1")["lines"]
    assert "taxName1" not in line and "taxAmount1" not in line


def test_what_freshbooks_cannot_hold_is_refused_before_any_call_beside_its_field():
    with pytest.raises(ValidationFailed) as refused:
        mapping.invoice_payload(an_invoice(amounts_are="inclusive", lines=[a_line(discount="10")]), customer_id="1")
    assert "amounts_are" in refused.value.field_errors and "lines" in refused.value.field_errors
    assert "10% discount" in " ".join(refused.value.messages)


def test_statuses_and_what_the_customer_has_seen():
    assert mapping.invoice_status({"v3_status": "sent", "vis_state": 0}) == "sent"
    assert mapping.invoice_status({"status": 4}) == "paid"
    assert mapping.invoice_status({"v3_status": "draft", "vis_state": 1}) == "deleted"
    assert not mapping.customer_has_seen("draft") and mapping.customer_has_seen("viewed")
    assert "has paid it" in mapping.confirm_update_question("paid")
    assert "“Sent”" in mapping.confirm_update_question("sent")


def test_error_envelopes_of_every_shape_become_messages_tied_to_fields():
    accounting = {"response": {"errors": [{"errno": 1004, "field": "email", "message": "Invalid email address.",
                                           "object": "client", "value": "x"}]}}
    errors = mapping.error_messages(accounting)
    assert errors == [{"errno": 1004, "field": "email", "message": "Invalid email address."}]
    assert mapping.field_errors("client", errors) == {"email": ["Invalid email address."]}
    assert mapping.error_messages({"errno": 2001, "message": "No such event"})[0]["message"] == "No such event"
    assert mapping.error_messages({"code": 5, "message": "bad", "details": []})[0]["errno"] == 5
    assert mapping.error_messages("<html>") == []


def test_money_reads_amount_and_code():
    assert mapping.money({"amount": "120.5", "code": "GBP"}) == Decimal("120.50")
    assert mapping.money(None) is None


def test_record_links_only_when_configured():
    assert mapping.record_url("", "bK9pQ2", "invoice", "5") is None
    assert mapping.record_url("http://fb/accounts/{account_id}/{kind}s/{id}", "bK9pQ2", "invoice", "5") == \
        "http://fb/accounts/bK9pQ2/invoices/5"


def test_businesses_come_from_memberships_keyed_by_account_id_not_membership_id():
    me = {"business_memberships": [
        {"id": 501, "role": "owner", "business": {"id": 1001, "name": "Demo UK", "account_id": "bK9pQ2"}},
        {"id": 502, "role": "client", "business": {"id": 1002, "name": "Their shop", "account_id": "zz9"}},
        {"id": 503, "role": "manager", "business": {"id": 1003, "name": "No accounting"}},
    ]}
    [tenant] = memberships_to_tenants(me)
    assert (tenant.tenant_id, tenant.name, tenant.remote_connection_id, tenant.kind) == \
        ("bK9pQ2", "Demo UK", "1001", "business")
